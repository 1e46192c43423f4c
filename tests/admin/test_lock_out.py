"""Disabling an account takes effect before its running jobs have stopped."""

import asyncio
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from backend.config import Settings
from tests.support.factories import bearer, login, register
from tests.support.jobs import submit
from tests.support.settings import ADMIN_EMAIL, ADMIN_PASSWORD, GENEROUS_LIMITS

# A running job with no runner to stop it holds the disable for this long.
CANCEL_WAIT_S = 8
REFUSED_WITHIN_S = CANCEL_WAIT_S / 2


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Redis queue and no worker: a job claimed by hand stays running."""
    return make_settings(
        **GENEROUS_LIMITS,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        job_cancel_wait_s=CANCEL_WAIT_S,
    )


async def test_sessions_end_while_running_jobs_are_still_being_canceled(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    root = bearer(await login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
    user = await register(client)
    headers = bearer(await login(client, user["email"]))
    job = (await submit(client, headers)).json()
    jobs = app.state.services.generation.lifecycle.jobs
    assert await jobs.claim(user["id"], job["id"], "a-runner-that-never-answers") is not None

    patch = asyncio.create_task(
        client.patch(f"/api/v2/admin/users/{user['id']}", json={"is_active": False}, headers=root)
    )
    refused_while_canceling = False
    for _ in range(int(REFUSED_WITHIN_S / 0.05)):
        me = await client.get("/api/v2/auth/me", headers=headers)
        if me.status_code != 200:
            refused_while_canceling = not patch.done()
            break
        await asyncio.sleep(0.05)
    disabled = await patch
    assert me.status_code == 401 and me.json()["code"] == "invalid_token"
    assert refused_while_canceling
    assert disabled.status_code == 200 and disabled.json()["is_active"] is False
