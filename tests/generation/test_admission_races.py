"""Admission when requests race: the same key from many requests at once, and a disable
that lands while the account's user record is still cached.

These apps queue to Redis and no worker runs, so accepted jobs stay queued."""

import asyncio
from collections.abc import Callable

from bson import ObjectId

from backend.config import Settings
from backend.main import create_app
from tests.support.app_client import open_client
from tests.support.factories import signed_up
from tests.support.jobs import JOBS, submit
from tests.support.settings import GENEROUS_LIMITS


async def test_concurrent_uses_of_a_key_at_the_active_limit_all_get_its_job(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(**GENEROUS_LIMITS, max_active_jobs_free=1)
    async with open_client(create_app(settings)) as client:
        _, alice = await signed_up(client)
        responses = await asyncio.gather(*(submit(client, alice, key="once") for _ in range(6)))
        listed = (await client.get(JOBS, headers=alice)).json()
    assert [r.status_code for r in responses] == [202] * 6, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert listed["meta"]["total"] == 1


async def test_a_key_at_the_active_limit_with_another_body_is_still_refused(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(**GENEROUS_LIMITS, max_active_jobs_free=1)
    async with open_client(create_app(settings)) as client:
        _, alice = await signed_up(client)
        assert (await submit(client, alice, key="first")).status_code == 202
        refused = await submit(client, alice, key="second")
    assert refused.status_code == 409 and refused.json()["code"] == "too_many_active_jobs"


async def test_a_disabled_account_is_refused_at_admission_while_still_cached(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(**GENEROUS_LIMITS)
    app = create_app(settings)
    async with open_client(app) as client:
        user, alice = await signed_up(client)
        assert (await client.get("/api/v2/auth/me", headers=alice)).status_code == 200
        # Disabled in the database only: the cached user record still says active.
        users = app.state.resources.mongo.db["users"]
        await users.update_one({"_id": ObjectId(user["id"])}, {"$set": {"is_active": False}})
        refused = await submit(client, alice)
        listed = await users.database["generation_jobs"].count_documents({"owner_id": user["id"]})
    assert refused.status_code == 403 and refused.json()["code"] == "account_disabled"
    assert listed == 0
