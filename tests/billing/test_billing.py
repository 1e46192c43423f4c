"""Plans, checkout, portal, subscription changes and invoices against localstripe."""

from collections.abc import Callable

import httpx
import pytest

from backend.config import Settings
from backend.main import create_app
from tests.support.app_client import open_client
from tests.support.billing import BACK, CHECKOUT, checkout, customer_id, deliver, subscribed
from tests.support.factories import signed_up
from tests.support.stripe import FakeStripe, LocalStripe, event


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code


async def test_plans_are_public(client: httpx.AsyncClient) -> None:
    plans = (await client.get("/api/v2/billing/plans")).json()
    assert [plan["id"] for plan in plans] == ["free", "pro", "team"]
    assert plans[1]["price_cents"] == 2000 and plans[1]["interval"] == "month"
    assert all(plan["generation_quota"] > 0 and plan["features"] for plan in plans)


async def test_new_user_has_no_subscription(client: httpx.AsyncClient) -> None:
    _, headers = await signed_up(client)
    response = await client.get("/api/v2/billing/subscription", headers=headers)
    assert response.json() == {
        "plan": "free",
        "status": "inactive",
        "current_period_end": None,
        "cancel_at_period_end": False,
    }


async def test_checkout_creates_one_customer_and_a_session(
    client: httpx.AsyncClient, fake_stripe: FakeStripe, localstripe: LocalStripe
) -> None:
    user, headers = await signed_up(client)
    first = await checkout(client, headers)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["session_id"].startswith("cs_test_") and body["url"].startswith("https://")
    second = await checkout(client, headers, plan="team")
    assert second.status_code == 201
    customers = {seen.form["customer"] for seen in fake_stripe.requests_to("/v1/checkout/sessions")}
    assert len(customers) == 1  # the second checkout reused the stored customer
    assert len(fake_stripe.requests_to("/v1/customers")) == 1
    sent = fake_stripe.requests_to("/v1/checkout/sessions")[0].form
    assert sent["client_reference_id"] == user["id"]
    assert sent["mode"] == "subscription"
    assert sent["line_items[0][price]"] == "price_pro_test"


async def test_a_retried_checkout_returns_the_same_session(
    client: httpx.AsyncClient, fake_stripe: FakeStripe
) -> None:
    _, headers = await signed_up(client)
    first = await checkout(client, headers, key="click-1")
    again = await checkout(client, headers, key="click-1")
    other = await checkout(client, headers, key="click-2")
    assert first.json()["session_id"] == again.json()["session_id"]
    assert other.json()["session_id"] != first.json()["session_id"]


@pytest.mark.parametrize("faults", [["429", "429"], ["500"], ["drop"], ["500", "429", "drop"]])
async def test_retries_reuse_one_idempotency_key(
    client: httpx.AsyncClient, fake_stripe: FakeStripe, faults: list[str]
) -> None:
    _, headers = await signed_up(client)
    await checkout(client, headers, key="warm-up")  # creates the customer first
    fake_stripe.seen.clear()
    fake_stripe.fail_next("/v1/checkout/sessions", *faults)
    response = await checkout(client, headers, key="with-faults")
    assert response.status_code == 201, response.text
    attempts = fake_stripe.requests_to("/v1/checkout/sessions")
    assert len(attempts) == len(faults) + 1
    assert len({seen.idempotency_key for seen in attempts}) == 1
    assert attempts[0].idempotency_key and "with-faults" in attempts[0].idempotency_key


async def test_exhausted_retries_are_503(
    client: httpx.AsyncClient, fake_stripe: FakeStripe
) -> None:
    _, headers = await signed_up(client)
    await checkout(client, headers)
    fake_stripe.fail_next("/v1/checkout/sessions", *["429"] * 10)
    assert_problem(await checkout(client, headers), 503, "payment_provider_unavailable")
    fake_stripe.faults.clear()
    fake_stripe.fail_next("/v1/checkout/sessions", *["500"] * 10)
    assert_problem(await checkout(client, headers), 503, "payment_provider_unavailable")


@pytest.mark.parametrize(
    "field, url",
    [
        ("success_url", "https://evil.example/ok"),
        ("cancel_url", "http://localhost:5173.evil.example/x"),
        ("success_url", "javascript:alert(1)"),
    ],
)
async def test_checkout_urls_must_be_on_the_allow_list(
    client: httpx.AsyncClient, field: str, url: str
) -> None:
    _, headers = await signed_up(client)
    body = {"plan": "pro", "success_url": f"{BACK}/ok", "cancel_url": f"{BACK}/x", field: url}
    assert_problem(
        await client.post(CHECKOUT, json=body, headers=headers), 400, "invalid_redirect_uri"
    )


@pytest.mark.parametrize("plan", ["free", "gold", ""])
async def test_unknown_plan_is_422(client: httpx.AsyncClient, plan: str) -> None:
    _, headers = await signed_up(client)
    assert_problem(await checkout(client, headers, plan=plan), 422, "validation_error")


async def test_checkout_while_subscribed_is_409(
    client: httpx.AsyncClient, localstripe: LocalStripe
) -> None:
    headers, _, _ = await subscribed(client, localstripe)
    sub = (await client.get("/api/v2/billing/subscription", headers=headers)).json()
    assert sub["plan"] == "pro" and sub["status"] == "active"
    assert sub["current_period_end"] is not None
    assert_problem(await checkout(client, headers), 409, "already_subscribed")


