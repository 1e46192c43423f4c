"""The server bounds a request's head (backend/http_protocol.py): raw bytes on a real socket,
since an HTTP client library would refuse to send most of these."""

import re
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI

from backend.config import Settings
from backend.http_protocol import MAX_HEAD_BYTES, MAX_HEADERS, BoundedHttpTools
from backend.main import create_app
from tests.support.app_client import open_client
from tests.support.servers import ThreadedServer

QUICK_HEAD_TIMEOUT_S = 2.0


@pytest.fixture
def port(app: FastAPI) -> Iterator[int]:
    server = ThreadedServer(app).start()
    yield server.port
    server.stop()


@pytest.fixture
def quick_head_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Heads are due within 2 s instead of 10 (read as each connection opens)."""
    monkeypatch.setattr(BoundedHttpTools, "head_timeout_s", QUICK_HEAD_TIMEOUT_S)


def exchange(port: int, *requests: bytes) -> bytes:
    """Send the bytes (in separate writes), then read until the server closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for request in requests:
            try:
                sock.sendall(request)
            except (BrokenPipeError, ConnectionResetError):
                break  # refused mid-send: what it answered is what counts
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return answer


def head(*headers: str, target: str = "/healthz") -> bytes:
    lines = [f"GET {target} HTTP/1.1", "host: api", *headers, "connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_an_ordinary_request_with_many_headers_is_served(port: int) -> None:
    headers = [f"x-h{n}: {'v' * 100}" for n in range(MAX_HEADERS - 3)]
    assert status(exchange(port, head(*headers))) == 200


def test_too_many_header_lines_are_refused_with_431(port: int) -> None:
    answer = exchange(port, head(*(f"x-h{n}: v" for n in range(MAX_HEADERS + 1))))
    assert status(answer) == 431 and b"connection: close" in answer


def test_too_many_header_bytes_are_refused_with_431(port: int) -> None:
    headers = [f"x-h{n}: {'v' * 1000}" for n in range(40)]  # 40 KiB in 40 lines
    assert status(exchange(port, head(*headers))) == 431


def test_one_endless_header_is_refused_as_it_arrives(port: int) -> None:
    # 37 MiB of one header, in 1 MiB writes: refused after the first, never buffered.
    start = b"GET /healthz HTTP/1.1\r\nhost: api\r\nx-big: "
    answer = exchange(port, start, *([b"v" * (1024 * 1024)] * 37))
    assert status(answer) == 431


def test_a_huge_url_is_refused_with_431(port: int) -> None:
    assert status(exchange(port, head(target="/healthz?q=" + "a" * MAX_HEAD_BYTES))) == 431


def test_a_large_body_is_not_taken_for_headers(port: int) -> None:
    body = b'{"refresh_token": "' + b"a" * (200 * 1024) + b'"}'
    request = (
        b"POST /api/v2/auth/refresh HTTP/1.1\r\nhost: api\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )
    assert status(exchange(port, request)) == 422  # read as a body: the token is too long


def test_requests_on_one_connection_are_each_bounded(port: int) -> None:
    keep = head().replace(b"connection: close", b"connection: keep-alive")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for _ in range(2):
            sock.sendall(keep)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall(head(*(f"x-h{n}: {'v' * 1000}" for n in range(40))))
        assert sock.recv(65536).startswith(b"HTTP/1.1 431")


def test_a_request_pipelined_after_a_large_body_is_answered(port: int) -> None:
    # The second head begins in the read that ends the first body, and is finished in a later
    # read: only its own bytes count, not the 40 KB of body before it.
    body = b'{"refresh_token": "' + b"a" * (40 * 1024) + b'"}'
    post = (
        b"POST /api/v2/auth/refresh HTTP/1.1\r\nhost: api\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    get = head()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(post + body[:10])
        time.sleep(0.2)
        sock.sendall(body[10:] + get[:20])
        time.sleep(0.2)
        sock.sendall(get[20:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answer) == [b"422", b"200"]


def trickle(sock: socket.socket, line: bytes) -> tuple[bytes, float]:
    """Send `line` every 0.5 s until the server answers or closes (for 10 s at most): what it
    sent (nothing if it closed), and after how long."""
    started = time.monotonic()
    sock.settimeout(0.5)
    while time.monotonic() - started < 10:
        try:
            sock.sendall(line)
            return sock.recv(65536), time.monotonic() - started
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
    return b"", time.monotonic() - started


def test_a_head_sent_slowly_is_answered_408(port: int, quick_head_timeout: None) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: api\r\n")
        answer, elapsed = trickle(sock, b"x-slow: v\r\n")
    assert status(answer) == 408 and b"connection: close" in answer
    assert elapsed < QUICK_HEAD_TIMEOUT_S + 2


def test_a_connection_that_sends_nothing_is_closed(port: int, quick_head_timeout: None) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=QUICK_HEAD_TIMEOUT_S + 3) as sock:
        assert sock.recv(65536) == b""  # closed, without an answer: nothing was asked


def test_empty_lines_do_not_keep_an_idle_connection_open(
    port: int, quick_head_timeout: None
) -> None:
    # Empty lines may precede a request; they stop uvicorn's keep-alive timer, not ours.
    keep = head().replace(b"connection: close", b"connection: keep-alive")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(keep)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        answer, elapsed = trickle(sock, b"\r\n")
    assert answer == b"" and elapsed < QUICK_HEAD_TIMEOUT_S + 2


async def test_production_serves_only_through_the_bounded_protocol(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(environment="production", jwt_secret="p" * 40, mail_to_log=True)
    async with open_client(create_app(settings)) as client:  # in-process: no protocol at all
        refused = await client.get("/healthz")
    assert refused.status_code == 503
    assert refused.json()["code"] == "service_unavailable"
    assert "BoundedHttpTools" in refused.json()["detail"]
    server = ThreadedServer(create_app(settings)).start()
    try:
        assert status(exchange(server.port, head())) == 200
    finally:
        server.stop()
