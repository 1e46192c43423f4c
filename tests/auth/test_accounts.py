"""Register, login, /me: the account lifecycle and every bad input on it."""

import asyncio

import httpx
import pytest

from tests.support.factories import PASSWORD, bearer, login, register, signed_up, unique_email

REGISTER = "/api/v2/auth/register"
LOGIN = "/api/v2/auth/login"
ME = "/api/v2/auth/me"


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


async def test_register_normalises_email_and_returns_user(client: httpx.AsyncClient) -> None:
    user = await register(client, "  Mixed.Case@Example.COM ", full_name="Ada")
    assert user["email"] == "mixed.case@example.com"
    assert user | {"id": "x", "created_at": "x"} == {
        "id": "x",
        "email": "mixed.case@example.com",
        "full_name": "Ada",
        "role": "user",
        "is_active": True,
        "is_verified": False,
        "plan": "free",
        "subscription_status": "inactive",
        "oauth_providers": [],
        "created_at": "x",
    }
    assert user["created_at"].endswith("Z")
    assert "password" not in str(user) and "hash" not in str(user)


async def test_taken_email_is_409(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(client, email)
    response = await client.post(REGISTER, json={"email": email.upper(), "password": PASSWORD})
    assert_problem(response, 409, "email_taken")


async def test_concurrent_registrations_of_one_email_create_one_user(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email()
    responses = await asyncio.gather(
        *(client.post(REGISTER, json={"email": email, "password": PASSWORD}) for _ in range(20))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 19
    assert all(r.json()["code"] == "email_taken" for r in responses if r.status_code == 409)


@pytest.mark.parametrize(
    "password",
    ["Short1A", "alllowercase1", "ALLUPPERCASE1", "NoDigitsHere", "A1" + "a" * 127],
)
async def test_weak_or_overlong_password_is_422(client: httpx.AsyncClient, password: str) -> None:
    response = await client.post(REGISTER, json={"email": unique_email(), "password": password})
    assert_problem(response, 422, "validation_error")
    assert response.json()["errors"][0]["loc"] == ["body", "password"]
    assert password not in response.text


@pytest.mark.parametrize(
    "email", ["not-an-email", "a@", "@b.com", "a b@c.com", "x" * 400 + "@a.com", ""]
)
async def test_malformed_email_is_422(client: httpx.AsyncClient, email: str) -> None:
    response = await client.post(REGISTER, json={"email": email, "password": PASSWORD})
    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    "extra", [{"role": "admin"}, {"plan": "team"}, {"is_active": False}, {"is_verified": True}]
)
async def test_unknown_fields_are_refused(
    client: httpx.AsyncClient, extra: dict[str, object]
) -> None:
    body = {"email": unique_email(), "password": PASSWORD, **extra}
    response = await client.post(REGISTER, json=body)
    assert_problem(response, 422, "validation_error")
    assert response.json()["errors"][0]["type"] == "extra_forbidden"


async def test_login_returns_short_lived_tokens(client: httpx.AsyncClient) -> None:
    user = await register(client)
    tokens = await login(client, user["email"].upper())
    assert tokens["token_type"] == "bearer"
    assert 0 < tokens["expires_in"] <= 900
    assert len(tokens["refresh_token"]) >= 43  # 256 bits, URL-safe base64
    me = await client.get(ME, headers=bearer(tokens))
    assert me.json()["id"] == user["id"]


async def test_wrong_password_and_unknown_email_look_the_same(client: httpx.AsyncClient) -> None:
    user = await register(client)
    wrong = await client.post(LOGIN, json={"email": user["email"], "password": "Wrong-pass-1"})
    unknown = await client.post(LOGIN, json={"email": unique_email(), "password": PASSWORD})
    for response in (wrong, unknown):
        assert_problem(response, 401, "invalid_credentials")
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_swagger_password_form_logs_in(client: httpx.AsyncClient) -> None:
    user = await register(client)
    response = await client.post(
        "/api/v2/auth/token", data={"username": user["email"], "password": PASSWORD}
    )
    assert response.status_code == 200
    assert (await client.get(ME, headers=bearer(response.json()))).status_code == 200
    refused = await client.post(
        "/api/v2/auth/token", data={"username": user["email"], "password": "nope"}
    )
    assert_problem(refused, 401, "invalid_credentials")


async def test_me_without_token_is_401_with_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get(ME)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_update_me_changes_only_the_name(client: httpx.AsyncClient) -> None:
    _, headers = await signed_up(client)
    response = await client.patch(ME, json={"full_name": "New Name"}, headers=headers)
    assert response.status_code == 200
    assert response.json()["full_name"] == "New Name"
    assert (await client.get(ME, headers=headers)).json()["full_name"] == "New Name"
    refused = await client.patch(ME, json={"role": "admin"}, headers=headers)
    assert_problem(refused, 422, "validation_error")


async def test_openapi_declares_the_bearer_scheme_for_swagger(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/api/v2/auth/token"
    assert spec["paths"]["/api/v2/auth/me"]["get"]["security"] == [{"OAuth2PasswordBearer": []}]


async def test_metrics_count_user_cache_hits_and_misses(client: httpx.AsyncClient) -> None:
    _, headers = await signed_up(client)
    for _ in range(3):
        await client.get(ME, headers=headers)
    text = (await client.get("/metrics")).text
    assert 'cache_misses_total{cache="user"} 1.0' in text
    assert 'cache_hits_total{cache="user"} 2.0' in text
