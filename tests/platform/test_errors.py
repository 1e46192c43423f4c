"""Every failure renders as application/problem+json with a code, never a stack trace."""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest
import structlog
from fastapi import APIRouter, FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from backend.config import MIB, Settings
from backend.main import create_app
from tests.support.app_client import open_client
from tests.support.factories import signed_up

PROBLEM = "application/problem+json"


class Echo(BaseModel):
    name: str
    count: int


class Boom(RuntimeError):
    pass


def probe_router() -> APIRouter:
    """Routes that exist only in this test module, to drive the shared error handling."""
    router = APIRouter(prefix="/probe")

    @router.post("/echo")
    async def echo(body: Echo) -> Echo:
        return body

    @router.get("/boom")
    async def boom() -> None:
        raise Boom("secret internal detail: mongodb://admin:hunter2@db")

    @router.get("/stream/{failure}")
    async def stream(failure: str) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"data: 1\n\n"
            # What FastAPI's SSE keep-alive task raises when the client hung up mid-write.
            errors: list[Exception] = [anyio.BrokenResourceError()]
            if failure == "and-a-bug":
                errors.append(Boom("a real failure"))
            raise ExceptionGroup("unhandled errors in a TaskGroup", errors)

        return StreamingResponse(body(), media_type="text/event-stream")

    return router


@pytest.fixture
async def probe_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    app.include_router(probe_router())
    async with open_client(app) as client:
        yield client


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"].endswith(f"/problems/{code}")
    assert body["title"] and body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v2/nothing-here"), 404, "not_found")


async def test_wrong_method_is_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v2")
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


async def test_malformed_json_is_422_validation_error(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post(
        "/probe/echo", content=b'{"name": "x", ', headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["type"] == "json_invalid"


async def test_a_body_that_is_not_utf8_is_422_validation_error(
    probe_client: httpx.AsyncClient,
) -> None:
    for path in ("/probe/echo", "/api/v2/auth/register", "/api/v2/auth/login"):
        response = await probe_client.post(
            path, content=b"\x08\xff(\xfe9{", headers={"content-type": "application/json"}
        )
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"] == [
            {"loc": ["body"], "msg": "The body is not UTF-8", "type": "json_invalid"}
        ]


async def test_accepted_without_a_body_sends_no_body(client: httpx.AsyncClient) -> None:
    _, alice = await signed_up(client)
    for response in (
        await client.post("/api/v2/auth/verify/request", headers=alice),
        await client.post("/api/v2/auth/password/forgot", json={"email": "x@example.com"}),
    ):
        assert response.status_code == 202
        assert response.content == b"" and "content-type" not in response.headers


async def call_asgi(app: FastAPI, path: str) -> list[dict[str, Any]]:
    """One GET straight into the app: a stream whose client left never completes, which
    an HTTP client library would refuse to hand back."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1),
        "server": ("testserver", 80), "state": {},
    }  # fmt: skip

    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # no disconnect: only the app's own error ends it
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_a_client_leaving_a_stream_is_not_an_error(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(log_level="info"))
    app.include_router(probe_router())
    async with open_client(app):
        with structlog.testing.capture_logs() as logs:
            sent = await call_asgi(app, "/probe/stream/client-left")
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"data: 1\n\n"
    assert "client_left_stream" in [e["event"] for e in logs]
    assert not [e for e in logs if e["event"] == "unhandled_error"]


async def test_a_stream_failing_for_another_reason_too_is_logged(app: FastAPI) -> None:
    app.include_router(probe_router())
    async with open_client(app):
        with structlog.testing.capture_logs() as logs:
            await call_asgi(app, "/probe/stream/and-a-bug")
    assert [e for e in logs if e["event"] == "unhandled_error"]


async def test_wrong_content_type_is_422_validation_error(
    probe_client: httpx.AsyncClient,
) -> None:
    response = await probe_client.post(
        "/probe/echo", content=b'{"name": "x", "count": 1}', headers={"content-type": "text/plain"}
    )
    assert_problem(response, 422, "validation_error")


async def test_validation_error_lists_fields_without_echoing_input(
    probe_client: httpx.AsyncClient,
) -> None:
    response = await probe_client.post("/probe/echo", json={"name": "s3cret-value", "count": "x"})
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"] == [
        {"loc": ["body", "count"], "msg": body["errors"][0]["msg"], "type": "int_parsing"}
    ]
    assert "s3cret-value" not in response.text


async def test_declared_oversized_body_is_413(probe_client: httpx.AsyncClient) -> None:
    # The header alone decides: the tiny body we actually send is never read.
    response = await probe_client.post(
        "/probe/echo",
        content=b"{}",
        headers={"content-type": "application/json", "content-length": str(10 * MIB + 1)},
    )
    assert_problem(response, 413, "payload_too_large")


async def test_undeclared_oversized_body_is_413(probe_client: httpx.AsyncClient) -> None:
    chunk = b" " * MIB

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(11):
            yield chunk

    response = await probe_client.post(
        "/probe/echo", content=stream(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload_too_large")


async def test_body_at_the_limit_is_read(probe_client: httpx.AsyncClient) -> None:
    body = b'{"name": "x", "count": 1}'
    padded = body + b" " * (10 * MIB - len(body))
    response = await probe_client.post(
        "/probe/echo", content=padded, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json() == {"name": "x", "count": 1}


async def test_unexpected_exception_is_500_without_internals(
    probe_client: httpx.AsyncClient,
) -> None:
    with structlog.testing.capture_logs() as logs:
        response = await probe_client.get("/probe/boom", headers={"x-request-id": "req-123"})
    body = assert_problem(response, 500, "internal_error")
    assert body["request_id"] == "req-123"
    assert "hunter2" not in response.text and "Traceback" not in response.text
    logged = [entry for entry in logs if entry["event"] == "unhandled_error"]
    assert logged and logged[0]["request_id"] == "req-123"
    assert "exc_info" in logged[0]


async def test_a_validation_error_reports_twenty_entries_and_the_count(
    client: httpx.AsyncClient,
) -> None:
    _, alice = await signed_up(client)
    files = [{"path": f"../{n}", "content": ""} for n in range(100)]
    response = await client.post(
        "/api/v2/projects", json={"name": "p", "files": files}, headers=alice
    )
    problem = assert_problem(response, 422, "validation_error")
    assert len(problem["errors"]) == 20 and problem["error_count"] == 100
    assert problem["errors"][0]["loc"] == ["body", "files", 0, "path"]


async def test_an_object_of_many_unknown_keys_costs_one_error(client: httpx.AsyncClient) -> None:
    # 700,000 keys once meant 700,000 error dicts built on the event loop.
    body = {f"k{n}": n for n in range(100_000)}
    response = await client.post("/api/v2/auth/refresh", json=body)
    problem = assert_problem(response, 422, "validation_error")
    assert problem["error_count"] == 1 and "too many fields" in problem["errors"][0]["msg"]
    # A few unknown keys are still each named.
    response = await client.post("/api/v2/auth/refresh", json={"refresh_token": "t", "a": 1})
    problem = assert_problem(response, 422, "validation_error")
    assert [e["loc"] for e in problem["errors"]] == [["body", "a"]]
