"""The command line's surface: help for every command, light start-up, config, doctor, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli_harness import Platform
from twinplatform.cli.main import LAZY_COMMANDS

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", sorted(LAZY_COMMANDS))
def test_every_command_has_help(platform_cli: Platform, command: str) -> None:
    result = platform_cli(command, "--help")
    assert "Usage:" in result.output


@pytest.mark.parametrize(
    "group, subcommands",
    [
        ("twin", ["create", "ingest", "ls", "show", "rm"]),
        ("jobs", ["ls", "show", "retry", "cancel"]),
        ("db", ["upgrade", "current", "downgrade"]),
    ],
)
def test_subcommands_have_help(platform_cli: Platform, group: str, subcommands: list[str]) -> None:
    for sub in subcommands:
        assert "Usage:" in platform_cli(group, sub, "--help").output


def test_help_imports_no_heavy_module() -> None:
    probe = (
        "import sys; from click.testing import CliRunner; from twinplatform.cli.main import cli; "
        "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output; "
        "print(sorted(m for m in ('torch', 'sqlalchemy', 'boto3', 'av', 'numpy', 'celery') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_stdlib_platform_module_still_works_from_the_repo_root() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import platform; print(platform.system())"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "Linux"


def test_config_masks_secrets(platform_cli: Platform) -> None:
    platform_cli.env.update(
        PLATFORM_DATABASE_URL="postgresql://user:hunter2@db.example/twins",
        PLATFORM_S3_SECRET_ACCESS_KEY="s3cr3t",
        PLATFORM_BROKER_URL="redis://:brokerpw@127.0.0.1:6379/0",
    )
    shown = platform_cli.json("config")
    assert "hunter2" not in str(shown) and "s3cr3t" not in str(shown) and "brokerpw" not in str(shown)
    assert shown["database_url"] == "postgresql://user:***@db.example/twins"
    assert shown["s3_secret_access_key"] == "***"


def test_config_reads_the_toml_file_and_env_wins(platform_cli: Platform, tmp_path: Path) -> None:
    config_file = tmp_path / "platform.toml"
    config_file.write_text('store_url = "file:///srv/twins"\nmax_attempts = 5\n')
    platform_cli.env.update(PLATFORM_CONFIG_FILE=str(config_file), PLATFORM_MAX_ATTEMPTS="7")
    shown = platform_cli.json("config")
    assert shown["store_url"] == "file:///srv/twins"
    assert shown["max_attempts"] == "7"


def test_invalid_setting_is_a_config_error(platform_cli: Platform) -> None:
    platform_cli.env["PLATFORM_MAX_ATTEMPTS"] = "zero"
    result = platform_cli("twin", "ls", expect=3)
    assert "PLATFORM_MAX_ATTEMPTS" in result.output


def test_doctor_passes_on_the_embedded_default(platform_cli: Platform) -> None:
    checks = {c["name"]: c for c in platform_cli.json("doctor")}
    assert {name for name, c in checks.items() if c["status"] == "fail"} == set()
    assert checks["ffmpeg"]["status"] == "ok"


def test_doctor_fails_with_a_fix_when_the_database_is_unreachable(platform_cli: Platform) -> None:
    platform_cli.env["PLATFORM_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    result = platform_cli("doctor", expect=3)
    assert "FAIL" in result.output and "PLATFORM_DATABASE_URL" in result.output


def test_db_upgrade_and_current(platform_cli: Platform) -> None:
    from twinplatform.db.migrate import head_revision

    head = head_revision()
    assert f"revision {head}" in platform_cli("db", "upgrade").output
    assert "already up to date" in platform_cli("db", "upgrade").output
    assert f"database: {head}  code: {head}" in platform_cli("db", "current").output
