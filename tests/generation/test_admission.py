"""Admission on the real database: quotas and active slots never over-admit, keys replay.

These apps queue to Redis and no worker runs, so accepted jobs stay queued and hold their
slots."""

import asyncio
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from backend.config import Settings
from backend.main import create_app
from tests.support.app_client import open_client
from tests.support.factories import signed_up
from tests.support.jobs import JOBS, submit
from tests.support.servers import RedisServer
from tests.support.settings import GENEROUS_LIMITS
from tests.support.specs import SPEC

USAGE = "/api/v2/generate/usage"
PROJECTS = "/api/v2/projects"


async def burst(client: httpx.AsyncClient, headers: dict[str, str], n: int = 20) -> Counter:
    responses = await asyncio.gather(*(submit(client, headers) for _ in range(n)))
    return Counter(
        (r.status_code, r.json().get("code") if r.status_code != 202 else None) for r in responses
    )


async def test_twenty_concurrent_jobs_at_quota_minus_one_accept_exactly_one(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(**GENEROUS_LIMITS, quota_free=3, max_active_jobs_free=50)
    async with open_client(create_app(settings)) as client:
        _, alice = await signed_up(client)
        for _ in range(2):
            assert (await submit(client, alice)).status_code == 202
        outcome = await burst(client, alice)
        usage = (await client.get(USAGE, headers=alice)).json()
    assert outcome == {(202, None): 1, (402, "quota_exceeded"): 19}
    assert usage["used"] == 3 and usage["remaining"] == 0 and usage["active_jobs"] == 3


async def test_active_slots_admit_exactly_the_plans_maximum(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(**GENEROUS_LIMITS, quota_free=100, max_active_jobs_free=2)
    async with open_client(create_app(settings)) as client:
        _, alice = await signed_up(client)
        outcome = await burst(client, alice)
        usage = (await client.get(USAGE, headers=alice)).json()
    assert outcome == {(202, None): 2, (409, "too_many_active_jobs"): 18}
    assert usage["active_jobs"] == 2 and usage["used"] == 2 and usage["max_active_jobs"] == 2


async def test_canceling_a_queued_job_gives_its_generation_back(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(**GENEROUS_LIMITS, quota_free=1, max_active_jobs_free=1)
    async with open_client(create_app(settings)) as client:
        _, alice = await signed_up(client)
        job = (await submit(client, alice)).json()
        assert (await submit(client, alice)).json()["code"] == "quota_exceeded"
        canceled = await client.post(f"{JOBS}/{job['id']}/cancel", headers=alice)
        assert canceled.status_code == 200
        assert canceled.json()["status"] == "canceled"
        usage = (await client.get(USAGE, headers=alice)).json()
        assert (usage["used"], usage["active_jobs"]) == (0, 0)
        again = await client.post(f"{JOBS}/{job['id']}/cancel", headers=alice)
        assert again.status_code == 409 and again.json()["code"] == "job_finished"
        assert (await submit(client, alice)).status_code == 202


async def test_a_job_holds_its_new_projects_slot_from_acceptance_and_a_cancel_frees_it(
    make_settings: Callable[..., Settings],
) -> None:
    """A fullstack job creates its project: at the plan's cap it is refused before any
    generation is spent, and while it waits the slot is not free for anything else."""
    settings = make_settings(**GENEROUS_LIMITS, max_projects_free=3, max_active_jobs_free=20)
    async with open_client(create_app(settings)) as client:
        _, alice = await signed_up(client)
        made = await client.post(PROJECTS, headers=alice, json={"name": "by hand"})
        assert made.status_code == 201
        outcome = await burst(client, alice, n=10)
        full = await client.post(PROJECTS, headers=alice, json={"name": "one too many"})
        usage = (await client.get(USAGE, headers=alice)).json()
        queued = (await client.get(JOBS, headers=alice)).json()["data"]
        canceled = await client.post(f"{JOBS}/{queued[0]['id']}/cancel", headers=alice)
        after = await client.post(PROJECTS, headers=alice, json={"name": "in the freed slot"})
        again = await submit(client, alice)
    assert outcome == {(202, None): 2, (409, "project_limit_reached"): 8}
    assert (full.status_code, full.json()["code"]) == (409, "project_limit_reached")
    assert (usage["used"], usage["active_jobs"]) == (2, 2)  # the refused ones cost nothing
    assert canceled.status_code == 200
    assert after.status_code == 201
    assert (again.status_code, again.json()["code"]) == (409, "project_limit_reached")


async def test_the_same_idempotency_key_returns_the_same_job_once(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(**GENEROUS_LIMITS, max_active_jobs_free=5)
    async with open_client(create_app(settings)) as client:
        _, alice = await signed_up(client)
        _, bob = await signed_up(client)
        first = await submit(client, alice, key="order-42")
        replays = await asyncio.gather(*(submit(client, alice, key="order-42") for _ in range(5)))
        other_body = await submit(client, alice, {**SPEC, "project_name": "Other"}, key="order-42")
        bobs = await submit(client, bob, key="order-42")
        usage = (await client.get(USAGE, headers=alice)).json()
    assert first.status_code == 202
    assert {r.status_code for r in replays} == {202}
    assert {r.json()["id"] for r in replays} == {first.json()["id"]}
    assert other_body.status_code == 422
    assert other_body.json()["code"] == "idempotency_key_reused"
    assert bobs.status_code == 202 and bobs.json()["id"] != first.json()["id"]
    assert usage["used"] == 1


async def test_concurrent_first_uses_of_a_key_make_one_job(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(**GENEROUS_LIMITS, max_active_jobs_free=20)
    async with open_client(create_app(settings)) as client:
        _, alice = await signed_up(client)
        responses = await asyncio.gather(*(submit(client, alice, key="same") for _ in range(10)))
        usage = (await client.get(USAGE, headers=alice)).json()
    assert {r.status_code for r in responses} == {202}, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert usage["used"] == 1


@pytest.mark.parametrize("key", [b"", b"x" * 256, b"has space", "naïve".encode()])
async def test_malformed_idempotency_keys_are_422(
    client: httpx.AsyncClient, alice: dict[str, str], key: bytes
) -> None:
    headers = {**{k: v.encode() for k, v in alice.items()}, b"Idempotency-Key": key}
    response = await client.post("/api/v2/generate/fullstack", json=SPEC, headers=headers)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_redis_down_at_enqueue_is_503_and_reserves_nothing(
    make_settings: Callable[..., Settings],
) -> None:
    redis = RedisServer().start()
    settings = make_settings(redis_url=redis.url, **GENEROUS_LIMITS)
    app = create_app(settings)
    try:
        async with open_client(app) as client:
            user, alice = await signed_up(client)
            redis.stop()
            response = await submit(client, alice, key="k1")
            listed = (await client.get(JOBS, headers=alice)).json()
            usage = (await client.get(USAGE, headers=alice)).json()
            owner = await app.state.resources.mongo.db["users"].find_one({"email": user["email"]})
    finally:
        redis.close()
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert listed["meta"]["total"] == 0
    assert (usage["used"], usage["active_jobs"]) == (0, 0)
    assert owner["project_count"] == 0  # the project slot it took is free again


async def test_a_new_month_starts_the_quota_again_and_keeps_active_jobs(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(**GENEROUS_LIMITS, quota_free=2, max_active_jobs_free=5)
    app = create_app(settings)
    async with open_client(app) as client:
        user, alice = await signed_up(client)
        for _ in range(2):
            assert (await submit(client, alice)).status_code == 202
        refused = await submit(client, alice)
        usage = app.state.resources.mongo.db["generation_usage"]
        owner = await app.state.resources.mongo.db["users"].find_one({"email": user["email"]})
        # The counters as last month left them: the quota spent, two jobs still queued.
        await usage.update_one({"_id": str(owner["_id"])}, {"$set": {"period": "2026-01"}})
        accepted = await submit(client, alice)
        now = (await client.get(USAGE, headers=alice)).json()
    assert (refused.status_code, refused.json()["code"]) == (402, "quota_exceeded")
    assert accepted.status_code == 202
    assert (now["used"], now["active_jobs"]) == (1, 3)


async def test_usage_describes_the_plan_and_month(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    usage = (await client.get(USAGE, headers=alice)).json()
    assert usage["plan"] == "free" and usage["quota"] == 20 and usage["max_active_jobs"] == 1
    assert usage["period_start"].endswith("-01T00:00:00Z")
    assert usage["tokens"] == {"prompt": 0, "completion": 0}
