"""Private redis-server processes: start, PING, restart on the same port, data lost or kept by appendonly."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import redis

from tests.support import service_processes
from tests.support.service_processes import RedisProcess, ServiceNotInstalled, redis_server_or_skip

pytestmark = pytest.mark.timeout(30)

SHARED_PORTS = {6379, 5432, 5672}


@pytest.fixture(autouse=True)
def _needs_redis_server() -> None:
    redis_server_or_skip()


def _client(server: RedisProcess) -> redis.Redis:
    return redis.Redis.from_url(server.url, socket_timeout=2, socket_connect_timeout=2)


def test_private_redis_answers_ping_on_its_own_port(tmp_path: Path) -> None:
    with RedisProcess(tmp_path) as server, _client(server) as client:
        assert server.port not in SHARED_PORTS and server.url == f"redis://127.0.0.1:{server.port}/0"
        assert client.ping() is True
        assert server.last_start_s is not None and server.last_start_s < 5
    assert not server.is_running()


def test_restart_without_appendonly_loses_data(tmp_path: Path) -> None:
    with RedisProcess(tmp_path, appendonly=False) as server:
        with _client(server) as client:
            client.set("queue", "job-1")
        first_pid, port = server.pid, server.port
        server.restart()
        assert server.port == port and server.pid != first_pid
        with _client(server) as client:  # a fresh client: the old connection died with the old server
            assert client.get("queue") is None


def test_appendonly_keeps_data_across_restart_and_kill(tmp_path: Path) -> None:
    with RedisProcess(tmp_path, appendonly=True) as server:
        with _client(server) as client:
            client.set("queue", "job-1")
        server.restart()
        with _client(server) as client:
            assert client.get("queue") == b"job-1"
            client.set("queue", "job-2")
        server.restart(kill=True)  # SIGKILL: with appendfsync always the acknowledged write is on disk
        with _client(server) as client:
            assert client.get("queue") == b"job-2"


def test_kill_makes_the_port_refuse(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path).start()
    try:
        server.kill()
        assert not server.is_running() and server.pid is None
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    finally:
        server.stop()


def test_missing_binary_raises_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_processes, "find_redis_server", lambda: None)
    with pytest.raises(ServiceNotInstalled, match="redis-server is not installed"):
        RedisProcess(tmp_path)
