"""The server bounds a request's head (backend/http_protocol.py): raw bytes on a real socket,
since an HTTP client library would refuse to send most of these."""

import socket
from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from backend.http_protocol import MAX_HEAD_BYTES, MAX_HEADERS
from tests.servers import ThreadedServer


@pytest.fixture
def port(app: FastAPI) -> Iterator[int]:
    server = ThreadedServer(app).start()
    yield server.port
    server.stop()


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
