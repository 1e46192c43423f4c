"""Storage caps: projects per account by plan, messages per project; jobs count too."""

import asyncio
from collections import Counter
from collections.abc import Callable

from backend.config import Settings
from backend.generation.outcome import Output
from backend.generation.periods import period_of
from backend.main import create_app
from backend.repositories.base import utcnow
from tests.support.app_client import open_client
from tests.support.factories import signed_up
from tests.support.jobs import JOBS
from tests.support.settings import FAST_JOBS, GENEROUS_LIMITS
from tests.support.specs import SPEC

USAGE = "/api/v2/generate/usage"

PROJECTS = "/api/v2/projects"


async def test_the_plans_project_cap_holds_under_concurrent_creates(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(**GENEROUS_LIMITS, max_projects_free=3)
    async with open_client(create_app(settings)) as client:
        _, headers = await signed_up(client)
        responses = await asyncio.gather(
            *(client.post(PROJECTS, headers=headers, json={"name": f"p{n}"}) for n in range(10))
        )
        outcome = Counter(
            (r.status_code, r.json().get("code") if r.status_code != 201 else None)
            for r in responses
        )
        listed = (await client.get(PROJECTS, headers=headers)).json()["meta"]["total"]
        # Deleting one frees its place.
        first = next(r.json()["id"] for r in responses if r.status_code == 201)
        assert (await client.delete(f"{PROJECTS}/{first}", headers=headers)).status_code == 204
        again = await client.post(PROJECTS, headers=headers, json={"name": "after delete"})
        full = await client.post(PROJECTS, headers=headers, json={"name": "one too many"})
        _, other = await signed_up(client)
        others = await client.post(PROJECTS, headers=other, json={"name": "someone else's"})
    assert outcome == {(201, None): 3, (409, "project_limit_reached"): 7}
    assert listed == 3
    assert again.status_code == 201
    assert (full.status_code, full.json()["code"]) == (409, "project_limit_reached")
    assert others.status_code == 201


async def test_a_full_conversation_refuses_new_messages_and_keeps_the_old_ones(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(**GENEROUS_LIMITS, max_messages_per_project=3)
    async with open_client(create_app(settings)) as client:
        _, headers = await signed_up(client)
        project = (await client.post(PROJECTS, headers=headers, json={"name": "chat"})).json()
        url = f"{PROJECTS}/{project['id']}/messages"
        statuses = [
            (await client.post(url, headers=headers, json={"content": f"m{n}"})).status_code
            for n in range(3)
        ]
        refused = await client.post(url, headers=headers, json={"content": "one more"})
        kept = (await client.get(url, headers=headers)).json()
    assert statuses == [201, 201, 201]
    assert (refused.status_code, refused.json()["code"]) == (409, "message_limit_reached")
    assert [m["content"] for m in kept["data"]] == ["m0", "m1", "m2"]


async def test_a_job_accepted_before_slots_were_taken_at_admission_still_keeps_the_cap(
    make_settings: Callable[..., Settings],
) -> None:
    """Jobs now take their project's slot when accepted (tests/generation/test_admission.py);
    one accepted before that, still queued at the upgrade, takes it at its commit."""
    settings = make_settings(redis_url=None, **GENEROUS_LIMITS, **FAST_JOBS, max_projects_free=1)
    app = create_app(settings)
    async with open_client(app) as client:
        user, headers = await signed_up(client)
        assert (
            await client.post(PROJECTS, headers=headers, json={"name": "only"})
        ).status_code == 201
        service = app.state.services.generation.lifecycle
        owner = await app.state.resources.mongo.db["users"].find_one({"email": user["email"]})
        period = period_of(utcnow())
        await service.usage.start_period(str(owner["_id"]), period)
        assert await service.usage.reserve(str(owner["_id"]), period, 20, 1, None)
        job = await service.jobs.create(
            owner_id=str(owner["_id"]), kind="fullstack", project_id=None, model=None,
            request=SPEC, period=period,
        )  # fmt: skip
        claimed = await service.jobs.claim(job.owner_id, job.id, "test-runner")
        assert claimed is not None
        output = Output(files={"app.py": "print('hi')\n"}, summary="s", project_name="Made")
        assert await service.end(claimed, "succeeded", output=output)
        ended = (await client.get(f"{JOBS}/{job.id}", headers=headers)).json()
        usage = (await client.get(USAGE, headers=headers)).json()
        total = (await client.get(PROJECTS, headers=headers)).json()["meta"]["total"]
    assert ended["status"] == "failed"
    assert ended["error"]["code"] == "project_limit_reached"
    assert (usage["used"], usage["active_jobs"]) == (0, 0)
    assert total == 1
