"""How long `platform --help` takes, end to end (process start to exit), and which heavy modules it imports.

Usage: .venv/bin/python benchmarks/cli_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("torch", "sqlalchemy", "boto3", "botocore", "av", "numpy", "celery", "pydantic")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    exe = Path(sys.executable).with_name("platform")
    samples = []
    for _ in range(args.runs):
        started = time.perf_counter()
        subprocess.run([str(exe), "--help"], check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    probe = (
        "import sys; from twinplatform.cli.main import cli; "
        "from click.testing import CliRunner; CliRunner().invoke(cli, ['--help']); "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.strip()
    samples.sort()
    print(
        f"platform --help over {args.runs} runs: median {statistics.median(samples) * 1000:.0f} ms, "
        f"p90 {samples[int(0.9 * (len(samples) - 1))] * 1000:.0f} ms, max {samples[-1] * 1000:.0f} ms"
    )
    print(f"heavy modules imported: {loaded or 'none'}")


if __name__ == "__main__":
    main()
