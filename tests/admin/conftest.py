"""Admin tests: an app whose configured admin exists, and a normal user."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from backend.config import Settings
from tests.support.factories import bearer, login, signed_up
from tests.support.settings import ADMIN_EMAIL, ADMIN_PASSWORD, GENEROUS_LIMITS


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Redis queue and no worker: jobs stay queued. Billing on, for the webhook log."""
    return make_settings(
        **GENEROUS_LIMITS, admin_email=ADMIN_EMAIL, admin_password=ADMIN_PASSWORD,
        stripe_secret_key="sk_test_admin", stripe_webhook_secret="whsec_admin",
        stripe_api_base="http://127.0.0.1:1", max_active_jobs_free=10,
    )  # fmt: skip


@pytest.fixture
async def root(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer(await login(client, ADMIN_EMAIL, ADMIN_PASSWORD))


@pytest.fixture
async def someone(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, str]]:
    return await signed_up(client)
