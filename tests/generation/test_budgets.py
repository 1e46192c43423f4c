"""Token and money budgets against the scripted model server: what jobs cost at the
catalogue's prices, a per-job cost cap and a monthly token budget that stop a job before the
call that would cross them, admission once the month is spent, and the month's rollover."""

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from backend.config import Settings
from backend.generation.periods import period_of
from backend.main import create_app
from backend.repositories.base import utcnow
from tests.support.app_client import open_client
from tests.support.factories import signed_up
from tests.support.jobs import finished, submit
from tests.support.llm import Reply, ScriptedLLM, call, llm_settings
from tests.support.servers import Worker
from tests.support.settings import FAST_JOBS, GENEROUS_LIMITS

AGENTIC = "/api/v2/generate/agentic"
USAGE = "/api/v2/generate/usage"
PRICED = {"id": "test/coder", "provider": "test", "kinds": ["agentic"], "plans": ["free"],
          "input_usd_per_million": "2.5", "output_usd_per_million": "10"}  # fmt: skip


def priced(make_settings: Callable[..., Settings], llm: ScriptedLLM, **extra: Any) -> Settings:
    return llm_settings(make_settings, llm, [PRICED]).model_copy(update=extra)


@pytest.fixture
def settings(make_settings: Callable[..., Settings], llm: ScriptedLLM) -> Settings:
    return priced(make_settings, llm)


