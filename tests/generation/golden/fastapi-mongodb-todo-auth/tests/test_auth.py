"""Accounts: register once, sign in, and what is refused."""

from fastapi.testclient import TestClient

ACCOUNT = {"email": "Someone@Example.com", "password": "correct-horse-9"}


def test_register_then_login(client: TestClient) -> None:
    created = client.post("/auth/register", json=ACCOUNT)
    assert created.status_code == 201
    assert created.json()["email"] == "someone@example.com"
    token = client.post("/auth/login", json=ACCOUNT).json()
    assert token["token_type"] == "bearer" and token["access_token"]


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


def test_short_passwords_are_refused(client: TestClient) -> None:
    assert client.post("/auth/register", json={**ACCOUNT, "password": "short"}).status_code == 422
