"""The webhook inbox: signatures, once-only effects, ordering, failure and redelivery."""

import asyncio
import json
import time

import httpx
import pytest
from fastapi import FastAPI

from backend.config import Settings
from backend.main import create_app
from tests.support.app_client import open_client
from tests.support.billing import WEBHOOK, customer_id, deliver
from tests.support.factories import signed_up
from tests.support.query_plans import collection_scans, recorded_commands
from tests.support.servers import served
from tests.support.stripe import WEBHOOK_SECRET, FakeStripe, LocalStripe, event, sign, wait_until


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code


async def stored_event(app: FastAPI, event_id: str) -> dict[str, object]:
    doc = await app.state.resources.mongo.db["stripe_events"].find_one({"_id": event_id})
    assert doc is not None
    return dict(doc)


async def subscription_of(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, object]:
    return dict((await client.get("/api/v2/billing/subscription", headers=headers)).json())


async def test_missing_signature_is_400(client: httpx.AsyncClient) -> None:
    body = json.dumps(event("invoice.paid", {"id": "in_1"})).encode()
    assert_problem(await client.post(WEBHOOK, content=body), 400, "invalid_signature")


@pytest.mark.parametrize(
    "header",
    [
        "t=1,v1=deadbeef",
        "garbage",
        "v1=abc",
        sign(b"another body"),
        sign(b'{"x": 1}', secret="whsec_someone_else"),
    ],
    # Stable ids (the signed ones carry a timestamp): pytest-xdist workers must agree.
    ids=["old-timestamp", "garbage", "no-timestamp", "other-body", "other-secret"],
)
async def test_bad_signature_is_400(client: httpx.AsyncClient, header: str) -> None:
    body = json.dumps(event("invoice.paid", {"id": "in_1"})).encode()
    response = await client.post(WEBHOOK, content=body, headers={"Stripe-Signature": header})
    assert_problem(response, 400, "invalid_signature")


# Signed timestamps are whole seconds. A past one truncated from now is only further out by
# the time the server checks it; a future one loses up to a second to truncation and more to
# a slow machine before the check, so it sits a few seconds past the 300 s window.
@pytest.mark.parametrize("offset", [-301, 305, 86_400])
async def test_timestamps_outside_tolerance_are_400(client: httpx.AsyncClient, offset: int) -> None:
    response = await deliver(
        client, event("invoice.paid", {"id": "in_1"}), timestamp=int(time.time()) + offset
    )
    assert_problem(response, 400, "invalid_signature")


@pytest.mark.parametrize("extra", [",junk", ",v0=abc", ",t=9999999999"])
async def test_a_valid_signature_with_extra_header_parts_is_read_as_stripe_reads_it(
    client: httpx.AsyncClient, extra: str
) -> None:
    # stripe-python verifies the first `t=` and any matching `v1=`; parts it skips must not
    # trip the future-timestamp check that follows it (a bare `junk` once answered 500).
    body = json.dumps(event("invoice.paid", {"id": "in_1"})).encode()
    header = sign(body) + extra
    response = await client.post(WEBHOOK, content=body, headers={"Stripe-Signature": header})
    assert response.status_code == 200, response.text


