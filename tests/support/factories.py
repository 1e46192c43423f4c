"""Plain async factories for tests."""

import itertools
from typing import Any

import httpx

from tests.support.settings import ADMIN_EMAIL, ADMIN_PASSWORD

PASSWORD = "Correct-Horse-9"
_counter = itertools.count(1)


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}{next(_counter)}@example.com"


async def register(
    client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v2/auth/register",
        json={"email": email or unique_email(), "password": password, **extra},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/api/v2/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return dict(response.json())


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {tokens['access_token']}"}


async def signed_up(
    client: httpx.AsyncClient, email: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """A new user and the headers that authenticate as them."""
    user = await register(client, email)
    tokens = await login(client, user["email"])
    return user, bearer(tokens)


async def create_project(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    response = await client.post("/api/v2/projects", json={"name": "Demo", **body}, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def admin_token(base_url: str) -> str:
    response = httpx.post(
        f"{base_url}/api/v2/auth/login",
        json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])
