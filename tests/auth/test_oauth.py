"""Google (oidc-provider-mock) and GitHub (a look-alike) sign-in over real HTTP."""

import base64
import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from backend.config import Settings
from backend.main import create_app
from tests.support.app_client import open_client
from tests.support.factories import PASSWORD, bearer, login, register, signed_up, unique_email
from tests.support.mail import FORGOT, RESET, token_in
from tests.support.peers import FakeGitHub, GitHubUser, Recorded, SmtpSink

CALLBACK_PAGE = "http://localhost:5173/oauth/callback"


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


async def authorize(client: httpx.AsyncClient, provider: str) -> str:
    response = await client.get(
        f"/api/v2/auth/oauth/{provider}/authorize", params={"redirect_uri": CALLBACK_PAGE}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["authorization_url"])


async def google_code(
    issuer: str, authorization_url: str, subject: str, claims: dict[str, object]
) -> dict[str, str]:
    """Play the user: register claims at the provider, approve, and read the redirect."""
    async with httpx.AsyncClient() as browser:
        assert (await browser.put(f"{issuer}/users/{subject}", json=claims)).status_code == 204
        approved = await browser.post(authorization_url, data={"sub": subject})
    assert approved.status_code == 302, approved.text
    location = approved.headers["location"]
    assert location.startswith(CALLBACK_PAGE)
    return query(location)


async def github_code(authorization_url: str, login: str) -> dict[str, str]:
    async with httpx.AsyncClient() as browser:
        approved = await browser.get(authorization_url + f"&login={login}")
    assert approved.status_code in (302, 307), approved.text
    return query(approved.headers["location"])


async def google_sign_in(
    client: httpx.AsyncClient, google: tuple[str, Recorded], email: str, *, verified: bool
) -> httpx.Response:
    issuer, _ = google
    url = await authorize(client, "google")
    params = await google_code(
        issuer,
        url,
        f"sub-{secrets.token_hex(4)}",
        {"email": email, "email_verified": verified, "name": "Grace Hopper"},
    )
    return await client.post(
        "/api/v2/auth/oauth/google/callback",
        json={"code": params["code"], "state": params["state"]},
    )


