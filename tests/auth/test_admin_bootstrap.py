"""ADMIN_EMAIL/ADMIN_PASSWORD at start-up, and `python -m backend create-admin`."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from backend.config import NO_DATABASE, Settings
from backend.main import create_app, prepare_database
from tests.support.app_client import open_client
from tests.support.factories import PASSWORD, bearer, login, register

ROOT = Path(__file__).resolve().parents[2]


async def wait_until_ready(client: httpx.AsyncClient) -> None:
    for _ in range(100):
        if (await client.get("/readyz")).status_code == 200:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("never ready")


async def test_admin_is_created_at_start_up(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(admin_email="Root@Example.com", admin_password="Admin-Pass-1")
    async with open_client(create_app(settings)) as client:
        await wait_until_ready(client)
        tokens = await login(client, "root@example.com", "Admin-Pass-1")
        me = (await client.get("/api/v2/auth/me", headers=bearer(tokens))).json()
    assert me["role"] == "admin"
    assert me["is_verified"] is True


async def test_a_pre_registered_account_becomes_admin_only_with_the_operators_password(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(admin_email="boss@example.com", admin_password="Operator-Pass-1")
    app = create_app(settings)
    async with open_client(app) as client:
        await wait_until_ready(client)
        # Someone registered the admin's address before the operator configured it.
        squatter = await register(client)
        their_session = await login(client, squatter["email"], PASSWORD)
        promoted = settings.model_copy(update={"admin_email": squatter["email"]})
        app.state.resources.settings = promoted
        await prepare_database(app.state.resources)

        refused = await client.post(
            "/api/v2/auth/login", json={"email": squatter["email"], "password": PASSWORD}
        )
        old_access = await client.get("/api/v2/auth/me", headers=bearer(their_session))
        old_refresh = await client.post(
            "/api/v2/auth/refresh", json={"refresh_token": their_session["refresh_token"]}
        )
        tokens = await login(client, squatter["email"], "Operator-Pass-1")
        await prepare_database(app.state.resources)  # a restart: the admin stays signed in
        me = await client.get("/api/v2/auth/me", headers=bearer(tokens))
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_credentials")
    assert old_access.status_code == 401
    assert (old_refresh.status_code, old_refresh.json()["code"]) == (401, "invalid_token")
    assert me.status_code == 200
    assert me.json()["role"] == "admin"


async def test_create_admin_takes_the_account_over_with_the_operators_password(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    async with open_client(create_app(settings)) as client:
        await register(client, "a@example.com")
        session = await login(client, "a@example.com")
        await client.get("/api/v2/auth/me", headers=bearer(session))  # the user is cached now
        assert settings.mongodb_url is not None and settings.redis_url is not None
        env = {
            **os.environ,
            "MONGODB_URL": settings.mongodb_url.get_secret_value(),
            "MONGODB_DB": settings.mongodb_db,
            "REDIS_URL": settings.redis_url.get_secret_value(),
            "JWT_SECRET": "x" * 40,
        }
        result = await asyncio.to_thread(create_admin, "Operator-Pass-2", env)
        assert result.returncode == 0, result.stderr
        refused = await client.post(
            "/api/v2/auth/login", json={"email": "a@example.com", "password": PASSWORD}
        )
        old_access = await client.get("/api/v2/auth/me", headers=bearer(session))
        tokens = await login(client, "a@example.com", "Operator-Pass-2")
        me = (await client.get("/api/v2/auth/me", headers=bearer(tokens))).json()
    assert refused.json()["code"] == "invalid_credentials"
    assert old_access.status_code == 401
    assert me["role"] == "admin"


def create_admin(password: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `python -m backend create-admin` as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "backend", "create-admin", "--email", "a@example.com",
         "--password", password],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_create_admin_cli_refuses_to_run_without_a_database() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URL"}
    result = create_admin("Admin-Pass-1", env)
    assert result.returncode == 1
    assert result.stderr.strip() == NO_DATABASE


def test_create_admin_cli_checks_the_password_policy() -> None:
    result = create_admin("weak", {**os.environ, "MONGODB_URL": "mongodb://127.0.0.1:1"})
    assert result.returncode == 2
    assert "password" in result.stderr
