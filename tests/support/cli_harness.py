"""Running the real `platform` command in-process (click's CliRunner) against a fresh per-test data folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from twinplatform.cli import context
from twinplatform.cli.main import cli
from twinplatform.config import get_settings


@dataclass
class Platform:
    """`platform ...` with an environment of its own; settings and runtime are rebuilt per invocation."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    def __call__(self, *args: str, expect: int | None = 0, input: str | None = None) -> Result:
        _reset()
        result = CliRunner().invoke(cli, list(args), env=self.full_env(), input=input, catch_exceptions=False)
        _reset()
        if expect is not None:
            assert result.exit_code == expect, f"exit {result.exit_code} != {expect}\n{result.output}"
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)

    def full_env(self) -> dict[str, str]:
        return {
            "PLATFORM_DATA_DIR": str(self.data_dir),
            "PLATFORM_CONFIG_FILE": str(self.data_dir / "absent.toml"),
            "PLATFORM_HEARTBEAT_S": "0.5",
            "PLATFORM_LEASE_S": "10",
            "PLATFORM_RETRY_BACKOFF_S": "0.05",
            **self.env,
        }

    @property
    def store(self) -> Path:
        return self.data_dir / "store"


def _reset() -> None:
    """Forget cached settings and dispose the cached runtime's database engine between invocations."""
    get_settings.cache_clear()
    if context.runtime.cache_info().currsize:
        context.runtime().engine.dispose()
    context.runtime.cache_clear()


@pytest.fixture
def platform_cli(tmp_path: Path) -> Iterator[Platform]:
    harness = Platform(tmp_path / "data")
    yield harness
    _reset()
