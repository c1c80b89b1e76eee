"""The fault proxy itself: byte-exact forwarding, outages on the same port, RSTs, and HTTP faults against moto."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import io
import os
import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, IncompleteReadError, ResponseStreamingError

from tests.support.fault_proxy import FaultProxy, Mode, ResetPoint
from tests.support.s3_fixtures import plain_client
from tests.support.s3_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY

pytestmark = pytest.mark.timeout(30)


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except ConnectionResetError:  # drop_connections()/refuse() reset the upstream side too: expected here
            return


class _ChunkedHandler(http.server.BaseHTTPRequestHandler):
    """Reads a chunked request body by hand and answers it, reversed, as a chunked response (keep-alive)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
        body = b""
        while size := int(self.rfile.readline().split(b";")[0], 16):
            body += self.rfile.read(size)
            self.rfile.readline()
        self.rfile.readline()  # the empty line ending the (absent) trailers
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in (body[::-1][:3], body[::-1][3:]):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


@contextlib.contextmanager
def _serve(server: socketserver.TCPServer) -> Iterator[tuple[str, int]]:
    # a short poll interval: shutdown() waits up to one interval, 0.5 s by default
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server.server_address[:2]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    with _serve(socketserver.ThreadingTCPServer(("127.0.0.1", 0), _EchoHandler)) as address:
        yield address


@pytest.fixture
def echo_proxy(echo_server: tuple[str, int]) -> Iterator[FaultProxy]:
    with FaultProxy(upstream=echo_server) as proxy:
        yield proxy
        assert proxy.errors == []


def _connect(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=5)


def _assert_reset_at_once(proxy: FaultProxy) -> None:
    """The proxy RSTs a connection right after accepting it: on loopback that RST can beat the client's own
    connect() bookkeeping, so the reset surfaces either from connect() or from the first recv()."""
    with pytest.raises(ConnectionResetError):
        with _connect(proxy) as sock:
            sock.recv(1)


def _echo(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def test_pass_forwards_bytes_exactly_and_propagates_half_close(echo_proxy: FaultProxy) -> None:
    payload = os.urandom(1024 * 1024)
    with _connect(echo_proxy) as sock:
        # in 64 KiB pieces: echoing 1 MiB at once would fill both directions' buffers and stall
        echoed = b"".join(_echo(sock, payload[i : i + 65536]) for i in range(0, len(payload), 65536))
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b""  # our FIN reached the echo server, and its FIN came back
    assert echoed == payload
    stats = echo_proxy.stats
    assert (stats.connections, stats.bytes_up, stats.bytes_down) == (1, len(payload), len(payload))


def test_refuse_for_refuses_then_reopens_on_the_same_port(echo_proxy: FaultProxy) -> None:
    port = echo_proxy.port
    with _connect(echo_proxy) as live:
        assert _echo(live, b"ping") == b"ping"
        began = time.monotonic()
        echo_proxy.refuse_for(1.0)
        with pytest.raises(ConnectionResetError):  # the open connection is reset, not closed politely
            live.sendall(b"x")
            live.recv(1)
    with pytest.raises(ConnectionRefusedError):
        _connect(echo_proxy).close()
    while True:
        try:
            sock = _connect(echo_proxy)
            break
        except ConnectionRefusedError:
            assert time.monotonic() - began < 5, "the proxy did not reopen"
            time.sleep(0.05)
    with sock:
        assert _echo(sock, b"back") == b"back"
    assert 0.9 <= time.monotonic() - began
    assert echo_proxy.port == port and echo_proxy.stats.dropped == 1


def test_manual_refuse_and_accept(echo_proxy: FaultProxy) -> None:
    echo_proxy.refuse()
    with pytest.raises(ConnectionRefusedError):
        _connect(echo_proxy).close()
    echo_proxy.accept()
    with _connect(echo_proxy) as sock:
        assert _echo(sock, b"again") == b"again"


def test_drop_connections_resets_live_connections_and_keeps_listening(echo_proxy: FaultProxy) -> None:
    with _connect(echo_proxy) as first, _connect(echo_proxy) as second:
        assert _echo(first, b"a") == b"a" and _echo(second, b"b") == b"b"
        assert echo_proxy.drop_connections() == 2
        for sock in (first, second):
            with pytest.raises(ConnectionResetError):
                sock.recv(1)
    with _connect(echo_proxy) as sock:
        assert _echo(sock, b"still listening") == b"still listening"


def test_pass_mode_reset_probability_applies_per_new_connection(echo_proxy: FaultProxy) -> None:
    echo_proxy.set_faults(reset_probability=1.0, max_faults=1, seed=1)
    _assert_reset_at_once(echo_proxy)
    with _connect(echo_proxy) as sock:  # the fault budget is spent: healthy again
        assert _echo(sock, b"ok") == b"ok"
    assert echo_proxy.stats.resets == 1


def test_delay_and_blackhole(echo_proxy: FaultProxy) -> None:
    echo_proxy.set_faults(delay_s=(0.3, 0.3))
    began = time.monotonic()
    with _connect(echo_proxy) as sock:
        assert _echo(sock, b"late") == b"late"
    assert time.monotonic() - began >= 0.3 and echo_proxy.stats.delays == 1
    echo_proxy.set_mode(Mode.BLACKHOLE)
    with _connect(echo_proxy) as sock:
        sock.settimeout(0.3)
        sock.sendall(b"anyone?")
        with pytest.raises(socket.timeout):
            sock.recv(1)


def test_dead_upstream_resets_the_client() -> None:
    with socket.socket() as placeholder:  # a port nobody listens on
        placeholder.bind(("127.0.0.1", 0))
        dead = placeholder.getsockname()
    with FaultProxy(upstream=dead) as proxy:
        _assert_reset_at_once(proxy)
    assert proxy.stats.upstream_failures == 1 and proxy.errors == []


def test_http_mode_streams_chunked_bodies_over_keep_alive() -> None:
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ChunkedHandler)
    with _serve(upstream) as address:
        with FaultProxy(upstream=address, mode=Mode.HTTP) as proxy:
            conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
            try:
                for text in (b"hello world", b"second request"):
                    conn.request("POST", "/", body=iter([text[:4], text[4:]]), encode_chunked=True)
                    assert conn.getresponse().read() == text[::-1]
            finally:
                conn.close()
            stats = proxy.stats
            assert (stats.connections, stats.requests) == (1, 2) and proxy.errors == []


