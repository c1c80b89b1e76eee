"""Putting a silent rendered video and its speech into one MP4 (H.264 copied, AAC encoded), with ffmpeg."""

from __future__ import annotations

from pathlib import Path

import ffmpeg

from pipelines.media.ffmpeg_tool import run_ffmpeg


def mux_audio(video: Path, audio: Path, output: Path, *, audio_bitrate: str = "128k") -> None:
    """Write `output` = `video`'s frames (stream-copied) + `audio` as AAC. The video is not cut or padded: the
    caller renders exactly as many frames as the audio lasts, so both streams end together (within a frame)."""
    partial = output.with_name(output.name + ".partial.mp4")
    try:
        spec = ffmpeg.output(
            ffmpeg.input(str(video)).video,
            ffmpeg.input(str(audio)).audio,
            str(partial),
            vcodec="copy",
            acodec="aac",
            audio_bitrate=audio_bitrate,
            movflags="+faststart",
            map_metadata=-1,
        )
        run_ffmpeg(spec, source=audio)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
