"""Admin routes through HTTP: access, users, stats, cache, webhooks, jobs, the audit log."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from backend.generation.periods import period_of
from tests.support.specs import SPEC

A = "/api/v2/admin"
ROUTES = [
    ("GET", "/users"), ("GET", "/users/0123456789abcdef01234567"),
    ("PATCH", "/users/0123456789abcdef01234567"), ("GET", "/stats"),
    ("POST", "/cache/invalidate"), ("GET", "/webhooks"), ("POST", "/webhooks/evt_1/replay"),
    ("GET", "/billing/customers?ids=cus_1"), ("GET", "/jobs"),
    ("POST", "/jobs/0123456789abcdef01234567/cancel"), ("GET", "/audit-log"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_admin_route_refuses_anonymous_and_normal_users(
    client: httpx.AsyncClient, someone: tuple[Any, dict[str, str]], method: str, path: str
) -> None:
    anonymous = await client.request(method, A + path, json={})
    assert anonymous.status_code == 401 and anonymous.json()["code"] in ("unauthorized",)
    normal = await client.request(method, A + path, json={}, headers=someone[1])
    assert normal.status_code == 403 and normal.json()["code"] == "forbidden"


async def me(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    return dict((await client.get("/api/v2/auth/me", headers=headers)).json())


@pytest.mark.parametrize("change", [{"role": "user"}, {"is_active": False}])
async def test_an_admin_cannot_demote_or_disable_themself(
    client: httpx.AsyncClient, root: dict[str, str], change: dict[str, Any]
) -> None:
    response = await client.patch(f"{A}/users/{(await me(client, root))['id']}", json=change,
                                  headers=root)  # fmt: skip
    assert response.status_code == 409 and response.json()["code"] == "cannot_modify_self"


async def test_disabling_ends_sessions_and_jobs_at_once(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    from tests.support.factories import login, register

    user = await register(client)
    tokens = await login(client, user["email"])
    headers = {"authorization": f"Bearer {tokens['access_token']}"}
    job = (await client.post("/api/v2/generate/fullstack", json=SPEC, headers=headers)).json()
    assert job["status"] == "queued"

    disabled = await client.patch(f"{A}/users/{user['id']}", json={"is_active": False},
                                  headers=root)  # fmt: skip
    assert disabled.status_code == 200 and disabled.json()["is_active"] is False
    assert (await client.get("/api/v2/auth/me", headers=headers)).status_code == 401
    refresh = await client.post("/api/v2/auth/refresh",
                                json={"refresh_token": tokens["refresh_token"]})  # fmt: skip
    assert refresh.status_code == 401
    jobs = (await client.get(f"{A}/jobs", params={"user_id": user["id"]}, headers=root)).json()
    assert [j["status"] for j in jobs["data"]] == ["canceled"]


async def test_users_list_with_counts_search_and_filters(
    client: httpx.AsyncClient,
    root: dict[str, str],
    someone: tuple[Any, dict[str, str]],
    app: FastAPI,
) -> None:
    user, headers = someone
    month = {"period": period_of(datetime.now(UTC)), "used": 0, "active": 0,
             "prompt_tokens": 300, "completion_tokens": 45, "cost_nanos": 1_500_000,
             "budget_tokens": 345, "held_tokens": 0}  # fmt: skip
    await app.state.resources.mongo.db["generation_usage"].insert_one({"_id": user["id"], **month})
    for name in ("One", "Two"):
        await client.post("/api/v2/projects", json={"name": name}, headers=headers)
    await client.post("/api/v2/generate/fullstack", json=SPEC, headers=headers)
    found = (await client.get(f"{A}/users", params={"search": user["email"][:6]},
                              headers=root)).json()  # fmt: skip
    row = next(u for u in found["data"] if u["id"] == user["id"])
    assert (row["project_count"], row["generation_count"]) == (2, 1)
    assert (row["month_tokens"], row["month_cost"]) == (345, "0.0015")
    assert row["stripe_customer_id"] is None
    admins = (await client.get(f"{A}/users", params={"role": "admin"}, headers=root)).json()
    assert [u["email"] for u in admins["data"]] == ["root@example.com"]
    nobody = await client.get(f"{A}/users", params={"search": ".*"}, headers=root)
    assert nobody.json()["meta"]["total"] == 0  # plain text, not a pattern
    detail = (await client.get(f"{A}/users/{user['id']}", headers=root)).json()
    assert detail["project_count"] == 2
    assert (await client.get(f"{A}/users/nope", headers=root)).status_code == 404


async def test_a_hand_set_plan_is_audited_with_before_and_after(
    client: httpx.AsyncClient, root: dict[str, str], someone: tuple[Any, dict[str, str]]
) -> None:
    user, headers = someone
    changed = await client.patch(f"{A}/users/{user['id']}", json={"plan": "pro"}, headers=root)
    assert changed.json()["plan"] == "pro"
    assert (await me(client, headers))["plan"] == "pro"  # the user cache was invalidated
    entry = (await client.get(f"{A}/audit-log", headers=root)).json()["data"][0]
    assert entry["action"] == "user.update" and entry["target"] == f"user:{user['id']}"
    assert entry["details"]["before"]["plan"] == "free"
    assert entry["details"]["after"]["plan"] == "pro"
    assert entry["details"]["request_id"]
    assert entry["actor_id"] == (await me(client, root))["id"]


@pytest.mark.parametrize("body", [{"role": "owner"}, {"plan": "gold"}, {"email": "x@y.z"}])
async def test_bad_user_changes_are_422(
    client: httpx.AsyncClient,
    root: dict[str, str],
    someone: tuple[Any, dict[str, str]],
    body: dict[str, Any],
) -> None:
    response = await client.patch(f"{A}/users/{someone[0]['id']}", json=body, headers=root)
    assert response.status_code == 422 and response.json()["code"] == "validation_error"


async def test_stats_count_seeded_data_into_zero_filled_days(
    client: httpx.AsyncClient, root: dict[str, str], app: FastAPI
) -> None:
    db = app.state.resources.mongo.db
    now = datetime.now(UTC)
    await db["users"].insert_many([
        {"email": f"old{n}@example.com", "plan": "pro", "is_active": n != 0, "is_verified": True,
         "subscription_status": "active", "created_at": now - timedelta(days=3)}
        for n in range(3)
    ])  # fmt: skip
    yesterday = now - timedelta(days=1)
    await db["generation_jobs"].insert_many([
        {"owner_id": "x", "kind": "fullstack", "status": status, "created_at": yesterday}
        for status in ("succeeded", "failed", "failed")
    ])  # fmt: skip
    spent = {"prompt_tokens": 1000, "completion_tokens": 200, "cost_nanos": 12_500_000}
    await db["generation_jobs"].insert_many([
        {"owner_id": "y", "kind": "agentic", "status": "succeeded", "created_at": when,
         "usage": spent}
        for when in (now - timedelta(days=2), now - timedelta(days=2), now)
    ])  # fmt: skip
    stats = (await client.get(f"{A}/stats", params={"days": 7}, headers=root)).json()
    assert stats["users"]["total"] == 4  # the three, and the admin
    assert stats["users"]["active"] == 3 and stats["users"]["by_plan"] == {"pro": 3, "free": 1}
    assert stats["subscriptions"]["active"] == 3
    assert stats["generations"]["by_status"] == {"succeeded": 4, "failed": 2}
    assert stats["generations"]["last_24h"] == 1
    signups = stats["series"]["signups"]
    assert len(signups) == 7 and signups[-1]["date"] == now.date().isoformat()
    assert [d["count"] for d in signups] == [0, 0, 0, 3, 0, 0, 1]
    assert [d["count"] for d in stats["series"]["failed_generations"]] == [0] * 5 + [2, 0]
    assert [d["count"] for d in stats["series"]["tokens"]] == [0] * 4 + [2400, 0, 1200]
    assert [d["usd"] for d in stats["series"]["cost"]] == ["0"] * 4 + ["0.025", "0", "0.0125"]
    assert set(stats["cache"]) == {"hits", "misses", "hit_ratio"}
    for days in (0, 91):
        bad = await client.get(f"{A}/stats", params={"days": days}, headers=root)
        assert bad.status_code == 422 and bad.json()["code"] == "validation_error"


async def test_cache_invalidation_by_user_or_prefix_is_audited(
    client: httpx.AsyncClient, root: dict[str, str], someone: tuple[Any, dict[str, str]]
) -> None:
    by_user = await client.post(f"{A}/cache/invalidate", json={"user_id": someone[0]["id"]},
                                headers=root)  # fmt: skip
    assert by_user.json() == {"invalidated": 2}
    by_prefix = await client.post(f"{A}/cache/invalidate", json={"prefix": "user:"}, headers=root)
    assert by_prefix.status_code == 200 and by_prefix.json()["invalidated"] >= 1
    for body in ({}, {"prefix": "a", "user_id": "b"}, {"prefix": "sp ace"}):
        bad = await client.post(f"{A}/cache/invalidate", json=body, headers=root)
        assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
    actions = [
        e["action"] for e in (await client.get(f"{A}/audit-log", headers=root)).json()["data"]
    ]
    assert actions[:2] == ["cache.invalidate", "cache.invalidate"]


async def test_replay_retries_a_failed_event_and_leaves_a_processed_one(
    client: httpx.AsyncClient, root: dict[str, str], app: FastAPI
) -> None:
    db = app.state.resources.mongo.db
    now = datetime.now(UTC)
    base = {"type": "customer.created", "received_at": now, "claimed_at": now,
            "processed_at": None, "expires_at": now + timedelta(days=7)}  # fmt: skip
    for event_id, status in (("evt_failed", "failed"), ("evt_done", "processed")):
        payload = {"id": event_id, "type": "customer.created", "created": 1,
                   "data": {"object": {"id": "cus_1"}}}  # fmt: skip
        error = "boom" if status == "failed" else None
        stored = {**base, "_id": event_id, "status": status, "attempts": 1, "error": error,
                  "payload": json.dumps(payload)}  # fmt: skip
        await db["stripe_events"].insert_one(stored)
    retried = (await client.post(f"{A}/webhooks/evt_failed/replay", headers=root)).json()
    assert retried["status"] == "processed" and retried["attempts"] == 2
    kept = (await client.post(f"{A}/webhooks/evt_done/replay", headers=root)).json()
    assert kept["status"] == "processed" and kept["attempts"] == 1
    listed = (await client.get(f"{A}/webhooks", params={"status": "processed"},
                               headers=root)).json()  # fmt: skip
    assert {e["id"] for e in listed["data"]} == {"evt_failed", "evt_done"}
    missing = await client.post(f"{A}/webhooks/evt_none/replay", headers=root)
    assert missing.status_code == 404
    audit = (await client.get(f"{A}/audit-log", headers=root)).json()["data"]
    assert [e["details"]["after"] for e in audit[:2]] == [
        {"status": "processed", "attempts": 1},
        {"status": "processed", "attempts": 2},
    ]
    assert audit[1]["details"]["before"] == {"status": "failed", "attempts": 1}


async def test_admins_see_and_cancel_anyones_jobs(
    client: httpx.AsyncClient, root: dict[str, str], someone: tuple[Any, dict[str, str]]
) -> None:
    user, headers = someone
    job = (await client.post("/api/v2/generate/fullstack", json=SPEC, headers=headers)).json()
    listed = (await client.get(f"{A}/jobs", params={"status": "queued"}, headers=root)).json()
    assert [(j["id"], j["user_id"]) for j in listed["data"]] == [(job["id"], user["id"])]
    canceled = await client.post(f"{A}/jobs/{job['id']}/cancel", headers=root)
    assert canceled.json()["status"] == "canceled"
    again = await client.post(f"{A}/jobs/{job['id']}/cancel", headers=root)
    assert again.status_code == 409 and again.json()["code"] == "job_finished"
    refused, done = (await client.get(f"{A}/audit-log", headers=root)).json()["data"][:2]
    assert done["action"] == "job.cancel"
    assert done["details"]["before"] == {"status": "queued"}
    assert done["details"]["after"] == {"status": "canceled"}
    assert "refused" not in done["details"]
    assert refused["details"]["refused"] == "job_finished"


async def test_too_many_customer_ids_are_422(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    ids = ",".join(f"cus_{n}" for n in range(101))
    response = await client.get(f"{A}/billing/customers", params={"ids": ids}, headers=root)
    assert response.status_code == 422 and response.json()["code"] == "validation_error"


async def test_admin_routes_are_rate_limited_per_admin(
    make_settings: Any, fresh_minute_window: None
) -> None:
    from backend.main import create_app
    from tests.support.app_client import open_client
    from tests.support.factories import bearer, login
    from tests.support.settings import ADMIN_EMAIL, ADMIN_PASSWORD

    settings = make_settings(admin_email=ADMIN_EMAIL, admin_password=ADMIN_PASSWORD,
                             rate_limit_admin="2/minute")  # fmt: skip
    async with open_client(create_app(settings)) as limited:
        root = bearer(await login(limited, ADMIN_EMAIL, ADMIN_PASSWORD))
        codes = [(await limited.get(f"{A}/audit-log", headers=root)).status_code for _ in range(3)]
        refused = await limited.get(f"{A}/users", headers=root)
    assert codes == [200, 200, 429]
    assert refused.json()["code"] == "rate_limited" and refused.headers["retry-after"]
