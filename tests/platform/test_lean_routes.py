"""The lean request path (`api_v2/solver.py`) answers exactly as FastAPI's own solver does."""

from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute

from tests.support.factories import signed_up

# Headers that differ between any two requests, whichever path serves them.
_PER_REQUEST = {"x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset", "date"}


def _route(app: FastAPI, method: str, path: str) -> APIRoute:
    return next(
        r for r in app.routes if isinstance(r, APIRoute) and r.path == path and method in r.methods
    )


def _is_lean(route: APIRoute) -> bool:
    return "lean_app" in route.app.__qualname__  # type: ignore[attr-defined]


def _unused() -> None:
    """A provider no route depends on: overriding it switches every route to FastAPI's path."""


async def _answer(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> Any:
    response = await client.get(url, headers=headers)
    body = response.json()
    if isinstance(body, dict):
        body.pop("instance", None)
        body.pop("request_id", None)
    kept = {k: v for k, v in response.headers.items() if k not in _PER_REQUEST}
    return response.status_code, kept, body


async def test_the_hot_routes_take_the_lean_path(app: FastAPI) -> None:
    for method, path in [
        ("GET", "/healthz"),
        ("GET", "/api/v2/projects"),
        ("GET", "/api/v2/auth/me"),
        ("GET", "/api/v2/generate/jobs/{job_id}"),
    ]:
        assert _is_lean(_route(app, method, path)), path
    # A body, or a `Response` parameter, keeps FastAPI's own solver.
    assert not _is_lean(_route(app, "POST", "/api/v2/projects"))
    assert not _is_lean(_route(app, "GET", "/api/v2/projects/{project_id}"))


async def test_lean_answers_equal_fastapis_for_good_and_bad_input(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _, auth = await signed_up(client)
    for n in range(3):
        created = await client.post("/api/v2/projects", json={"name": f"P{n}"}, headers=auth)
        assert created.status_code == 201
    project_id = created.json()["id"]
    cases = [
        ("/healthz", {}),
        ("/api/v2/projects", auth),
        ("/api/v2/projects?page=2&limit=1&sort=name", auth),
        ("/api/v2/projects?search=P1", auth),
        ("/api/v2/projects?page=0", auth),
        ("/api/v2/projects?limit=abc&page=x&sort=nope", auth),
        ("/api/v2/projects?search=" + "a" * 201, auth),
        ("/api/v2/projects?limit=101", auth),
        ("/api/v2/projects", {}),
        ("/api/v2/projects", {"authorization": "Bearer not-a-token"}),
        ("/api/v2/projects", {"authorization": "Basic abc"}),
        ("/api/v2/auth/me", auth),
        (f"/api/v2/projects/{project_id}/messages?limit=2", auth),
        ("/api/v2/projects/not-an-id/messages", auth),
        (f"/api/v2/projects/{project_id}/messages?page=-1", auth),
        ("/api/v2/generate/jobs/0123456789abcdef01234567", auth),
        ("/api/v2/generate/jobs?status=bogus", auth),
    ]
    lean = [await _answer(client, url, headers) for url, headers in cases]
    app.dependency_overrides[_unused] = _unused
    try:
        full = [await _answer(client, url, headers) for url, headers in cases]
    finally:
        app.dependency_overrides.clear()
    for (url, _), ours, fastapis in zip(cases, lean, full, strict=True):
        assert ours == fastapis, url
    statuses = {status for status, _, _ in lean}
    assert {200, 401, 404, 422} <= statuses  # the cases cover answers and refusals
