"""Accounts: register once, sign in, tokens that name a live account, and the secret."""

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.config import Settings

ACCOUNT = {"email": "Someone@Example.com", "password": "correct-horse-9"}
PROTECTED = "/tasks"
NO_SUCH_ACCOUNT = '000000000000000000000000'


def _token(client: TestClient, sub: str, **claims: object) -> dict[str, str]:
    secret = client.app.state.settings.jwt_secret.get_secret_value()
    exp = datetime.now(UTC) + timedelta(minutes=5)
    token = jwt.encode({"sub": sub, "exp": exp, **claims}, secret, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def test_register_then_login(client: TestClient) -> None:
    created = client.post("/auth/register", json=ACCOUNT)
    assert created.status_code == 201
    assert created.json()["email"] == "someone@example.com"
    token = client.post("/auth/login", json=ACCOUNT).json()
    assert token["token_type"] == "bearer" and token["access_token"]
    assert client.get(PROTECTED, headers={"Authorization": f"Bearer {token['access_token']}"}).status_code == 200


def test_an_email_registers_once(client: TestClient) -> None:
    assert client.post("/auth/register", json=ACCOUNT).status_code == 201
    again = client.post("/auth/register", json={**ACCOUNT, "email": "someone@example.com"})
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"


def test_wrong_password_and_unknown_email_are_401(client: TestClient) -> None:
    client.post("/auth/register", json=ACCOUNT)
    wrong = client.post("/auth/login", json={**ACCOUNT, "password": "wrong-horse-9"})
    unknown = client.post("/auth/login", json={**ACCOUNT, "email": "nobody@example.com"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["code"] == unknown.json()["code"] == "unauthorized"


def test_short_passwords_are_refused(client: TestClient) -> None:
    assert client.post("/auth/register", json={**ACCOUNT, "password": "short"}).status_code == 422


def test_a_token_for_no_account_is_401(client: TestClient) -> None:
    for sub in (NO_SUCH_ACCOUNT, "not-an-id", ""):
        response = client.get(PROTECTED, headers=_token(client, sub))
        assert response.status_code == 401, sub
        assert response.json()["code"] == "unauthorized"


def test_a_token_signed_with_another_secret_is_401(client: TestClient) -> None:
    account_id = client.post("/auth/register", json=ACCOUNT).json()["id"]
    assert client.get(PROTECTED, headers=_token(client, account_id)).status_code == 200
    exp = datetime.now(UTC) + timedelta(minutes=5)
    forged = jwt.encode({"sub": account_id, "exp": exp}, "x" * 32, algorithm="HS256")
    response = client.get(PROTECTED, headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_production_refuses_to_start_without_its_own_secret() -> None:
    for secret in ("", "too-short"):
        with pytest.raises(ValidationError, match="JWT_SECRET"):
            Settings(environment="production", jwt_secret=secret)
    own = "s" * 32
    assert Settings(environment="production", jwt_secret=own).jwt_secret.get_secret_value() == own


def test_outside_production_each_process_draws_its_own_secret() -> None:
    first, second = Settings(environment="development"), Settings(environment="development")
    assert len(first.jwt_secret.get_secret_value()) >= 32
    assert first.jwt_secret != second.jwt_secret
