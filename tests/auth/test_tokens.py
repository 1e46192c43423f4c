"""Access tokens that must be refused, and rotating refresh tokens."""

import asyncio
import time
import uuid
from collections.abc import Callable

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from backend.config import Settings
from backend.main import create_app
from tests.support.app_client import open_client
from tests.support.factories import PASSWORD, bearer, login, register, signed_up
from tests.support.settings import GENEROUS_LIMITS, TEST_JWT_SECRET

ME = "/api/v2/auth/me"
REFRESH = "/api/v2/auth/refresh"


def forge(claims: dict[str, object], *, secret: str = TEST_JWT_SECRET, alg: str = "HS256") -> str:
    base = {
        "type": "access",
        "ver": 0,
        "iat": int(time.time()),
        "exp": int(time.time()) + 600,
        "jti": uuid.uuid4().hex,
        "iss": "devora-api",
        "aud": "devora-app",
    }
    return jwt.encode({"alg": alg}, base | claims, OctKey.import_key(secret.encode()))


def unsigned(claims: dict[str, object]) -> str:
    import base64
    import json

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def me_with(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(ME, headers={"authorization": f"Bearer {token}"})


async def test_valid_forged_shape_is_accepted_only_with_our_key(client: httpx.AsyncClient) -> None:
    user = await register(client)
    assert (await me_with(client, forge({"sub": user["id"]}))).status_code == 200
    other_key = forge({"sub": user["id"]}, secret="another-secret-another-secret-another-1")
    response = await me_with(client, other_key)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 120},
        {"aud": "someone-else"},
        {"iss": "https://evil.example"},
        {"type": "refresh"},
    ],
    ids=["expired", "wrong-aud", "wrong-iss", "not-an-access-token"],
)
async def test_bad_claims_are_401(client: httpx.AsyncClient, claims: dict[str, object]) -> None:
    user = await register(client)
    response = await me_with(client, forge({"sub": user["id"], **claims}))
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_alg_none_is_401(client: httpx.AsyncClient) -> None:
    user = await register(client)
    token = unsigned(
        {
            "sub": user["id"],
            "type": "access",
            "ver": 0,
            "iat": int(time.time()),
            "exp": int(time.time()) + 600,
            "jti": "x",
            "iss": "devora-api",
            "aud": "devora-app",
        }
    )
    response = await me_with(client, token)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "", "Bearer"])
async def test_malformed_tokens_are_401(client: httpx.AsyncClient, token: str) -> None:
    response = await me_with(client, token)
    assert response.status_code == 401


async def test_refresh_token_is_not_an_access_token(client: httpx.AsyncClient) -> None:
    user = await register(client)
    tokens = await login(client, user["email"])
    response = await me_with(client, tokens["refresh_token"])
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_access_token_is_not_a_refresh_token(client: httpx.AsyncClient) -> None:
    user = await register(client)
    tokens = await login(client, user["email"])
    response = await client.post(REFRESH, json={"refresh_token": tokens["access_token"]})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_refresh_rotates_and_reuse_revokes_the_family(client: httpx.AsyncClient) -> None:
    user = await register(client)
    first = await login(client, user["email"])
    second = (await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await me_with(client, second["access_token"])).status_code == 200

    reused = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert reused.json()["code"] == "token_reused"
    # The thief's replay ended the whole login: the newer token dies with it.
    after = await client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    assert after.status_code == 401


async def test_reuse_does_not_touch_other_logins(client: httpx.AsyncClient) -> None:
    user = await register(client)
    laptop, phone = await login(client, user["email"]), await login(client, user["email"])
    await client.post(REFRESH, json={"refresh_token": laptop["refresh_token"]})
    await client.post(REFRESH, json={"refresh_token": laptop["refresh_token"]})  # reuse
    assert (
        await client.post(REFRESH, json={"refresh_token": phone["refresh_token"]})
    ).status_code == 200


async def test_logout_ends_the_refresh_token(client: httpx.AsyncClient) -> None:
    user = await register(client)
    tokens = await login(client, user["email"])
    response = await client.post(
        "/api/v2/auth/logout", json={"refresh_token": tokens["refresh_token"]}
    )
    assert response.status_code == 204
    again = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401


async def test_password_change_ends_every_session(client: httpx.AsyncClient) -> None:
    user = await register(client)
    tokens = await login(client, user["email"])
    wrong = await client.post(
        "/api/v2/auth/me/password",
        json={"current_password": "Wrong-pass-1", "new_password": "Another-Pass-2"},
        headers=bearer(tokens),
    )
    assert wrong.status_code == 400
    assert wrong.json()["code"] == "invalid_password"
    changed = await client.post(
        "/api/v2/auth/me/password",
        json={"current_password": PASSWORD, "new_password": "Another-Pass-2"},
        headers=bearer(tokens),
    )
    assert changed.status_code == 204
    assert (
        await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    ).status_code == 401
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 401
    fresh = await login(client, user["email"], "Another-Pass-2")
    assert (await client.get(ME, headers=bearer(fresh))).status_code == 200


async def test_new_password_must_meet_the_policy(client: httpx.AsyncClient) -> None:
    _, headers = await signed_up(client)
    response = await client.post(
        "/api/v2/auth/me/password",
        json={"current_password": PASSWORD, "new_password": "weak"},
        headers=headers,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_token_responses_are_never_cached(client: httpx.AsyncClient) -> None:
    user = await register(client)
    login = await client.post(
        "/api/v2/auth/login", json={"email": user["email"], "password": PASSWORD}
    )
    form = await client.post(
        "/api/v2/auth/token", data={"username": user["email"], "password": PASSWORD}
    )
    refreshed = await client.post(
        "/api/v2/auth/refresh", json={"refresh_token": login.json()["refresh_token"]}
    )
    for response in (login, form, refreshed):
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
    assert "no-store" not in (await client.get("/api/v2")).headers.get("cache-control", "")


async def test_a_refresh_racing_a_password_change_never_outlives_it(
    make_settings: Callable[..., Settings],
) -> None:
    """On the real database: whichever of the two lands first, the tokens a concurrent
    refresh hands out stop working once the password has changed."""
    async with open_client(create_app(make_settings(**GENEROUS_LIMITS))) as client:
        user = await register(client)
        password, survived, raced = PASSWORD, 0, 0
        for trial in range(40):
            tokens = await login(client, user["email"], password)
            new_password = f"Changed-Pass-{trial}"
            refreshed, changed = await asyncio.gather(
                client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]}),
                client.post(
                    "/api/v2/auth/me/password",
                    headers=bearer(tokens),
                    json={"current_password": password, "new_password": new_password},
                ),
            )
            assert changed.status_code == 204, changed.text
            password = new_password
            if refreshed.status_code != 200:
                continue
            raced += 1
            again = await client.post(
                REFRESH, json={"refresh_token": refreshed.json()["refresh_token"]}
            )
            access = await client.get(ME, headers=bearer(refreshed.json()))
            survived += again.status_code == 200 or access.status_code == 200
    assert raced > 0  # the refresh did win some races: the check below was exercised
    assert survived == 0
