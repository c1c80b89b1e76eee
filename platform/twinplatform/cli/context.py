"""Process-wide access to settings and the runtime for commands (built on first use, never at import)."""

from __future__ import annotations

import functools

from twinplatform.config import Settings, get_settings
from twinplatform.jobs.runtime import Runtime


def settings() -> Settings:
    return get_settings()


@functools.lru_cache(maxsize=1)
def runtime() -> Runtime:
    from twinplatform.wiring import build_runtime

    return build_runtime(get_settings())


def in_process() -> bool:
    return not get_settings().broker_url
