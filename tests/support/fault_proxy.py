"""A TCP fault proxy on 127.0.0.1 for reliability tests (toxiproxy is not obtainable on these machines).

The proxy listens on an OS-chosen loopback port and forwards to one upstream host:port. An asyncio loop runs
in a background thread; the public methods are called from the test's thread and block until the loop has
applied them, so "after `refuse()` returns, connects fail" holds without sleeps.

Modes (`set_mode`; a connection keeps the mode it was accepted in):

* `Mode.PASS` - raw bytes both ways, half-closes propagated. Per NEW connection, `reset_probability` resets it
  at once (RST) and `delay_s` delays the upstream connect. Works for any protocol (PostgreSQL, Redis, ...).
* `Mode.HTTP` - HTTP/1.1 with keep-alive, request by request (heads parsed; Content-Length and chunked bodies
  streamed; `Expect: 100-continue` honoured). Per REQUEST, in this order:
  `http_error_probability` answers `503 Slow Down` with an S3 XML error and `Connection: close`, without
  forwarding anything, so the upstream never sees the request; `reset_probability` forwards the request, then
  only a strict prefix of the response (where: `ResetPoint`) and RSTs, so the client always notices;
  `delay_s` delays the final response head. No fault can make a write look complete when it was not: a
  request either never reaches the upstream, or its response is cut short (the client retries an idempotent
  PUT/GET), which is exactly what S3 clients must survive. Pipelined requests are not supported (urllib3 does
  not pipeline); an upstream closing an idle keep-alive connection is noticed at the next request, which then
  gets no response (clients retry that like any stale pooled connection).
* `Mode.BLACKHOLE` - accept and swallow bytes, never answer (a hung peer: exercises client timeouts).

Outages: `refuse()` closes the listening socket and RSTs every open connection (clients get
ConnectionRefusedError / ConnectionResetError); `accept()` reopens on the SAME port; `refuse_for(s)` does both
with a timer. `drop_connections()` RSTs open connections but keeps listening.

`set_faults(..., seed=1)` makes the draws reproducible; `max_faults` caps injected errors+resets (delays are
not counted), e.g. "503 for the first 3 requests, then healthy". `stats` returns a snapshot of the counters;
`errors` lists unexpected exceptions inside the proxy (a bug there must fail the test, not hide).
"""

from __future__ import annotations

import asyncio
import enum
import random
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, TypeVar

