"""Password reset and email verification, with mail delivered to a real SMTP server."""

from collections.abc import Callable

import httpx
import pytest
import structlog

from backend.config import Settings
from backend.main import create_app
from backend.repositories.users import UserRepository
from backend.services.users import UserService
from tests.support.app_client import open_client
from tests.support.factories import PASSWORD, bearer, login, register, signed_up, unique_email
from tests.support.mail import FORGOT, RESET, token_in
from tests.support.peers import SmtpSink


async def test_reset_mail_token_works_once(client: httpx.AsyncClient, smtp: SmtpSink) -> None:
    user = await register(client)
    old = await login(client, user["email"])
    assert (await client.post(FORGOT, json={"email": user["email"]})).status_code == 202
    token = token_in((await smtp.wait_for(user["email"], "Reset"))[0])

    done = await client.post(RESET, json={"token": token, "new_password": "Brand-New-Pass-3"})
    assert done.status_code == 204
    again = await client.post(RESET, json={"token": token, "new_password": "Other-Pass-4x"})
    assert again.status_code == 400
    assert again.json()["code"] == "invalid_token"

    await login(client, user["email"], "Brand-New-Pass-3")
    # The reset ended every earlier session.
    refreshed = await client.post(
        "/api/v2/auth/refresh", json={"refresh_token": old["refresh_token"]}
    )
    assert refreshed.status_code == 401


async def test_reset_token_dies_when_the_password_changes(
    client: httpx.AsyncClient, smtp: SmtpSink
) -> None:
    user = await register(client)
    await client.post(FORGOT, json={"email": user["email"]})
    token = token_in((await smtp.wait_for(user["email"], "Reset"))[0])
    tokens = await login(client, user["email"])
    await client.post(
        "/api/v2/auth/me/password",
        json={"current_password": PASSWORD, "new_password": "Changed-Pass-5"},
        headers=bearer(tokens),
    )
    response = await client.post(RESET, json={"token": token, "new_password": "Sneaky-Pass-6"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_token"


async def test_forgot_for_unknown_email_is_202_and_sends_nothing(
    client: httpx.AsyncClient, smtp: SmtpSink
) -> None:
    email = unique_email("ghost")
    response = await client.post(FORGOT, json={"email": email})
    assert response.status_code == 202
    with pytest.raises(AssertionError):
        await smtp.wait_for(email, timeout=0.3)


@pytest.mark.parametrize("token", ["not-a-token", "x" * 512])
async def test_bad_reset_token_is_400(client: httpx.AsyncClient, token: str) -> None:
    response = await client.post(RESET, json={"token": token, "new_password": "Good-Pass-77"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_token"


async def test_verification_mail_verifies_once(client: httpx.AsyncClient, smtp: SmtpSink) -> None:
    user, headers = await signed_up(client)
    assert (await client.post("/api/v2/auth/verify/request", headers=headers)).status_code == 202
    # One at registration, one requested.
    mails = await smtp.wait_for(user["email"], "Confirm", count=2)
    token = token_in(mails[-1])
    verified = await client.post("/api/v2/auth/verify", json={"token": token})
    assert verified.status_code == 200
    assert verified.json()["is_verified"] is True
    assert (await client.get("/api/v2/auth/me", headers=headers)).json()["is_verified"] is True
    again = await client.post("/api/v2/auth/verify", json={"token": token})
    assert again.status_code == 400
    assert again.json()["code"] == "invalid_token"


async def test_mail_failure_never_reaches_the_client(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(smtp_url="smtp://127.0.0.1:1"))  # nothing listens there
    with structlog.testing.capture_logs() as logs:
        async with open_client(app) as failing:
            response = await failing.post(
                "/api/v2/auth/register", json={"email": unique_email(), "password": PASSWORD}
            )
    assert response.status_code == 201
    assert any(entry["event"] == "mail_failed" for entry in logs)


async def test_disabled_user_is_refused_at_once(settings: Settings) -> None:
    app = create_app(settings)
    async with open_client(app) as client:
        user, headers = await signed_up(client)
        assert (await client.get("/api/v2/auth/me", headers=headers)).status_code == 200  # cached
        resources = app.state.resources
        users = UserService(UserRepository(resources.mongo.db), resources.cache)
        await users.update(user["id"], {"is_active": False})

        me = await client.get("/api/v2/auth/me", headers=headers)
        refused = await client.post(
            "/api/v2/auth/login", json={"email": user["email"], "password": PASSWORD}
        )
    assert me.status_code == 403
    assert me.json()["code"] == "account_disabled"
    assert refused.status_code == 403
    assert refused.json()["code"] == "account_disabled"
