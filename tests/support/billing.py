"""Billing through the API: a checkout, a signed webhook delivery, a subscribed user."""

import json
from typing import Any

import httpx

from tests.support.factories import signed_up
from tests.support.stripe import LocalStripe, event, sign

CHECKOUT = "/api/v2/billing/checkout"
WEBHOOK = "/api/v2/billing/webhooks/stripe"
BACK = "http://localhost:5173/billing"


async def checkout(
    client: httpx.AsyncClient, headers: dict[str, str], plan: str = "pro", key: str | None = None
) -> httpx.Response:
    extra = {"Idempotency-Key": key} if key else {}
    return await client.post(
        CHECKOUT,
        json={"plan": plan, "success_url": f"{BACK}/ok", "cancel_url": f"{BACK}/cancel"},
        headers={**headers, **extra},
    )


async def deliver(
    client: httpx.AsyncClient, payload: dict[str, Any], **sign_args: Any
) -> httpx.Response:
    body = json.dumps(payload).encode()
    return await client.post(
        WEBHOOK,
        content=body,
        headers={"Stripe-Signature": sign(body, **sign_args), "Content-Type": "application/json"},
    )


async def customer_id(
    client: httpx.AsyncClient, headers: dict[str, str], localstripe: LocalStripe
) -> str:
    """Run a checkout so the user has a Stripe customer, and return its id."""
    assert (await checkout(client, headers)).status_code == 201
    me = (await client.get("/api/v2/auth/me", headers=headers)).json()
    params: dict[str, str | int] = {"limit": 100}
    with localstripe.client() as stripe:
        while True:
            page = stripe.get("/v1/customers", params=params).json()
            for customer in page["data"]:
                if customer.get("metadata", {}).get("user_id") == me["id"]:
                    return str(customer["id"])
            if not page["has_more"]:
                raise AssertionError("no Stripe customer carries this user's id")
            params["starting_after"] = page["data"][-1]["id"]


async def subscribed(
    client: httpx.AsyncClient, localstripe: LocalStripe
) -> tuple[dict[str, str], str, dict[str, Any]]:
    """A user whose Stripe subscription we have been told about: (headers, customer, sub)."""
    _, headers = await signed_up(client)
    customer = await customer_id(client, headers, localstripe)
    sub = localstripe.subscribe(customer)
    response = await deliver(client, event("customer.subscription.created", sub))
    assert response.status_code == 200, response.text
    return headers, customer, sub
