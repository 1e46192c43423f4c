"""Request ids, security headers, CORS and the client address."""

import ipaddress
import json
from collections.abc import Callable

import httpx
import pytest

from backend.client_ip import resolve_client_ip
from backend.config import Settings
from backend.main import create_app
from tests.support.app_client import open_client


async def test_sane_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"x-request-id": "abc.DEF-123_x"})
    assert response.headers["x-request-id"] == "abc.DEF-123_x"


@pytest.mark.parametrize(
    "hostile",
    ["a" * 129, "has space", "semi;colon", "<script>", "ümlaut", "new\\nline", ""],
)
async def test_hostile_request_id_is_replaced(client: httpx.AsyncClient, hostile: str) -> None:
    response = await client.get("/healthz", headers={"x-request-id": hostile.encode("utf-8")})
    generated = response.headers["x-request-id"]
    assert generated != hostile
    assert len(generated) == 32 and int(generated, 16) >= 0


async def test_every_response_gets_a_request_id(client: httpx.AsyncClient) -> None:
    first = await client.get("/api/v2")
    second = await client.get("/no/such/route")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_security_headers_are_set(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v2")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in response.headers


async def test_cors_allows_only_frontend_origins(client: httpx.AsyncClient) -> None:
    allowed = await client.get("/api/v2", headers={"origin": "http://localhost:5173"})
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    refused = await client.get("/api/v2", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in refused.headers


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/api/v2/generate/jobs/x/events", "authorization, last-event-id"),
        ("POST", "/api/v2/generate/fullstack", "authorization, content-type, idempotency-key"),
        ("GET", "/api/v2/projects/x", "authorization, if-none-match"),
    ],
)
async def test_cors_preflight_allows_what_the_client_sends(
    client: httpx.AsyncClient, method: str, path: str, headers: str
) -> None:
    response = await client.options(
        path,
        headers={
            "origin": "http://localhost:5173",
            "access-control-request-method": method,
            "access-control-request-headers": headers,
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"


async def test_cors_preflight_from_unknown_origin_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/api/v2",
        headers={"origin": "https://evil.example", "access-control-request-method": "GET"},
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


TRUSTED = (ipaddress.ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("198.51.100.9", "1.2.3.4", "198.51.100.9"),  # untrusted peer: header ignored
        ("10.0.0.2", "1.2.3.4", "1.2.3.4"),  # our proxy: last hop is the client
        ("10.0.0.2", "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # forged left part is not believed
        ("10.0.0.2", "1.2.3.4, 10.0.0.3", "1.2.3.4"),  # two of our proxies in a row
        ("10.0.0.2", "not-an-ip", "10.0.0.2"),
        ("10.0.0.2", None, "10.0.0.2"),
        (None, "1.2.3.4", "unknown"),
    ],
)
def test_client_ip_trusts_forwarded_for_only_from_proxies(
    peer: str | None, forwarded: str | None, expected: str
) -> None:
    assert resolve_client_ip(peer, forwarded, TRUSTED) == expected


async def test_json_access_log_names_route_template_and_request_id(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(log_format="json", log_level="info")
    async with open_client(create_app(settings)) as client:
        await client.get("/api/v2/projects/123/nothing", headers={"x-request-id": "log-test-1"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    access = [line for line in lines if line.get("event") == "request"]
    assert access == [
        {
            "event": "request",
            "level": "info",
            "timestamp": access[0]["timestamp"],
            "request_id": "log-test-1",
            "method": "GET",
            "route": "<unmatched>",
            "path": "/api/v2/projects/123/nothing",
            "status": 404,
            "duration_ms": access[0]["duration_ms"],
            "client_ip": "203.0.113.7",
        }
    ]
    assert access[0]["timestamp"].endswith("Z")


def test_several_forwarded_for_lines_read_as_one_list() -> None:
    from backend.client_ip import client_ip_of

    scope = {
        "client": ("10.0.0.2", 5000),
        "headers": [
            (b"x-forwarded-for", b"6.6.6.6"),
            (b"x-forwarded-for", b"1.2.3.4, 10.0.0.9"),
        ],
    }
    assert client_ip_of(scope, TRUSTED) == "1.2.3.4"
