"""Billing tests: localstripe and the Stripe-shaped front started once, an app per test."""

from collections.abc import Callable, Iterator

import pytest

from backend.config import Settings
from tests.support.settings import GENEROUS_LIMITS
from tests.support.stripe import (
    PRICE_PRO,
    PRICE_TEAM,
    SECRET_KEY,
    WEBHOOK_SECRET,
    FakeStripe,
    LocalStripe,
)


@pytest.fixture(scope="session")
def localstripe() -> Iterator[LocalStripe]:
    server = LocalStripe().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fake_stripe_server(localstripe: LocalStripe) -> Iterator[FakeStripe]:
    fake = FakeStripe(upstream=localstripe.url).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_stripe(fake_stripe_server: FakeStripe) -> FakeStripe:
    fake_stripe_server.seen.clear()
    fake_stripe_server.faults.clear()
    return fake_stripe_server


@pytest.fixture
def settings(make_settings: Callable[..., Settings], fake_stripe: FakeStripe) -> Settings:
    return make_settings(
        stripe_secret_key=SECRET_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=fake_stripe.url,
        stripe_price_pro=PRICE_PRO,
        stripe_price_team=PRICE_TEAM,
        stripe_rate_limit_backoff_s=0.01,
        **GENEROUS_LIMITS,
    )
