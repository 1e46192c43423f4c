"""Job data that expires: a job's events and changes get a retention (TTL indexes), its
streamed text is stored as one event per model call, and the job itself stays."""

from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from bson import ObjectId
from fastapi import FastAPI

from backend.config import Settings
from tests.support.factories import signed_up
from tests.support.jobs import JOBS, events, finished, submit
from tests.support.llm import Reply, ScriptedLLM, call, llm_settings

AGENTIC = "/api/v2/generate/agentic"
CATALOGUE = [{"id": "test/coder", "provider": "test", "kinds": ["agentic"], "plans": ["free"]}]


@pytest.fixture
def settings(make_settings: Callable[..., Settings], llm: ScriptedLLM) -> Settings:
    return llm_settings(make_settings, llm, CATALOGUE)


async def test_events_and_changes_expire_after_the_job_but_the_job_stays(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    db = app.state.resources.mongo.db
    for name in ("job_events", "job_changes"):
        ttl = (await db[name].index_information())["expire_at_ttl"]
        assert ttl["key"] == [("expire_at", 1)] and ttl["expireAfterSeconds"] == 0
    _, alice = await signed_up(client)
    job = await finished(client, alice, (await submit(client, alice)).json()["id"])
    stored = await db["generation_jobs"].find_one({"_id": ObjectId(job["id"])})
    expires = stored["data_expires_at"]
    assert timedelta(days=30) - (expires - stored["finished_at"]) < timedelta(seconds=5)
    for name in ("job_events", "job_changes"):
        found = await db[name].find({"job_id": job["id"]}).to_list(None)
        assert found and all(doc["expire_at"] == expires for doc in found), name

    # Past it, the job still reads; its changes and revert say they are gone.
    await db["generation_jobs"].update_one(
        {"_id": ObjectId(job["id"])}, {"$set": {"data_expires_at": expires - timedelta(days=31)}}
    )
    assert (await client.get(f"{JOBS}/{job['id']}", headers=alice)).status_code == 200
    for method, path in (("GET", "changes"), ("POST", "revert")):
        gone = await client.request(method, f"{JOBS}/{job['id']}/{path}", headers=alice)
        assert gone.status_code == 410 and gone.json()["code"] == "job_data_expired", path


async def test_streamed_text_reaches_live_clients_in_pieces_and_is_stored_once_per_call(
    client: httpx.AsyncClient, llm: ScriptedLLM
) -> None:
    text = "".join(f"word{n} " for n in range(60))
    llm.reset(
        Reply(text=text, pieces=60, delay_s=0.02, calls=[call("list_files")]),
        Reply(text="Planned.", calls=[call("finish", summary="planned")]),
        Reply(calls=[call("finish", summary="done")]),
    )
    _, alice = await signed_up(client)
    response = await client.post(AGENTIC, json={"prompt": "x"}, headers=alice)
    job_id = response.json()["id"]
    live = await events(client, alice, job_id)  # follows the job as it runs
    live_text = [e["data"]["text"] for e in live if e["event"] == "message"]
    assert len(live_text) > 3 and "".join(live_text) == text + "Planned."
    stored = await events(client, alice, job_id)  # read back after the end
    assert [e["data"]["text"] for e in stored if e["event"] == "message"] == [text, "Planned."]
    ids = [int(e["id"]) for e in stored]
    assert ids == sorted(ids) and len(stored) < len(live)
    # A client resuming mid-call gets that call's whole text again, once.
    middle = next(int(e["id"]) for e in live if e["event"] == "message")
    resumed = await events(client, alice, job_id, last=middle)
    assert [e["data"]["text"] for e in resumed if e["event"] == "message"] == [text, "Planned."]
