"""The database: a real MongoDB-wire server, declared indexes, index-backed queries."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pymongo
import pytest
from bson import ObjectId
from pymongo import ASCENDING, AsyncMongoClient, IndexModel, MongoClient
from pymongo.errors import DuplicateKeyError

from backend.config import NO_DATABASE, Settings, load_settings
from backend.db import UNAVAILABLE_ERRORS, Mongo
from backend.dev import wait_for_mongodb
from backend.main import create_app
from backend.repositories import INDEXES
from backend.repositories.base import insert_new
from tests.support.app_client import open_client
from tests.support.factories import PASSWORD, bearer, login, register
from tests.support.mongo_proxy import LosingProxy
from tests.support.query_plans import collection_scans, recorded_commands
from tests.support.servers import MongoServer

ROOT = Path(__file__).resolve().parents[2]


def test_settings_without_a_database_stop_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MONGODB_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    with pytest.raises(SystemExit) as stopped:
        load_settings()
    assert stopped.value.code == NO_DATABASE


def test_server_without_a_database_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "backend.main:app", "--port", "1"],
        cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert NO_DATABASE in result.stderr
    assert "Traceback" not in result.stderr


async def test_writes_wait_for_a_majority(make_settings: Callable[..., Settings]) -> None:
    mongo = Mongo(make_settings())
    try:
        assert mongo.db.write_concern.document == {"w": "majority"}
    finally:
        await mongo.close()


async def test_index_creation_is_idempotent_and_enforced(
    make_settings: Callable[..., Settings],
) -> None:
    mongo = Mongo(make_settings())
    indexes = {"things": [IndexModel([("email", ASCENDING)], unique=True, name="email_unique")]}
    try:
        await mongo.ensure_indexes(indexes)
        await mongo.ensure_indexes(indexes)
        await mongo.db["things"].insert_one({"email": "a@example.com"})
        with pytest.raises(DuplicateKeyError):
            await mongo.db["things"].insert_one({"email": "a@example.com"})
    finally:
        await mongo.close()


_INDEX_OPTIONS = ("unique", "sparse", "expireAfterSeconds", "partialFilterExpression")


def _declared(model: IndexModel) -> dict[str, Any]:
    doc = model.document
    return {"key": list(doc["key"].items()), **{k: doc[k] for k in _INDEX_OPTIONS if k in doc}}


def _existing(info: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": [(field, int(order)) for field, order in info["key"]],
        **{k: info[k] for k in _INDEX_OPTIONS if k in info},
    }


async def test_every_declared_index_exists_as_declared(client: httpx.AsyncClient) -> None:
    db = client._transport.app.state.resources.mongo.db  # type: ignore[attr-defined]
    for collection, models in INDEXES.items():
        info = await db[collection].index_information()
        for model in models:
            name = model.document["name"]
            assert name in info, f"{collection}.{name} is missing"
            assert _existing(info[name]) == _declared(model), f"{collection}.{name}"


async def test_per_request_queries_use_an_index(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Sign-up, sign-in, refresh, the project list, a project and its edits: no COLLSCAN."""
    database = settings.mongodb_db
    url = settings.mongodb_url.get_secret_value()  # type: ignore[union-attr]
    with recorded_commands(database) as commands:
        user = await register(client)
        tokens = await login(client, user["email"], PASSWORD)
        tokens = (
            await client.post(
                "/api/v2/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
            )
        ).json()
        headers = bearer(tokens)
        assert (await client.get("/api/v2/auth/me", headers=headers)).status_code == 200
        created = await client.post("/api/v2/projects", json={"name": "P"}, headers=headers)
        project = created.json()["id"]
        for sort in ("-updated_at", "name", "created_at"):
            listed = await client.get(
                "/api/v2/projects", params={"sort": sort, "search": "p"}, headers=headers
            )
            assert listed.status_code == 200
        assert (await client.get(f"/api/v2/projects/{project}", headers=headers)).status_code == 200
        await client.put(
            f"/api/v2/projects/{project}/files",
            json={"path": "a.py", "content": "x = 1\n"},
            headers=headers,
        )
        await client.post(
            f"/api/v2/projects/{project}/messages",
            json={"role": "user", "content": "hi"},
            headers=headers,
        )
        await client.get(f"/api/v2/projects/{project}/messages", headers=headers)
        await client.post("/api/v2/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert len(commands) > 10
    assert collection_scans(url, database, commands) == []


def test_a_collection_scan_is_reported(mongo_url: str) -> None:
    """The check above can fail: an unindexed filter shows up as a COLLSCAN."""
    with MongoClient(mongo_url) as client:
        client["plans_probe"]["things"].insert_one({"colour": "red"})
        try:
            scans = collection_scans(
                mongo_url, "plans_probe", [{"find": "things", "filter": {"colour": "red"}}]
            )
        finally:
            client.drop_database("plans_probe")
    assert len(scans) == 1


async def test_an_insert_whose_acknowledgement_was_lost_is_the_success_it_is(
    mongo_url: str, database_names: list[str]
) -> None:
    """A retried insert that finds its own `_id` already stored (the first attempt landed,
    its acknowledgement did not) succeeds; a duplicate on another unique key still raises."""
    database_names.append("test_insert_new")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    try:
        users = client["test_insert_new"]["users"]
        await users.create_index("email", unique=True)
        doc = {"email": "a@example.com"}
        first = await insert_new(users, doc)
        assert await insert_new(users, dict(doc)) == first  # the same insert, retried
        assert await users.count_documents({}) == 1
        with pytest.raises(DuplicateKeyError):
            await insert_new(users, {"email": "a@example.com"})  # another insert: refused
    finally:
        await client.close()


async def test_a_registration_whose_acknowledgement_died_with_the_database_is_201(
    make_settings: Callable[..., Settings],
) -> None:
    """The database is killed between storing the user and answering for it, then restarted.

    The driver retries the insert (retryable writes, as on a production URL) against a server
    that has forgotten the first attempt; the stored user is this registration's, so it is a
    201, not `email_taken` or a 500. The user exists once and can log in.
    """
    database = MongoServer(on_disk=True).start()
    proxy = await LosingProxy(database.port).start()

    async def crash() -> None:
        database.kill()
        database.spawn()  # on this (the main) thread: the server lives as long as it
        assert database.process is not None
        await asyncio.to_thread(wait_for_mongodb, database.url, database.process, 60)

    try:
        # A server-selection wait long enough for the restart, so the one retry reaches it.
        settings = make_settings(mongodb_url=proxy.url(), mongodb_timeout_ms=20_000)
        app = create_app(settings)
        async with open_client(app) as client:
            proxy.lose_next_ack("insert", "users", crash)
            email = "lost-ack@example.com"
            answer = await client.post(
                "/api/v2/auth/register", json={"email": email, "password": PASSWORD}
            )
            assert [c["insert"] for c in proxy.lost] == ["users"]  # an answer was really lost
            assert answer.status_code == 201, answer.text
            users = app.state.resources.mongo.db["users"]
            assert await users.count_documents({"email": email}) == 1
            assert (await users.find_one({"email": email}))["_id"] == ObjectId(answer.json()["id"])
            await login(client, email)
    finally:
        await proxy.close()
        database.close()


async def test_a_transaction_cut_off_by_its_budget_lets_go_of_its_documents(
    make_settings: Callable[..., Settings],
) -> None:
    """An attempt that spends the budget is aborted on the server, not left open: a write
    outside it to the same document goes through at once, and the attempt's write is gone.
    (Left open, the transaction held the document for up to a minute.)"""
    mongo = Mongo(make_settings(mongodb_timeout_ms=500))  # a budget of 1 s
    things = mongo.db["things"]
    try:
        await things.insert_one({"_id": 1, "n": 0})

        async def slow(session: Any) -> None:
            await things.update_one({"_id": 1}, {"$inc": {"n": 1}}, session=session)
            await asyncio.sleep(mongo.transaction_budget_s + 0.2)
            await things.find_one({"_id": 2}, session=session)  # past the budget: refused

        with pytest.raises(UNAVAILABLE_ERRORS):
            await mongo.transaction(slow)
        with pymongo.timeout(5):  # left open, this waits on the transaction and times out
            await things.update_one({"_id": 1}, {"$inc": {"n": 10}})
        assert (await things.find_one({"_id": 1})) == {"_id": 1, "n": 10}
    finally:
        await mongo.close()
