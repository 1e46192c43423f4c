"""GET /admin/billing/customers against localstripe: found ones, and per-id errors."""

import httpx
import pytest
from pydantic import SecretStr

from backend.config import Settings
from tests.support.billing import customer_id
from tests.support.factories import bearer, login, signed_up
from tests.support.stripe import LocalStripe


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The billing suite's settings, with an admin."""
    return settings.model_copy(
        update={"admin_email": "root@example.com", "admin_password": SecretStr("Admin-Pass-1")}
    )


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