async def agentic(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post(AGENTIC, json={"prompt": "Build it"}, headers=headers)
    assert response.status_code == 202, response.text
    return await finished(client, headers, response.json()["id"])


async def test_a_job_costs_its_tokens_at_the_catalogues_prices(
    client: httpx.AsyncClient, llm: ScriptedLLM
) -> None:
    llm.reset(Reply(calls=[call("finish", summary="planned")]),
              Reply(calls=[call("finish", summary="nothing to do")]))  # fmt: skip
    _, alice = await signed_up(client)
    job = await agentic(client, alice)
    # Two calls of 100 prompt tokens at $2.50/M and 20 completion tokens at $10/M.
    assert job["usage"] == {"prompt_tokens": 200, "completion_tokens": 40, "cost": "0.0009"}
    usage = (await client.get(USAGE, headers=alice)).json()
    assert usage["cost"] == "0.0009" and usage["tokens"] == {"prompt": 200, "completion": 40}
    assert (usage["token_budget"], usage["tokens_remaining"]) == (2_000_000, 2_000_000 - 240)
    assert usage["job_cost_cap"] == "0.5"
    models = (await client.get("/api/v2/generate/models", headers=alice)).json()["models"]
    assert models[0]["input_usd_per_million"] == "2.5"
    assert models[0]["context_window"] == 128_000


async def test_the_cost_cap_stops_a_job_before_the_call_that_would_cross_it(
    make_settings: Callable[..., Settings], llm: ScriptedLLM
) -> None:
    # $10 per million output tokens: a $0.02 cap leaves room for 2,000 tokens of answer less
    # what the prompt costs; after a 1,900-token answer no call can be afforded.
    settings = priced(make_settings, llm, agent_job_cost_cap_usd_free=Decimal("0.02"))
    llm.reset(Reply(calls=[call("list_files")], completion_tokens=1_900),
              Reply(calls=[call("finish", summary="never reached")]))  # fmt: skip
    app = create_app(settings)
    async with open_client(app) as client:
        _, alice = await signed_up(client)
        job = await agentic(client, alice)
        usage = (await client.get(USAGE, headers=alice)).json()
    assert job["status"] == "failed" and job["error"]["code"] == "budget_exceeded", job
    assert "cost cap" in job["error"]["message"]
    assert len(llm.requests) == 1  # the crossing call was never made
    assert 256 <= llm.requests[0]["max_tokens"] < 2_000  # the first call's answer fits the cap
    assert float(job["usage"]["cost"]) <= 0.02
    assert (usage["used"], usage["active_jobs"]) == (1, 0)  # spent on the owner's request


async def test_the_months_token_budget_stops_a_job_then_refuses_new_ones(
    make_settings: Callable[..., Settings], llm: ScriptedLLM
) -> None:
    settings = priced(make_settings, llm, agent_monthly_tokens_free=8_000,
                      agent_max_output_tokens_free=3_000)  # fmt: skip
    llm.reset(Reply(calls=[call("list_files")], prompt_tokens=4_000, completion_tokens=1_500))
    app = create_app(settings)
    async with open_client(app) as client:
        _, alice = await signed_up(client)
        job = await agentic(client, alice)
        assert job["error"]["code"] == "budget_exceeded", job
        assert "token budget" in job["error"]["message"] and len(llm.requests) == 1
        usage = (await client.get(USAGE, headers=alice)).json()
        assert usage["tokens_remaining"] == 8_000 - 5_500  # no hold is left behind
        # A call that overran its estimate spends the month: admission refuses, saying which.
        _, bob = await signed_up(client)
        llm.reset(Reply(calls=[call("list_files")], prompt_tokens=7_000, completion_tokens=1_000))
        assert (await agentic(client, bob))["error"]["code"] == "budget_exceeded"
        assert (await client.get(USAGE, headers=bob)).json()["tokens_remaining"] == 0
        refused = await client.post(AGENTIC, json={"prompt": "more"}, headers=bob)
        assert refused.status_code == 402
        assert (refused.json()["code"], refused.json()["budget"]) == ("quota_exceeded", "tokens")
        assert (await submit(client, bob)).status_code == 202  # fullstack spends no tokens


async def test_a_new_month_starts_with_the_whole_budget(
    make_settings: Callable[..., Settings], llm: ScriptedLLM
) -> None:
    settings = priced(make_settings, llm, agent_monthly_tokens_free=8_000)
    app = create_app(settings)
    async with open_client(app) as client:
        user, alice = await signed_up(client)
        usage = app.state.resources.mongo.db["generation_usage"]
        spent = {"period": "2020-01", "used": 0, "active": 0, "prompt_tokens": 9_000,
                 "completion_tokens": 0, "cost_nanos": 5, "budget_tokens": 9_000,
                 "held_tokens": 0}  # fmt: skip
        await usage.insert_one({"_id": user["id"], **spent})
        llm.reset(
            Reply(calls=[call("finish", summary="p")]), Reply(calls=[call("finish", summary="d")])
        )
        job = await agentic(client, alice)
        assert job["status"] == "succeeded", (job, llm.requests)
        now = (await client.get(USAGE, headers=alice)).json()
        stored = await usage.find_one({"_id": user["id"]})
    assert stored["period"] == period_of(utcnow())
    assert (now["tokens"]["prompt"], now["tokens_remaining"]) == (200, 8_000 - 240)


async def test_a_hold_left_by_a_worker_killed_mid_call_is_given_back(
    make_settings: Callable[..., Settings], llm: ScriptedLLM, workers: Callable[..., Worker]
) -> None:
    settings = make_settings(**GENEROUS_LIMITS, **FAST_JOBS, llm_base_url=llm.url,
                             llm_api_key="test-key", llm_default_model="test/coder",
                             llm_models=[PRICED])  # fmt: skip
    env = {"LLM_BASE_URL": llm.url, "LLM_API_KEY": "test-key", "LLM_DEFAULT_MODEL": "test/coder",
           "LLM_MODELS": json.dumps([PRICED]), "LLM_TIMEOUT_S": "600"}  # fmt: skip
    llm.reset(Reply(hang=True), Reply(calls=[call("finish", summary="planned")]),
              Reply(calls=[call("finish", summary="done")]))  # fmt: skip
    app = create_app(settings)
    async with open_client(app) as client:
        user, alice = await signed_up(client)
        response = await client.post(AGENTIC, json={"prompt": "Build it"}, headers=alice)
        first = workers(settings, **env)
        while not llm.requests:  # the first call is in flight, its maximum held
            await asyncio.sleep(0.05)
        usage = app.state.resources.mongo.db["generation_usage"]
        assert (await usage.find_one({"_id": user["id"]}))["held_tokens"] > 0
        first.kill()
        workers(settings, **env)  # its reaper retries the job; its runner makes the calls
        job = await finished(client, alice, response.json()["id"])
        assert job["status"] == "succeeded", job
        doc = await usage.find_one({"_id": user["id"]})
    assert (doc["held_tokens"], doc["budget_tokens"]) == (0, 240)
