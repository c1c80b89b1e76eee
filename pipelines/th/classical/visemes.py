"""Phones (CMU ARPAbet, as pocketsphinx's English model names them) -> visemes -> target mouth shapes.

A viseme target says how far a phone lets the mouth open relative to the loudness (`gain`, 0..1), the most it may
open whatever the loudness (`cap`: lip closures such as P B M must close the mouth even though the speech around
them is loud), and the lip width (`width`, -1 rounded/protruded .. +1 spread). The numbers are rough articulatory
facts (open vowels drop the jaw, IY spreads the lips, UW rounds them), not fitted to any data.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Phone:
    """One decoded phone: its ARPAbet label (no stress digit) and its span in seconds of the audio."""

    label: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Viseme:
    """A mouth-shape class and its target: opening gain and cap in [0, 1], lip width in [-1, 1]."""

    name: str
    gain: float
    cap: float
    width: float


# Each viseme's target; several phones share one (lips cannot tell T from D from N).
_VISEMES = (
    Viseme("bilabial", gain=0.0, cap=0.0, width=0.0),  # P B M: lips pressed together
    Viseme("labiodental", gain=0.1, cap=0.15, width=0.1),  # F V: lower lip under the upper teeth
    Viseme("dental", gain=0.35, cap=1.0, width=0.1),  # TH DH
    Viseme("alveolar", gain=0.35, cap=1.0, width=0.2),  # T D N L S Z
    Viseme("postalveolar", gain=0.35, cap=1.0, width=-0.5),  # SH ZH CH JH: lips pushed forward
    Viseme("velar", gain=0.45, cap=1.0, width=0.1),  # K G NG
    Viseme("glottal", gain=0.6, cap=1.0, width=0.0),  # HH takes the next vowel's shape; the envelope decides
    Viseme("rhotic", gain=0.35, cap=1.0, width=-0.4),  # R ER-like rounding
    Viseme("glide_w", gain=0.2, cap=1.0, width=-0.9),  # W: tight rounding
    Viseme("glide_y", gain=0.3, cap=1.0, width=0.6),  # Y: spread
    Viseme("open", gain=1.0, cap=1.0, width=0.1),  # AA AH: jaw down
    Viseme("open_spread", gain=1.0, cap=1.0, width=0.4),  # AE
    Viseme("open_rounded", gain=0.9, cap=1.0, width=-0.3),  # AO
    Viseme("diphthong_open", gain=0.9, cap=1.0, width=0.2),  # AY AW start open
    Viseme("spread_close", gain=0.35, cap=1.0, width=1.0),  # IY
    Viseme("spread_mid", gain=0.55, cap=1.0, width=0.7),  # IH EY
    Viseme("spread_open", gain=0.65, cap=1.0, width=0.5),  # EH
    Viseme("rounded_close", gain=0.3, cap=1.0, width=-1.0),  # UW
    Viseme("rounded_mid", gain=0.45, cap=1.0, width=-0.6),  # UH ER
    Viseme("rounded_open", gain=0.6, cap=1.0, width=-0.8),  # OW OY
    Viseme("silence", gain=0.3, cap=1.0, width=0.0),  # decoder heard silence where voice activity heard speech
    # Noise, laughter, unknown labels, and all speech when there is no phone timing: follow the loudness. The gain is
    # about the loudness-weighted mean gain of the phones of real speech (0.45-0.48 on three sample recordings), so
    # a mouth driven by the envelope alone opens about as far overall as one shaped by phones.
    Viseme("unknown", gain=0.5, cap=1.0, width=0.0),
)
VISEMES = MappingProxyType({viseme.name: viseme for viseme in _VISEMES})

_PHONE_TO_VISEME = {
    "P": "bilabial", "B": "bilabial", "M": "bilabial",
    "F": "labiodental", "V": "labiodental",
    "TH": "dental", "DH": "dental",
    "T": "alveolar", "D": "alveolar", "N": "alveolar", "L": "alveolar", "S": "alveolar", "Z": "alveolar",
    "SH": "postalveolar", "ZH": "postalveolar", "CH": "postalveolar", "JH": "postalveolar",
    "K": "velar", "G": "velar", "NG": "velar",
    "HH": "glottal",
    "R": "rhotic",
    "W": "glide_w",
    "Y": "glide_y",
    "AA": "open", "AH": "open",
    "AE": "open_spread",
    "AO": "open_rounded",
    "AY": "diphthong_open", "AW": "diphthong_open",
    "IY": "spread_close",
    "IH": "spread_mid", "EY": "spread_mid",
    "EH": "spread_open",
    "UW": "rounded_close",
    "UH": "rounded_mid", "ER": "rounded_mid",
    "OW": "rounded_open", "OY": "rounded_open",
    "SIL": "silence",
}  # fmt: skip
PHONE_TO_VISEME = MappingProxyType(_PHONE_TO_VISEME)


def viseme_of(label: str) -> Viseme:
    """The viseme of an ARPAbet phone label; stress digits are ignored, anything unknown (+NSN+, +SPN+) is neutral."""
    base = label.strip().upper().rstrip("012")
    return VISEMES[_PHONE_TO_VISEME.get(base, "unknown")]