_T = TypeVar("_T")
_CHUNK = 64 * 1024
_CONTROL_TIMEOUT_S = 10.0  # a control call that takes longer means the loop thread is stuck: fail loudly
_LINGER_S = 2.0  # how long a closing 503 connection drains the client's unread body (see _lingering_close)
_BODY_GRACE_S = 0.5  # the upstream answered before the request body was forwarded completely: wait this long
_SLOW_DOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate. (injected by FaultProxy)</Message>"
    b"<RequestId>fault-proxy</RequestId></Error>"
)
_SLOW_DOWN = (
    b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_SLOW_DOWN_BODY), _SLOW_DOWN_BODY)
)
# errors a peer can cause (vanished, reset, sent garbage): the proxy must outlive them, so they are counted
_PEER_ERRORS = (ConnectionError, OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


class Mode(enum.Enum):
    PASS = "pass"
    HTTP = "http"
    BLACKHOLE = "blackhole"


class ResetPoint(enum.Enum):
    """Where an HTTP-mode reset cuts the response (always a strict prefix of it)."""

    HEAD = "head"  # inside the status line/headers: botocore retries the call itself
    BODY = "body"  # full head, part of the body: the call returns, reading the body fails (truncated download);
    #                a response without a body (Content-Length 0, HEAD, 204) is cut inside its head instead
    ANY = "any"  # anywhere in head+body


@dataclass
class ProxyStats:
    connections: int = 0
    requests: int = 0  # HTTP requests read from clients
    resets: int = 0  # injected resets (not drop_connections/refuse)
    http_errors: int = 0
    delays: int = 0
    dropped: int = 0  # connections reset by drop_connections()/refuse() (or closed by stop())
    upstream_failures: int = 0  # upstream connect refused: the client is reset, like a dead server
    connection_errors: int = 0  # peers that reset/vanished/sent garbage
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass(frozen=True)
class _Plan:
    error: bool = False
    reset: bool = False
    delay: float = 0.0
    cut: float = 0.0  # fraction of the response prefix a reset forwards, in [0, 1)
    reset_point: ResetPoint = ResetPoint.ANY


class _Reset(Exception):
    """Ends a connection with an RST to the client."""


def _rst(writer: asyncio.StreamWriter | None) -> None:
    """Close with SO_LINGER 0 so the kernel sends RST, not FIN: the peer sees ECONNRESET."""
    if writer is None or writer.transport.is_closing():
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:  # already torn down by the kernel: abort() below still releases it
            pass
    writer.transport.abort()


def _parse_head(head: bytes) -> tuple[list[str], dict[str, str]]:
    """Split an HTTP head into its first line's words and lower-cased headers (ValueError if malformed)."""
    lines = head.decode("latin-1").split("\r\n")
    first = lines[0].split(" ", 2)
    if len(first) < 3:
        raise ValueError(f"malformed HTTP head line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return first, headers


class FaultProxy:
    """Loopback TCP proxy to `upstream` with injectable faults; see the module docstring."""

    def __init__(self, upstream: tuple[str, int], mode: Mode = Mode.PASS) -> None:
        self.upstream = upstream
        self._mode = mode
        self._lock = threading.Lock()
        self._stats = ProxyStats()
        self._errors: list[BaseException] = []
        self.set_faults()
        self._port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._reopen: asyncio.TimerHandle | None = None
        self._conns: dict[asyncio.Task[None], list[asyncio.StreamWriter]] = {}
        self._dropping: set[asyncio.Task[None]] = set()

    # ---- control API (test thread) ----------------------------------------------------------------------
    def start(self) -> FaultProxy:
        if self._loop is not None:
            raise RuntimeError("FaultProxy is already started")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        try:
            self._call(self._open)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._call(lambda: self._refuse(graceful=True))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_CONTROL_TIMEOUT_S)
        self._loop, self._thread = None, None

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("FaultProxy is not started")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_mode(self, mode: Mode) -> None:
        self._mode = mode  # read once per new connection, on the loop thread; a plain attribute swap is atomic

    def set_faults(
        self,
        reset_probability: float = 0.0,
        http_error_probability: float = 0.0,
        delay_s: tuple[float, float] = (0.0, 0.0),
        seed: int | None = None,
        max_faults: int | None = None,
        reset_point: ResetPoint = ResetPoint.ANY,
    ) -> None:
        """Replace the fault settings (defaults: no faults). Applies to new connections/requests."""
        with self._lock:
            self._reset_p, self._error_p, self._delay_s = reset_probability, http_error_probability, delay_s
            self._max_faults, self._reset_point, self._faults_used = max_faults, reset_point, 0
            self._rng = random.Random(seed)

    def refuse(self) -> None:
        self._call(self._refuse)

    def accept(self) -> None:
        self._call(self._open)

    def refuse_for(self, seconds: float) -> None:
        """Refuse now; reopen on the same port after `seconds` (returns at once)."""

        async def refuse_then_schedule() -> None:
            await self._refuse()
            assert self._loop is not None
            self._reopen = self._loop.call_later(seconds, self._reopen_now)

        self._call(refuse_then_schedule)

    def drop_connections(self) -> int:
        """RST every open connection (both sides); keep listening. Returns how many were dropped."""
        return self._call(self._drop)

    @property
    def stats(self) -> ProxyStats:
        with self._lock:
            return replace(self._stats)

    @property
    def errors(self) -> list[BaseException]:
        with self._lock:
            return list(self._errors)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # ---- loop thread --------------------------------------------------------------------------------------
    def _call(self, fn: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        if self._loop is None:
            raise RuntimeError("FaultProxy is not started")
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(_CONTROL_TIMEOUT_S)

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            # like asyncio.run: finish whatever is left so every socket is closed before the loop is
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    def _reopen_now(self) -> None:
        def record_failure(task: asyncio.Task[None]) -> None:
            exc = None if task.cancelled() else task.exception()
            if exc is not None:  # e.g. another process took the port meanwhile: the test must hear of it
                self._record(exc)

        self._reopen = None
        asyncio.ensure_future(self._open()).add_done_callback(record_failure)

    def _record(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    def _bump(self, field: str, n: int = 1) -> None:
        with self._lock:
            setattr(self._stats, field, getattr(self._stats, field) + n)

    async def _open(self) -> None:
        if self._reopen is not None:
            self._reopen.cancel()
            self._reopen = None
        if self._server is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # SO_REUSEADDR: reopening the same port must not be blocked by TIME_WAIT leftovers of dropped connections
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self._port))
            sock.listen(128)
            self._server = await asyncio.start_server(self._on_client, sock=sock)
        except BaseException:
            sock.close()
            raise
        self._port = sock.getsockname()[1]

    async def _refuse(self, graceful: bool = False) -> None:
        if self._reopen is not None:  # an explicit refuse()/stop() overrides a pending refuse_for() reopen
            self._reopen.cancel()
            self._reopen = None
        if self._server is not None:
            self._server.close()  # closes the listening socket now; pending unaccepted connects get RST
            self._server = None
        await self._drop(graceful)

    async def _drop(self, graceful: bool = False) -> int:
        """RST (or, when stopping, FIN: no reason to alarm the upstream) every connection and end its handler."""
        conns = list(self._conns.items())
        for task, writers in conns:
            for writer in writers:
                if graceful:
                    writer.close()
                else:
                    _rst(writer)
            self._dropping.add(task)
            task.cancel()
        await asyncio.gather(*(task for task, _ in conns), return_exceptions=True)
        await asyncio.sleep(0)  # let the aborted transports run connection_lost, which closes their sockets
        self._bump("dropped", len(conns))
        return len(conns)

    def _draw(self, http: bool) -> _Plan:
        with self._lock:
            room = self._max_faults is None or self._faults_used < self._max_faults
            error = room and http and self._rng.random() < self._error_p
            reset = room and not error and self._rng.random() < self._reset_p
            self._faults_used += error or reset
            low, high = self._delay_s
            delay = self._rng.uniform(low, high) if high > 0 else 0.0
            return _Plan(error, reset, delay, self._rng.random(), self._reset_point)

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        writers = self._conns[task] = [writer]
        self._bump("connections")
        mode = self._mode
        try:
            if self._server is None:  # accepted just before refuse() closed the listener: it is refused too
                raise _Reset
            if mode is Mode.BLACKHOLE:
                while data := await reader.read(_CHUNK):
                    self._bump("bytes_up", len(data))
                return
            plan = self._draw(http=False) if mode is Mode.PASS else _Plan()
            if plan.reset:
                self._bump("resets")
                raise _Reset
            if plan.delay:
                self._bump("delays")
                await asyncio.sleep(plan.delay)
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                self._bump("upstream_failures")
                raise _Reset from None
            writers.append(up_writer)
            if mode is Mode.PASS:
                await self._pipe(reader, writer, up_reader, up_writer)
            else:
                await self._http(reader, writer, up_reader, up_writer)
        except _Reset:
            _rst(writer)
        except _PEER_ERRORS:  # a peer reset/vanished/sent garbage: normal under fault tests, counted, not raised
            self._bump("connection_errors")
            _rst(writer)
        except Exception as exc:  # a bug in this proxy: record it so the test sees it (see `errors`)
            self._record(exc)
            _rst(writer)
        except asyncio.CancelledError:
            if task not in self._dropping:
                raise
            # cancelled by _drop (already RST): end normally, since on 3.11 asyncio's stream callback calls
            # task.exception() on the finished handler and logs a cancelled one as an error
        finally:
            self._conns.pop(task, None)
            self._dropping.discard(task)
            for w in writers:
                w.close()  # no-op after an RST

    async def _copy(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, counter: str, n: int = -1) -> None:
        """Copy `n` bytes (-1: until EOF, then half-close `dst`)."""
        while n:
            data = await src.read(_CHUNK if n < 0 else min(n, _CHUNK))
            if not data:
                if n > 0:
                    raise asyncio.IncompleteReadError(b"", n)
                if dst.can_write_eof():
                    dst.write_eof()
                return
            self._bump(counter, len(data))  # before writing: a test reading stats after its call sees the bytes
            dst.write(data)
            n -= len(data) if n > 0 else 0
            await dst.drain()

    async def _pipe(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter, ur: asyncio.StreamReader,
                    uw: asyncio.StreamWriter) -> None:  # fmt: skip
        up = asyncio.ensure_future(self._copy(cr, uw, "bytes_up"))
        down = asyncio.ensure_future(self._copy(ur, cw, "bytes_down"))
        try:
            await asyncio.gather(up, down)  # one side failing raises here, and the caller resets the client
        finally:
            up.cancel()
            down.cancel()
            await asyncio.gather(up, down, return_exceptions=True)

    async def _copy_body(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, headers: dict[str, str],
                         counter: str) -> None:  # fmt: skip
        """Forward one message body framed by Content-Length or chunked encoding (none: no body)."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            size = -1
            while size:
                line = await src.readuntil(b"\r\n")
                self._bump(counter, len(line))
                dst.write(line)
                size = int(line.split(b";")[0].strip(), 16)
                await self._copy(src, dst, counter, size + 2 if size else 0)
            while line != b"\r\n":  # after the last (empty) chunk: trailer lines up to an empty one
                line = await src.readuntil(b"\r\n")
                self._bump(counter, len(line))
                dst.write(line)
            await dst.drain()
        elif "content-length" in headers:
            await self._copy(src, dst, counter, int(headers["content-length"]))

    async def _http(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter, ur: asyncio.StreamReader,
                    uw: asyncio.StreamWriter) -> None:  # fmt: skip
        while True:
            try:
                head = await cr.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    raise
                return  # the client closed its idle keep-alive connection
            (method, _, _), headers = _parse_head(head)
            self._bump("requests")
            plan = self._draw(http=True)
            if plan.error:
                self._bump("http_errors")
                cw.write(_SLOW_DOWN)
                return await self._lingering_close(cr, cw)
            self._bump("bytes_up", len(head))
            uw.write(head)
            body = asyncio.ensure_future(self._copy_body(cr, uw, headers, "bytes_up"))
            # the client vanishing mid-body must not leave us waiting for an upstream response that never comes
            body.add_done_callback(lambda t: t.cancelled() or t.exception() is None or uw.transport.abort())
            try:
                keep_alive = await self._relay_response(ur, cw, method, plan)
                if not body.done():  # the upstream answered early (e.g. rejected an Expect: 100-continue)
                    await asyncio.wait({body}, timeout=_BODY_GRACE_S)
            finally:
                body.cancel()
                await asyncio.gather(body, return_exceptions=True)
            if (
                body.cancelled()
                or body.exception()
                or not keep_alive
                or "close" in headers.get("connection", "").lower()
            ):
                return await self._lingering_close(cr, cw)

    async def _relay_response(self, ur: asyncio.StreamReader, cw: asyncio.StreamWriter, method: str,
                              plan: _Plan) -> bool:  # fmt: skip
        """Forward one response (after any 1xx); return whether the connection may be reused."""
        while True:
            head = await ur.readuntil(b"\r\n\r\n")
            (version, status, _), headers = _parse_head(head)
            if not status.startswith("1"):
                break
            self._bump("bytes_down", len(head))
            cw.write(head)  # 100 Continue: the client waits for it before sending the body
            await cw.drain()
        if plan.delay:
            self._bump("delays")
            await asyncio.sleep(plan.delay)
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        no_body = method == "HEAD" or status in ("204", "304")
        length = 0 if no_body else (None if chunked else int(headers.get("content-length", -1)))
        length = None if length == -1 else length  # neither header: the body runs until the upstream closes
        if plan.reset:
            # the cut must leave the response incomplete: a full head with Content-Length 0 would be a success
            if plan.reset_point is ResetPoint.BODY and (length is None or length > 0):
                cut = len(head) + int((length or 0) * plan.cut)  # unknown length: the head alone is incomplete
            elif plan.reset_point is ResetPoint.ANY:
                cut = int((len(head) + (length or 0)) * plan.cut)
            else:
                cut = int(len(head) * plan.cut)
            self._bump("resets")
            self._bump("bytes_down", min(cut, len(head)))
            cw.write(head[:cut])
            if cut > len(head):
                await self._copy(ur, cw, "bytes_down", cut - len(head))
            await cw.drain()
            raise _Reset
        self._bump("bytes_down", len(head))
        cw.write(head)
        if length is None and not chunked:
            await self._copy(ur, cw, "bytes_down")
            return False
        if chunked:
            await self._copy_body(ur, cw, headers, "bytes_down")
        else:
            await self._copy(ur, cw, "bytes_down", length or 0)
        conn = headers.get("connection", "").lower()
        return "close" not in conn and (version != "HTTP/1.0" or "keep-alive" in conn)

    @staticmethod
    async def _lingering_close(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        """FIN our side, then drain what the client still sends: closing with unread input would send RST,
        which can destroy the response before the client reads it."""
        await cw.drain()
        if cw.can_write_eof():
            cw.write_eof()

        async def drain_input() -> None:
            while await cr.read(_CHUNK):
                pass

        try:
            await asyncio.wait_for(drain_input(), _LINGER_S)
        except asyncio.TimeoutError:  # the client keeps the connection open: close it anyway (3.10: not builtin)
            return
