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
from tests.conftest import open_client
from tests.factories import PASSWORD, bearer, login, register

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


async def test_existing_user_is_promoted_and_keeps_their_password(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(admin_email="boss@example.com", admin_password="Ignored-Pass-1")
    app = create_app(settings)
    async with open_client(app) as client:
        await wait_until_ready(client)
        user = await register(client)
        promoted = settings.model_copy(update={"admin_email": user["email"]})
        app.state.resources.settings = promoted
        await prepare_database(app.state.resources)
        await prepare_database(app.state.resources)  # idempotent
        tokens = await login(client, user["email"], PASSWORD)
        me = (await client.get("/api/v2/auth/me", headers=bearer(tokens))).json()
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