async def test_portal_needs_a_billing_account(
    client: httpx.AsyncClient, localstripe: LocalStripe
) -> None:
    _, headers = await signed_up(client)
    portal = "/api/v2/billing/portal"
    assert_problem(
        await client.post(portal, json={"return_url": BACK}, headers=headers),
        409,
        "no_billing_account",
    )
    await customer_id(client, headers, localstripe)
    response = await client.post(portal, json={"return_url": BACK}, headers=headers)
    assert response.status_code == 201
    assert response.json()["url"].startswith("https://billing.stripe.com/")
    assert_problem(
        await client.post(portal, json={"return_url": "https://evil.example"}, headers=headers),
        400,
        "invalid_redirect_uri",
    )


async def test_cancel_and_resume_at_period_end(
    client: httpx.AsyncClient, localstripe: LocalStripe
) -> None:
    headers, _, sub = await subscribed(client, localstripe)
    canceled = await client.post("/api/v2/billing/subscription/cancel", headers=headers)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["cancel_at_period_end"] is True
    assert canceled.json()["plan"] == "pro"  # paid until the period ends
    with localstripe.client() as stripe:
        assert stripe.get(f"/v1/subscriptions/{sub['id']}").json()["cancel_at_period_end"] is True
    resumed = await client.post("/api/v2/billing/subscription/resume", headers=headers)
    assert resumed.json()["cancel_at_period_end"] is False
    stored = (await client.get("/api/v2/billing/subscription", headers=headers)).json()
    assert stored["cancel_at_period_end"] is False


async def test_cancel_without_subscription_is_409(client: httpx.AsyncClient) -> None:
    _, headers = await signed_up(client)
    response = await client.post("/api/v2/billing/subscription/cancel", headers=headers)
    assert_problem(response, 409, "no_subscription")


async def test_invoices_come_from_stripe_and_refresh_on_invoice_events(
    client: httpx.AsyncClient, localstripe: LocalStripe
) -> None:
    headers, customer, _ = await subscribed(client, localstripe)
    first = (await client.get("/api/v2/billing/invoices", headers=headers)).json()
    assert first["has_more"] is False
    assert [invoice["amount_paid"] for invoice in first["data"]] == [2000]
    assert first["data"][0]["created"].endswith("Z")
    # A second subscription bills again; the cached list shows it once invoice.paid arrives.
    localstripe.subscribe(customer, "price_team_test")
    cached = (await client.get("/api/v2/billing/invoices", headers=headers)).json()
    assert len(cached["data"]) == 1
    await deliver(client, event("invoice.paid", {"id": "in_x", "customer": customer}))
    fresh = (await client.get("/api/v2/billing/invoices", headers=headers)).json()
    assert len(fresh["data"]) == 2
    paged = (
        await client.get("/api/v2/billing/invoices", params={"limit": 1}, headers=headers)
    ).json()
    assert len(paged["data"]) == 1 and paged["has_more"] is True


async def test_bad_invoice_parameters_are_422(client: httpx.AsyncClient) -> None:
    _, headers = await signed_up(client)
    for params in ({"limit": 0}, {"limit": 101}, {"starting_after": "x; drop"}):
        response = await client.get("/api/v2/billing/invoices", params=params, headers=headers)
        assert_problem(response, 422, "validation_error")


async def test_without_stripe_writes_are_503_and_plans_work(
    make_settings: Callable[..., Settings],
) -> None:
    async with open_client(create_app(make_settings())) as client:
        _, headers = await signed_up(client)
        assert (await client.get("/api/v2/billing/plans")).status_code == 200
        assert_problem(await checkout(client, headers), 503, "payment_provider_unavailable")
        assert_problem(
            await client.post("/api/v2/billing/webhooks/stripe", content=b"{}"),
            503,
            "payment_provider_unavailable",
        )


async def test_an_idempotency_key_sent_again_with_another_body_is_422(
    client: httpx.AsyncClient, fake_stripe: FakeStripe
) -> None:
    _, headers = await signed_up(client)
    assert (await checkout(client, headers, key="click-1")).status_code == 201
    response = await client.post(
        CHECKOUT,
        json={"plan": "pro", "success_url": f"{BACK}/other", "cancel_url": f"{BACK}/cancel"},
        headers={**headers, "Idempotency-Key": "click-1"},
    )
    assert_problem(response, 422, "idempotency_key_reused")


async def test_an_unknown_invoice_cursor_is_400(
    client: httpx.AsyncClient, localstripe: LocalStripe
) -> None:
    headers, _, _ = await subscribed(client, localstripe)
    response = await client.get(
        "/api/v2/billing/invoices", params={"starting_after": "in_unknown"}, headers=headers
    )
    assert_problem(response, 400, "invalid_cursor")


async def test_a_customer_deleted_at_stripe_is_502_not_500(
    client: httpx.AsyncClient, localstripe: LocalStripe
) -> None:
    _, headers = await signed_up(client)
    customer = await customer_id(client, headers, localstripe)
    with localstripe.client() as stripe:
        stripe.delete(f"/v1/customers/{customer}").raise_for_status()
    portal = await client.post("/api/v2/billing/portal", json={"return_url": BACK}, headers=headers)
    assert_problem(portal, 502, "payment_provider_error")
    invoices = await client.get("/api/v2/billing/invoices", headers=headers)
    assert_problem(invoices, 502, "payment_provider_error")
    assert_problem(await checkout(client, headers), 502, "payment_provider_error")
