"""Counting this machine's GPUs without importing torch (the CLI must stay light)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def visible_gpus() -> list[str]:
    """Names of the NVIDIA GPUs the driver reports; empty when there is no driver or no GPU."""
    proc = Path("/proc/driver/nvidia/gpus")
    if proc.is_dir():
        return sorted(entry.name for entry in proc.iterdir())
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line for line in listing.stdout.splitlines() if line.startswith("GPU ")]