# ---- HTTP faults in front of a real moto S3 server ------------------------------------------------------------


@pytest.fixture
def s3_proxy(s3_endpoint: str) -> Iterator[tuple[FaultProxy, str]]:
    """(proxy in HTTP mode in front of the session's moto server, a fresh bucket on it)."""
    bucket = f"proxy-{uuid.uuid4().hex[:16]}"
    direct = plain_client(s3_endpoint)
    try:
        direct.create_bucket(Bucket=bucket)
    finally:
        direct.close()
    host, port = s3_endpoint.removeprefix("http://").split(":")
    with FaultProxy(upstream=(host, int(port)), mode=Mode.HTTP) as proxy:
        yield proxy, bucket
        assert proxy.errors == []


def _client(proxy: FaultProxy, max_attempts: int = 5) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=proxy.endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=5,
            read_timeout=5,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"},
        ),
    )


def test_injected_503_is_an_s3_slow_down(s3_proxy: tuple[FaultProxy, str]) -> None:
    proxy, bucket = s3_proxy
    proxy.set_faults(http_error_probability=1.0)
    client = _client(proxy, max_attempts=1)
    try:
        with pytest.raises(ClientError) as caught:
            client.put_object(Bucket=bucket, Key="k", Body=b"v")
    finally:
        client.close()
    assert caught.value.response["Error"]["Code"] == "SlowDown"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_boto3_retries_through_injected_503s(s3_proxy: tuple[FaultProxy, str]) -> None:
    proxy, bucket = s3_proxy
    payload = os.urandom(200_000)
    client = _client(proxy)
    try:
        proxy.set_faults(http_error_probability=1.0, max_faults=2, seed=1)  # 503 for 2 requests, then healthy
        client.put_object(Bucket=bucket, Key="obj", Body=payload)
        proxy.set_faults(http_error_probability=1.0, max_faults=1, seed=2)
        body = client.get_object(Bucket=bucket, Key="obj")["Body"]
        with body:
            assert body.read() == payload
    finally:
        client.close()
    stats = proxy.stats
    assert stats.http_errors == 3 and stats.requests == 5


def test_boto3_recovers_from_resets(s3_proxy: tuple[FaultProxy, str]) -> None:
    proxy, bucket = s3_proxy
    payload = os.urandom(300_000)
    client = _client(proxy)
    try:
        # cut inside the response head: botocore sees a broken connection and retries the PUT (idempotent)
        proxy.set_faults(reset_probability=1.0, max_faults=2, reset_point=ResetPoint.HEAD, seed=3)
        client.put_object(Bucket=bucket, Key="obj", Body=payload)
        assert proxy.stats.resets == 2

        # cut inside the body: get_object returns, the READ fails detectably; botocore does not retry reads ...
        proxy.set_faults(reset_probability=1.0, max_faults=1, reset_point=ResetPoint.BODY, seed=4)
        body = client.get_object(Bucket=bucket, Key="obj")["Body"]
        with body, pytest.raises((ResponseStreamingError, IncompleteReadError)):
            body.read()

        # ... s3transfer's download does (it retries streaming errors itself)
        proxy.set_faults(reset_probability=1.0, max_faults=1, reset_point=ResetPoint.BODY, seed=5)
        target = io.BytesIO()
        client.download_fileobj(bucket, "obj", target)
        assert target.getvalue() == payload
    finally:
        client.close()
    assert proxy.stats.resets == 4
