"""Models, agentic availability and the job metrics."""

import asyncio

import httpx

from tests.support.jobs import finished, submit


async def test_agentic_needs_a_configured_model_provider(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    response = await client.post("/api/v2/generate/agentic", json={"prompt": "Add a /health"},
                                 headers=alice)  # fmt: skip
    assert response.status_code == 503
    assert response.json()["code"] == "generation_unavailable"
    usage = (await client.get("/api/v2/generate/usage", headers=alice)).json()
    assert usage["used"] == 0


async def test_agentic_bodies_are_validated_first(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    for body in ({"prompt": ""}, {"prompt": "x" * 20_001}, {"prompt": "x", "extra": 1}, {}):
        response = await client.post("/api/v2/generate/agentic", json=body, headers=alice)
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_error"


async def test_models_says_none_are_configured(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    response = await client.get("/api/v2/generate/models", headers=alice)
    assert response.json() == {"default_model": None, "models": []}


async def test_metrics_count_jobs_and_their_duration(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    job = (await submit(client, alice)).json()
    await finished(client, alice, job["id"])
    succeeded = 'generation_jobs_total{kind="fullstack",status="succeeded"} 1.0'
    for _ in range(100):  # counted just after the commit the job's status shows
        text = (await client.get("/metrics")).text
        if succeeded in text:
            break
        await asyncio.sleep(0.05)
    assert 'generation_jobs_total{kind="fullstack",status="accepted"} 1.0' in text
    assert 'generation_jobs_total{kind="fullstack",status="succeeded"} 1.0' in text
    assert 'generation_job_duration_seconds_count{kind="fullstack",status="succeeded"} 1.0' in text
    assert "generation_jobs_queued" in text and "sse_connections_active 0.0" in text
