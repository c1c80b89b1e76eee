"""Waiting out a database that is briefly unreachable, instead of failing the stage that was running.

Only connection-level errors are retried (the server refused, dropped or restarted); anything else is a real
error and raised at once. After `tolerance_s` the outage is reported as a TransientError.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from twinplatform.errors import TransientError

T = TypeVar("T")
log = logging.getLogger(__name__)


def is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def with_db_retry(
    fn: Callable[[], T], *, tolerance_s: float, what: str, sleep: Callable[[float], None] = time.sleep
) -> T:
    """Call `fn` (one whole transaction) until it gets through, for at most `tolerance_s` of outage."""
    deadline = time.monotonic() + tolerance_s
    delay_s = 0.25
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise TransientError(
                    f"the database was unreachable for over {tolerance_s:g} s while {what}: {str(exc).splitlines()[0]}"
                ) from exc
            log.warning("database unreachable while %s; retrying in %.2f s", what, delay_s)
            sleep(delay_s)
            delay_s = min(5.0, delay_s * 2)