async def test_a_future_first_timestamp_is_400_even_with_a_current_one_after_it(
    client: httpx.AsyncClient,
) -> None:
    body = json.dumps(event("invoice.paid", {"id": "in_1"})).encode()
    future = sign(body, timestamp=int(time.time()) + 3_600)
    response = await client.post(
        WEBHOOK, content=body, headers={"Stripe-Signature": f"{future},t={int(time.time())}"}
    )
    assert_problem(response, 400, "invalid_signature")


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"id": "evt_1"}', "ü".encode("latin-1")])
async def test_signed_but_malformed_body_is_400(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(WEBHOOK, content=body, headers={"Stripe-Signature": sign(body)})
    assert_problem(response, 400, "invalid_payload")


async def test_unhandled_types_are_recorded_and_acknowledged(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    payload = event("customer.created", {"id": "cus_1"})
    response = await deliver(client, payload)
    assert response.json() == {"received": True, "duplicate": False}
    assert (await stored_event(app, payload["id"]))["status"] == "processed"


async def test_a_replayed_event_takes_effect_once(client: httpx.AsyncClient, app: FastAPI) -> None:
    payload = event("customer.created", {"id": "cus_1"})
    assert (await deliver(client, payload)).json()["duplicate"] is False
    assert (await deliver(client, payload)).json() == {"received": True, "duplicate": True}
    stored = await stored_event(app, payload["id"])
    assert stored["attempts"] == 1 and stored["status"] == "processed"


async def test_fifty_concurrent_deliveries_have_one_effect(
    client: httpx.AsyncClient, app: FastAPI, localstripe: LocalStripe
) -> None:
    _, headers = await signed_up(client)
    customer = await customer_id(client, headers, localstripe)
    sub = localstripe.subscribe(customer)
    payload = event("customer.subscription.created", sub)
    responses = await asyncio.gather(*(deliver(client, payload) for _ in range(50)))
    assert all(r.status_code == 200 for r in responses)
    assert sorted(r.json()["duplicate"] for r in responses) == [False] + [True] * 49
    assert (await stored_event(app, payload["id"]))["attempts"] == 1
    assert (await subscription_of(client, headers))["plan"] == "pro"


async def test_out_of_order_subscription_events_end_in_the_newest_state(
    client: httpx.AsyncClient, localstripe: LocalStripe
) -> None:
    _, headers = await signed_up(client)
    customer = await customer_id(client, headers, localstripe)
    sub = localstripe.subscribe(customer)
    now = int(time.time())
    created = event("customer.subscription.created", sub, created=now - 20)
    updated_sub = {**sub, "cancel_at_period_end": True}
    updated = event("customer.subscription.updated", updated_sub, created=now - 10)

    # `updated` first, then the older `created`: the older payload must not win.
    await deliver(client, updated)
    await deliver(client, created)
    state = await subscription_of(client, headers)
    assert state["plan"] == "pro" and state["status"] == "active"

    # Stripe deletes it; `deleted` arrives, then a stale `updated` from before.
    with localstripe.client() as stripe:
        deleted_sub = stripe.delete(f"/v1/subscriptions/{sub['id']}").json()
    deleted = event("customer.subscription.deleted", deleted_sub, created=now)
    stale = event("customer.subscription.updated", {**sub, "status": "active"}, created=now - 5)
    await deliver(client, deleted)
    await deliver(client, stale)
    assert await subscription_of(client, headers) | {"current_period_end": None} == {
        "plan": "free",
        "status": "canceled",
        "current_period_end": None,
        "cancel_at_period_end": False,
    }


async def test_a_failed_handling_is_retried_by_redelivery(
    client: httpx.AsyncClient, app: FastAPI, fake_stripe: FakeStripe, localstripe: LocalStripe
) -> None:
    user, headers = await signed_up(client)
    customer = await customer_id(client, headers, localstripe)
    sub = localstripe.subscribe(customer)
    completed = event(
        "checkout.session.completed",
        {
            "id": "cs_test_1",
            "object": "checkout.session",
            "client_reference_id": user["id"],
            "customer": customer,
            "subscription": sub["id"],
        },
    )
    fake_stripe.fail_next(f"/v1/subscriptions/{sub['id']}", "500", "500", "500")  # retries too
    failed = await deliver(client, completed)
    assert_problem(failed, 500, "webhook_failed")
    stored = await stored_event(app, completed["id"])
    assert stored["status"] == "failed" and "APIError" not in str(failed.json())
    assert (await subscription_of(client, headers))["plan"] == "free"

    retried = await deliver(client, completed)
    assert retried.json() == {"received": True, "duplicate": False}
    stored = await stored_event(app, completed["id"])
    assert stored["status"] == "processed" and stored["attempts"] == 2
    assert (await subscription_of(client, headers))["plan"] == "pro"
    assert (await deliver(client, completed)).json()["duplicate"] is True


async def test_a_handling_that_died_midway_is_taken_again_once_abandoned(
    settings: Settings, fake_stripe: FakeStripe, localstripe: LocalStripe
) -> None:
    """A handling cut off mid-way (its process or database died) leaves the event claimed.

    A delivery meanwhile is a duplicate; one after `STRIPE_WEBHOOK_ABANDONED_AFTER_S` handles it.
    """
    app = create_app(settings.model_copy(update={"stripe_webhook_abandoned_after_s": 3}))
    async with open_client(app) as client:
        user, headers = await signed_up(client)
        customer = await customer_id(client, headers, localstripe)
        sub = localstripe.subscribe(customer)
        completed = event("checkout.session.completed", {
            "id": "cs_test_2", "object": "checkout.session", "client_reference_id": user["id"],
            "customer": customer, "subscription": sub["id"],
        })  # fmt: skip
        fake_stripe.fail_next(f"/v1/subscriptions/{sub['id']}", "hang")
        with pytest.raises(TimeoutError):  # the handling dies while Stripe has not answered
            await asyncio.wait_for(deliver(client, completed), 0.5)
        assert (await stored_event(app, completed["id"]))["status"] == "processing"

        assert (await deliver(client, completed)).json()["duplicate"] is True
        assert (await subscription_of(client, headers))["plan"] == "free"
        await asyncio.sleep(3)
        assert (await deliver(client, completed)).json() == {"received": True, "duplicate": False}
        stored = await stored_event(app, completed["id"])
        assert stored["status"] == "processed" and stored["attempts"] == 2
        assert (await subscription_of(client, headers))["plan"] == "pro"


async def test_localstripe_delivers_signed_events_to_us(
    app: FastAPI, localstripe: LocalStripe
) -> None:
    with served(app) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            with localstripe.client() as stripe:
                stripe.post(
                    "/_config/webhooks/devora",
                    data={"url": f"{base}{WEBHOOK}", "secret": WEBHOOK_SECRET},
                ).raise_for_status()
            _, headers = await signed_up(client)
            customer = await customer_id(client, headers, localstripe)
            localstripe.subscribe(customer, "price_team_test")

            async def is_team() -> bool:
                return (await subscription_of(client, headers))["plan"] == "team"

            await wait_until(is_team, timeout=15)
    with localstripe.client() as stripe:
        stripe.post(
            "/_config/webhooks/devora", data={"url": "http://127.0.0.1:9/gone", "secret": "x"}
        )


async def test_metrics_count_webhooks_by_outcome(client: httpx.AsyncClient) -> None:
    payload = event("customer.created", {"id": "cus_m"})
    await deliver(client, payload)
    await deliver(client, payload)
    await client.post(WEBHOOK, content=b"{}", headers={"Stripe-Signature": "t=1,v1=x"})
    text = (await client.get("/metrics")).text
    assert 'webhook_events_total{outcome="processed",type="customer.created"} 1.0' in text
    assert 'webhook_events_total{outcome="duplicate",type="customer.created"} 1.0' in text
    assert 'webhook_events_total{outcome="invalid",type="unknown"} 1.0' in text


async def test_webhook_queries_use_an_index(
    client: httpx.AsyncClient, localstripe: LocalStripe, settings: Settings
) -> None:
    """The event by id, the user by Stripe customer: new, duplicate and subscription events."""
    _, headers = await signed_up(client)
    customer = await customer_id(client, headers, localstripe)
    payload = event("customer.subscription.created", localstripe.subscribe(customer))
    with recorded_commands(settings.mongodb_db) as commands:
        assert (await deliver(client, payload)).json()["duplicate"] is False
        assert (await deliver(client, payload)).json()["duplicate"] is True
        invoice = event("invoice.paid", {"id": "in_q", "object": "invoice", "customer": customer})
        assert (await deliver(client, invoice)).status_code == 200
    url = settings.mongodb_url.get_secret_value()  # type: ignore[union-attr]
    assert any(c.get("findAndModify") == "stripe_events" for c in commands)
    assert collection_scans(url, settings.mongodb_db, commands) == []
