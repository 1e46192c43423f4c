"""GET /admin/billing/customers against localstripe: found ones, and per-id errors."""

from collections.abc import Callable

import httpx
import pytest

from backend.config import Settings
from tests.billing.helpers import customer_id
from tests.conftest import GENEROUS_LIMITS
from tests.factories import bearer, login, signed_up
from tests.stripe_peers import (
    PRICE_PRO,
    PRICE_TEAM,
    SECRET_KEY,
    WEBHOOK_SECRET,
    FakeStripe,
    LocalStripe,
)


@pytest.fixture
def settings(make_settings: Callable[..., Settings], fake_stripe: FakeStripe) -> Settings:
    return make_settings(
        stripe_secret_key=SECRET_KEY, stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=fake_stripe.url, stripe_price_pro=PRICE_PRO, stripe_price_team=PRICE_TEAM,
        admin_email="root@example.com", admin_password="Admin-Pass-1", **GENEROUS_LIMITS,
    )  # fmt: skip


async def test_customers_in_batch_with_one_unknown_id(
    client: httpx.AsyncClient, localstripe: LocalStripe
) -> None:
    found = []
    for _ in range(3):
        _, headers = await signed_up(client)
        found.append(await customer_id(client, headers, localstripe))
    root = bearer(await login(client, "root@example.com", "Admin-Pass-1"))
    ids = ",".join([*found, "cus_doesnotexist"])
    batch = await client.get("/api/v2/admin/billing/customers", params={"ids": ids}, headers=root)
    assert batch.status_code == 200, batch.text
    body = batch.json()
    assert sorted(c["id"] for c in body["data"]) == sorted(found)
    assert body["errors"] == [{"id": "cus_doesnotexist", "code": "not_found"}]
