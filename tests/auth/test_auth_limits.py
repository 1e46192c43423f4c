"""Rate limits on the auth routes: per address and, for login, per target account."""

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from backend.config import Settings
from backend.main import create_app
from tests.support.app_client import open_client
from tests.support.factories import PASSWORD, register, unique_email

pytestmark = pytest.mark.usefixtures("fresh_minute_window")

LOGIN = "/api/v2/auth/login"


@pytest.fixture
async def strict(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    limited = settings.model_copy(
        update={"rate_limit_auth_login": "5/minute", "trusted_proxies": ["203.0.113.0/24"]}
    )
    async with open_client(create_app(limited)) as client:
        yield client, limited


async def test_sixth_login_in_a_minute_is_429(
    strict: tuple[httpx.AsyncClient, Settings],
) -> None:
    client, _ = strict
    user = await register(client)
    statuses = []
    for _ in range(6):
        response = await client.post(LOGIN, json={"email": user["email"], "password": "Wrong-1a"})
        statuses.append(response.status_code)
    assert statuses == [401] * 5 + [429]
    assert response.json()["code"] == "rate_limited"
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-ratelimit-limit"] == "5"
    assert response.headers["x-ratelimit-remaining"] == "0"
    # Even the right password waits now.
    right = await client.post(LOGIN, json={"email": user["email"], "password": PASSWORD})
    assert right.status_code == 429


async def test_spreading_guesses_over_addresses_does_not_help(
    strict: tuple[httpx.AsyncClient, Settings],
) -> None:
    client, _ = strict
    user = await register(client)
    statuses = []
    for n in range(6):
        response = await client.post(
            LOGIN,
            json={"email": user["email"], "password": "Wrong-1a"},
            headers={"x-forwarded-for": f"198.51.100.{n}"},  # a new address each time
        )
        statuses.append(response.status_code)
    assert statuses == [401] * 5 + [429]
    # Another account from a fresh address is unaffected.
    other = await client.post(
        LOGIN,
        json={"email": unique_email(), "password": "Wrong-1a"},
        headers={"x-forwarded-for": "198.51.100.200"},
    )
    assert other.status_code == 401


async def test_swagger_form_login_counts_against_the_same_account(
    strict: tuple[httpx.AsyncClient, Settings],
) -> None:
    client, _ = strict
    user = await register(client)
    for n in range(5):
        await client.post(
            LOGIN,
            json={"email": user["email"], "password": "Wrong-1a"},
            headers={"x-forwarded-for": f"198.51.100.{n}"},
        )
    response = await client.post(
        "/api/v2/auth/token",
        data={"username": user["email"].upper(), "password": PASSWORD},
        headers={"x-forwarded-for": "198.51.100.99"},
    )
    assert response.status_code == 429


async def test_register_is_limited_per_address(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(rate_limit_auth_register="2/hour"))
    async with open_client(app) as client:
        statuses = [
            (
                await client.post(
                    "/api/v2/auth/register", json={"email": unique_email(), "password": PASSWORD}
                )
            ).status_code
            for _ in range(3)
        ]
    assert statuses == [201, 201, 429]


async def lock_out(client: httpx.AsyncClient, email: str) -> None:
    """Five wrong passwords, each from a new address: the account's counter is spent."""
    for n in range(5):
        wrong = await client.post(
            LOGIN,
            json={"email": email, "password": "Wrong-1a"},
            headers={"x-forwarded-for": f"198.51.100.{n}"},
        )
        assert wrong.status_code == 401


@pytest.mark.parametrize(
    "spelling",
    [
        "{local}@\uff45xample.com",
        "{local}@example\u3002com",
        "{local}@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.COM",
        " {local}@Example.Com ",
    ],
)
async def test_a_unicode_spelling_of_the_domain_meets_the_same_counter(
    strict: tuple[httpx.AsyncClient, Settings], spelling: str
) -> None:
    client, _ = strict
    user = await register(client)
    await lock_out(client, user["email"])
    variant = spelling.format(local=user["email"].split("@")[0])
    response = await client.post(
        LOGIN,
        json={"email": variant, "password": PASSWORD},
        headers={"x-forwarded-for": "198.51.100.77"},
    )
    assert (response.status_code, response.json()["code"]) == (429, "rate_limited")


async def test_a_json_body_labelled_as_a_form_meets_the_same_counter(
    strict: tuple[httpx.AsyncClient, Settings],
) -> None:
    client, _ = strict
    user = await register(client)
    await lock_out(client, user["email"])
    response = await client.post(
        LOGIN,
        content=f'{{"email": "{user["email"]}", "password": "{PASSWORD}"}}',
        headers={
            "content-type": "application/x-www-form-urlencoded+json",
            "x-forwarded-for": "198.51.100.78",
        },
    )
    assert (response.status_code, response.json()["code"]) == (429, "rate_limited")


async def test_reset_mails_to_one_account_are_limited_whatever_the_spelling(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        rate_limit_auth_password_forgot="2/hour", trusted_proxies=["203.0.113.0/24"]
    )
    async with open_client(create_app(settings)) as client:
        user = await register(client)
        local = user["email"].split("@")[0]
        statuses = [
            (
                await client.post(
                    "/api/v2/auth/password/forgot",
                    json={"email": spelling},
                    headers={"x-forwarded-for": f"198.51.100.{n}"},
                )
            ).status_code
            for n, spelling in enumerate(
                [user["email"], f"{local}@\uff45xample.com", f"{local}@example\u3002com"]
            )
        ]
    assert statuses == [202, 202, 429]


async def test_a_multipart_swagger_login_is_answered_not_a_500(
    strict: tuple[httpx.AsyncClient, Settings],
) -> None:
    client, _ = strict
    user = await register(client)
    response = await client.post(
        "/api/v2/auth/token",
        files={"username": (None, user["email"]), "password": (None, PASSWORD)},
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
