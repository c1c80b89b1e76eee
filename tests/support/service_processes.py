"""Private service processes for destructive tests (kill, restart, data loss) on free loopback ports.

The machine's shared instances (Redis 6379, PostgreSQL 5432, RabbitMQ 5672) are never touched: every process
here gets its own port on 127.0.0.1 and its own temporary directory, and is stopped by its owner.

`RedisProcess` runs `redis-server` in the foreground (`--daemonize no`) so the test holds its real pid and can
SIGTERM or SIGKILL it. With `appendonly=False` and `--save ""` nothing is persisted, so `restart()` loses every
key (a broker that lost its queues); with `appendonly=True` and `appendfsync always` every acknowledged write
survives even `kill()` + `start()`.

On Linux the server is started through `setpriv --pdeathsig KILL` when available, so a pytest process killed
outright (timeout, OOM) does not leave servers behind. The kernel sends that signal when the THREAD that
started the server exits, so start servers from the test's main thread (fixtures and tests run there).

The classes raise `ServiceNotInstalled` when the binary is missing; a test that prefers skipping calls
`redis_server_or_skip()` first (it skips, or fails under CI, like tests.support.services.unavailable).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from tests.support.services import unavailable

REDIS_SERVER_CANDIDATES = ("/usr/bin/redis-server", "/usr/local/bin/redis-server")


class ServiceNotInstalled(RuntimeError):
    """The service's executable is not on this machine."""


class ServiceStartError(RuntimeError):
    """The service did not become ready in time, or exited while starting (message carries its log tail)."""


def find_redis_server() -> str | None:
    for candidate in REDIS_SERVER_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("redis-server")


def redis_server_or_skip() -> str:
    """Path of redis-server; otherwise skip the calling test (fail under CI, see services.unavailable)."""
    path = find_redis_server()
    if path is None:
        unavailable("redis-server", "not installed; on Debian: apt-get install redis-server")
    assert path is not None
    return path


def free_port() -> int:
    """A loopback port free right now (the OS picks it; a race with other processes is possible but rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_ping(port: int, timeout_s: float = 0.5) -> bool:
    """True once the server answers PONG (a server still loading its AOF answers -LOADING: not ready)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:  # refused/reset/timeout all mean "not ready yet"
        return False


class RedisProcess:
    """A private `redis-server` on 127.0.0.1:`port` with its data and log in `tmp_dir`."""

    def __init__(
        self,
        tmp_dir: Path | str,
        appendonly: bool = False,
        *,
        port: int | None = None,
        executable: str | None = None,
        start_timeout_s: float = 10.0,
        die_with_parent: bool = True,
    ) -> None:
        executable = executable or find_redis_server()
        if executable is None:
            raise ServiceNotInstalled("redis-server is not installed (Debian: apt-get install redis-server)")
        self.executable = executable
        self.dir = Path(tmp_dir)
        self.appendonly = appendonly
        self.port = port or free_port()
        self.start_timeout_s = start_timeout_s
        self.die_with_parent = die_with_parent
        self.log_path = self.dir / "redis-server.log"
        self.last_start_s: float | None = None  # seconds from spawn to the first PONG
        self.last_restart_s: float | None = None  # seconds from stop() start to the first PONG
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        args = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            # fsync every write: a kill -9 then loses nothing acknowledged, so persistence tests are deterministic
            "--appendfsync", "always",
            "--dir", str(self.dir),
            "--daemonize", "no",
        ]  # fmt: skip
        setpriv = shutil.which("setpriv")
        if self.die_with_parent and setpriv is not None:
            return [setpriv, "--pdeathsig", "KILL", *args]  # setpriv execs redis-server: same pid
        return args

    def start(self) -> RedisProcess:
        """Spawn the server and wait until it answers PING; ServiceStartError (with the log tail) otherwise."""
        if self.is_running():
            raise RuntimeError(f"redis-server already running on port {self.port}")
        self.dir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self._proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = began + self.start_timeout_s
        while not _redis_ping(self.port):
            if self._proc.poll() is not None:
                self._reap()
                raise ServiceStartError(f"redis-server exited while starting on port {self.port}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise ServiceStartError(f"redis-server not ready after {self.start_timeout_s}s:\n{self.log_tail()}")
            time.sleep(0.01)
        self.last_start_s = time.monotonic() - began
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM and wait (Redis shuts down cleanly, flushing the AOF); SIGKILL if it takes longer."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL: a crash, no shutdown work at all."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._reap()

    def restart(self, kill: bool = False) -> RedisProcess:
        """Stop (SIGTERM, or SIGKILL with kill=True) and start again on the SAME port and directory."""
        began = time.monotonic()
        if kill:
            self.kill()
        else:
            self.stop()
        self.start()
        self.last_restart_s = time.monotonic() - began
        return self

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"

    def _reap(self) -> None:
        assert self._proc is not None
        self._proc.wait()  # always reap: an unwaited Popen is a zombie and a ResourceWarning
        self._proc = None

    def __enter__(self) -> RedisProcess:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