async def test_providers_lists_the_configured_ones(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v2/auth/oauth/providers")
    assert response.json() == {"providers": ["github", "google"]}


async def test_google_new_user_full_code_flow(
    client: httpx.AsyncClient, google: tuple[str, Recorded]
) -> None:
    issuer, recorded = google
    url = await authorize(client, "google")
    sent = query(url)
    assert sent["code_challenge_method"] == "S256"
    assert sent["response_type"] == "code"
    assert set(sent["scope"].split()) == {"openid", "email", "profile"}
    assert len(sent["state"]) >= 22 and sent["nonce"]

    email = unique_email("google")
    params = await google_code(
        issuer,
        url,
        "g-new-1",
        {"email": email, "email_verified": True, "name": "Ada from userinfo"},
    )
    response = await client.post(
        "/api/v2/auth/oauth/google/callback",
        json={"code": params["code"], "state": params["state"]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["is_new_user"] is True
    assert body["user"]["email"] == email
    assert body["user"]["is_verified"] is True
    assert body["user"]["oauth_providers"] == ["google"]
    assert body["user"]["full_name"] == "Ada from userinfo"
    me = await client.get("/api/v2/auth/me", headers=bearer(body))
    assert me.json()["id"] == body["user"]["id"]

    # The token request carried the PKCE verifier that matches the challenge we sent.
    verifier = recorded.token_requests[-1]["code_verifier"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert challenge.decode() == sent["code_challenge"]


async def test_google_verified_email_links_the_existing_account(
    client: httpx.AsyncClient, google: tuple[str, Recorded]
) -> None:
    existing = await register(client)
    response = await google_sign_in(client, google, existing["email"], verified=True)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["is_new_user"] is False
    assert body["user"]["id"] == existing["id"]
    assert body["user"]["oauth_providers"] == ["google"]
    assert body["user"]["is_verified"] is True


async def test_google_unverified_email_does_not_take_over_an_account(
    client: httpx.AsyncClient, google: tuple[str, Recorded]
) -> None:
    existing = await register(client)
    response = await google_sign_in(client, google, existing["email"], verified=False)
    assert response.status_code == 409
    assert response.json()["code"] == "email_unverified"


async def test_google_new_user_with_unverified_email_is_unverified(
    client: httpx.AsyncClient, google: tuple[str, Recorded]
) -> None:
    response = await google_sign_in(client, google, unique_email("g"), verified=False)
    assert response.status_code == 200
    assert response.json()["user"]["is_verified"] is False


async def test_the_same_identity_signs_in_to_the_same_user(
    client: httpx.AsyncClient, github: FakeGitHub
) -> None:
    github.users["octo"] = GitHubUser(
        id=4242,
        login="octo",
        name="Octo Cat",
        emails=[
            {"email": "octo@users.noreply.github.com", "primary": False, "verified": True},
            {"email": "Octo@Example.com", "primary": True, "verified": True},
        ],
    )
    first = await github_sign_in(client, "octo")
    assert first.status_code == 200, first.text
    assert first.json()["is_new_user"] is True
    assert first.json()["user"]["email"] == "octo@example.com"
    second = await github_sign_in(client, "octo")
    assert second.json()["is_new_user"] is False
    assert second.json()["user"]["id"] == first.json()["user"]["id"]
    # Our fake refuses a wrong verifier, so a 200 proves PKCE was sent; check it anyway.
    assert github.recorded.token_requests[-1]["code_verifier"]


async def github_sign_in(client: httpx.AsyncClient, login: str) -> httpx.Response:
    url = await authorize(client, "github")
    params = await github_code(url, login)
    return await client.post(
        "/api/v2/auth/oauth/github/callback",
        json={"code": params["code"], "state": params["state"]},
    )


async def test_github_without_verified_primary_email_cannot_link(
    client: httpx.AsyncClient, github: FakeGitHub
) -> None:
    existing = await register(client)
    github.users["unverified"] = GitHubUser(
        id=77,
        login="unverified",
        name=None,
        emails=[{"email": existing["email"], "primary": True, "verified": False}],
    )
    response = await github_sign_in(client, "unverified")
    assert response.status_code == 502
    assert response.json()["code"] == "oauth_provider_error"


async def test_github_token_endpoint_failure_is_502(
    client: httpx.AsyncClient, github: FakeGitHub
) -> None:
    github.users["down"] = GitHubUser(id=5, login="down", name=None, emails=[])
    url = await authorize(client, "github")
    params = await github_code(url, "down")
    github.fail_token_endpoint = True
    try:
        response = await client.post(
            "/api/v2/auth/oauth/github/callback",
            json={"code": params["code"], "state": params["state"]},
        )
    finally:
        github.fail_token_endpoint = False
    assert response.status_code == 502
    assert response.json()["code"] == "oauth_provider_error"


async def test_wrong_code_is_502(client: httpx.AsyncClient) -> None:
    url = await authorize(client, "github")
    response = await client.post(
        "/api/v2/auth/oauth/github/callback", json={"code": "made-up", "state": query(url)["state"]}
    )
    assert response.status_code == 502
    assert response.json()["code"] == "oauth_provider_error"


async def test_reused_state_is_400(client: httpx.AsyncClient, github: FakeGitHub) -> None:
    github.users["twice"] = GitHubUser(
        id=99,
        login="twice",
        name=None,
        emails=[{"email": unique_email("twice"), "primary": True, "verified": True}],
    )
    url = await authorize(client, "github")
    params = await github_code(url, "twice")
    body = {"code": params["code"], "state": params["state"]}
    assert (await client.post("/api/v2/auth/oauth/github/callback", json=body)).status_code == 200
    again = await client.post("/api/v2/auth/oauth/github/callback", json=body)
    assert again.status_code == 400
    assert again.json()["code"] == "invalid_oauth_state"


async def test_state_for_another_provider_is_400(client: httpx.AsyncClient) -> None:
    state = query(await authorize(client, "github"))["state"]
    response = await client.post(
        "/api/v2/auth/oauth/google/callback", json={"code": "x", "state": state}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_oauth_state"


async def test_unknown_state_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v2/auth/oauth/google/callback", json={"code": "x", "state": "never-issued"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_oauth_state"


async def test_expired_state_is_400(settings: Settings) -> None:
    app = create_app(settings)
    async with open_client(app) as client:
        state = query(await authorize(client, "github"))["state"]
        # Ten minutes pass.
        await app.state.resources.mongo.db["oauth_states"].update_many(
            {}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}}
        )
        response = await client.post(
            "/api/v2/auth/oauth/github/callback", json={"code": "x", "state": state}
        )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_oauth_state"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        "http://localhost:5173.evil.example/cb",
        "http://user@localhost:5173/cb",
        "javascript:alert(1)",
        "/relative/path",
        "http://localhost:5174/cb",
    ],
)
async def test_redirect_uri_off_the_allow_list_is_400(
    client: httpx.AsyncClient, redirect_uri: str
) -> None:
    response = await client.get(
        "/api/v2/auth/oauth/google/authorize", params={"redirect_uri": redirect_uri}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_redirect_uri"


async def test_unknown_provider_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/v2/auth/oauth/myspace/authorize", params={"redirect_uri": CALLBACK_PAGE}
    )
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_provider"


async def test_unconfigured_provider_is_404(make_settings: Callable[..., Settings]) -> None:
    async with open_client(create_app(make_settings())) as client:
        providers = await client.get("/api/v2/auth/oauth/providers")
        response = await client.get(
            "/api/v2/auth/oauth/google/authorize", params={"redirect_uri": CALLBACK_PAGE}
        )
    assert providers.json() == {"providers": []}
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_provider"


async def google_sign_in_as(
    client: httpx.AsyncClient, google: tuple[str, Recorded], subject: str, email: str, **claims: Any
) -> httpx.Response:
    url = await authorize(client, "google")
    params = await google_code(google[0], url, subject, {"email": email, **claims})
    return await client.post(
        "/api/v2/auth/oauth/google/callback",
        json={"code": params["code"], "state": params["state"]},
    )


async def test_a_verified_identity_ends_the_squatters_password_and_sessions(
    client: httpx.AsyncClient, google: tuple[str, Recorded]
) -> None:
    # The attacker registers the victim's address first (never verified) and signs in.
    victim_email = unique_email("victim")
    squatter = await register(client, victim_email)
    squatter_tokens = await login(client, victim_email)

    # The victim later signs in with a provider that verified the address.
    victim = await google_sign_in(client, google, victim_email, verified=True)
    assert victim.status_code == 200, victim.text
    assert victim.json()["user"]["id"] == squatter["id"]

    password = await client.post(
        "/api/v2/auth/login", json={"email": victim_email, "password": PASSWORD}
    )
    old_access = await client.get("/api/v2/auth/me", headers=bearer(squatter_tokens))
    old_refresh = await client.post(
        "/api/v2/auth/refresh", json={"refresh_token": squatter_tokens["refresh_token"]}
    )
    mine = await client.get("/api/v2/auth/me", headers=bearer(victim.json()))
    assert (password.status_code, password.json()["code"]) == (401, "invalid_credentials")
    assert old_access.status_code == 401
    assert (old_refresh.status_code, old_refresh.json()["code"]) == (401, "invalid_token")
    assert mine.status_code == 200
    assert mine.json()["is_verified"] is True


async def test_a_verified_account_keeps_its_password_when_linked(
    client: httpx.AsyncClient, google: tuple[str, Recorded], smtp: SmtpSink
) -> None:
    user, headers = await signed_up(client)
    await client.post("/api/v2/auth/verify/request", headers=headers)
    token = token_in((await smtp.wait_for(user["email"], "Confirm"))[-1])
    assert (await client.post("/api/v2/auth/verify", json={"token": token})).status_code == 200

    linked = await google_sign_in(client, google, user["email"], verified=True)
    assert linked.status_code == 200
    assert (await client.get("/api/v2/auth/me", headers=headers)).status_code == 200
    await login(client, user["email"])


async def test_a_password_reset_ends_an_identity_whose_email_was_never_verified(
    client: httpx.AsyncClient, google: tuple[str, Recorded], smtp: SmtpSink
) -> None:
    # An identity claiming Dave's address, unverified by its provider, creates the account.
    dave = unique_email("dave")
    subject = f"sub-{secrets.token_hex(4)}"
    attacker = await google_sign_in_as(client, google, subject, dave, email_verified=False)
    assert attacker.status_code == 200, attacker.text
    assert attacker.json()["is_new_user"] is True

    # The real Dave proves the mailbox with a password reset.
    assert (await client.post(FORGOT, json={"email": dave})).status_code == 202
    token = token_in((await smtp.wait_for(dave, "Reset"))[0])
    reset = await client.post(RESET, json={"token": token, "new_password": "Daves-Own-Pass-1"})
    assert reset.status_code == 204
    daves = await login(client, dave, "Daves-Own-Pass-1")

    again = await google_sign_in_as(client, google, subject, dave, email_verified=False)
    old_refresh = await client.post(
        "/api/v2/auth/refresh", json={"refresh_token": attacker.json()["refresh_token"]}
    )
    me = (await client.get("/api/v2/auth/me", headers=bearer(daves))).json()
    assert (again.status_code, again.json()["code"]) == (409, "email_unverified")
    assert old_refresh.status_code == 401
    assert me["oauth_providers"] == []
    assert me["is_verified"] is True


async def test_a_reset_keeps_identities_whose_email_was_verified(
    client: httpx.AsyncClient, google: tuple[str, Recorded], smtp: SmtpSink
) -> None:
    email = unique_email("keeps")
    subject = f"sub-{secrets.token_hex(4)}"
    first = await google_sign_in_as(client, google, subject, email, email_verified=True)
    assert first.status_code == 200
    await client.post(FORGOT, json={"email": email})
    token = token_in((await smtp.wait_for(email, "Reset"))[0])
    assert (
        await client.post(RESET, json={"token": token, "new_password": "Fresh-Pass-12"})
    ).status_code == 204
    again = await google_sign_in_as(client, google, subject, email, email_verified=True)
    assert again.status_code == 200
    assert again.json()["user"]["id"] == first.json()["user"]["id"]
