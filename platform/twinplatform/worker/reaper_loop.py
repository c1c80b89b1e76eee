"""The reaper process: every few seconds, re-dispatch lost stages and send pending outbox rows.

`python -m twinplatform.worker.reaper_loop [--interval-s S] [--once]`, started by the worker supervisor or
`platform reaper`. Errors (database or broker briefly away) are logged and the loop carries on.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from twinplatform.config import Settings, get_settings
from twinplatform.jobs.dbretry import is_connection_error
from twinplatform.jobs.outbox import relay
from twinplatform.jobs.reaper import ReapReport, reap
from twinplatform.wiring import build_runtime
from twinplatform.worker.app import create_app
from twinplatform.worker.sender import CelerySender

log = logging.getLogger("twinplatform.reaper")


def run_once(settings: Settings) -> tuple[ReapReport, int]:
    runtime = build_runtime(settings)
    sender = CelerySender(create_app(settings))
    try:
        report = reap(runtime)
        return report, relay(runtime.sessions, sender)
    finally:
        runtime.engine.dispose()


def run_forever(settings: Settings, interval_s: float, stop: threading.Event) -> None:
    runtime = build_runtime(settings)
    sender = CelerySender(create_app(settings))
    log.info("reaper started: every %.1f s, lease %.1f s", interval_s, runtime.policy.lease_s)
    while not stop.is_set():
        try:
            report = reap(runtime)
            sent = relay(runtime.sessions, sender)
            if report.changed or sent:
                log.info(
                    "requeued %s, failed %s, redispatched %s, sent %d",
                    report.requeued,
                    report.failed,
                    report.redispatched,
                    sent,
                )
        except Exception as exc:  # noqa: BLE001
            if not is_connection_error(exc):
                log.exception("reaper pass failed")
            else:
                log.warning("database unreachable; reaper retries in %.1f s", interval_s)
        stop.wait(interval_s)
    runtime.engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="twinplatform.worker.reaper_loop")
    parser.add_argument("--interval-s", type=float, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = get_settings()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run_forever(settings, args.interval_s or settings.reaper_interval_s, stop)


if __name__ == "__main__":
    main()
