"""One Celery worker node (a process the supervisor starts): `python -m twinplatform.worker.node ...`.

Its prefork pool children run the tasks; CUDA is initialised only there (the supervisor set
CUDA_VISIBLE_DEVICES for this node before it started), never in this parent.
"""

from __future__ import annotations

import argparse

from twinplatform.config import get_settings
from twinplatform.wiring import load_pipeline_plugins
from twinplatform.worker.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="twinplatform.worker.node")
    parser.add_argument("--queues", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--hostname", required=True)
    parser.add_argument("--loglevel", default="INFO")
    args = parser.parse_args(argv)
    settings = get_settings()
    load_pipeline_plugins(settings)  # before the pool forks, so every child knows the same pipelines
    app = create_app(settings)
    app.worker_main(
        [
            "worker",
            "--queues",
            args.queues,
            "--concurrency",
            str(args.concurrency),
            "--hostname",
            args.hostname,
            "--pool",
            "prefork",
            "--loglevel",
            args.loglevel,
            "--without-gossip",
            "--without-mingle",
        ]
    )


if __name__ == "__main__":
    main()
