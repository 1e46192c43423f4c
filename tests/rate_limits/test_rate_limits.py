"""Rate limits through HTTP, on a real redis-server shared by app instances."""

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from backend.config import Settings
from backend.main import create_app
from backend.security import TokenSigner
from tests.support.app_client import open_client
from tests.support.servers import RedisServer
from tests.support.settings import TEST_JWT_SECRET

pytestmark = pytest.mark.usefixtures("fresh_minute_window")

LIMITED = "/api/v2"


def token_for(user_id: str) -> dict[str, str]:
    return {"authorization": f"Bearer {TokenSigner(TEST_JWT_SECRET, 900).issue(user_id, 0)}"}


@pytest.fixture
def limited_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        rate_limit_default_anonymous="3/minute",
        rate_limit_default_user="2/minute",
        redis_breaker_cooldown_s=0.2,
    )


@pytest.fixture
async def limited(limited_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with open_client(create_app(limited_settings)) as client:
        yield client


async def test_over_the_limit_is_429_with_headers(limited: httpx.AsyncClient) -> None:
    remaining = []
    for _ in range(3):
        response = await limited.get(LIMITED)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit"] == "3"
        assert 1 <= int(response.headers["x-ratelimit-reset"]) <= 60
        remaining.append(response.headers["x-ratelimit-remaining"])
    assert remaining == ["2", "1", "0"]

    refused = await limited.get(LIMITED)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["x-ratelimit-limit"] == "3"


async def test_unlimited_route_sends_no_rate_limit_headers(limited: httpx.AsyncClient) -> None:
    response = await limited.get("/healthz")
    assert "x-ratelimit-limit" not in response.headers


async def test_two_app_instances_share_counts(limited_settings: Settings) -> None:
    async with (
        open_client(create_app(limited_settings)) as first,
        open_client(create_app(limited_settings)) as second,
    ):
        assert (await first.get(LIMITED)).status_code == 200
        assert (await second.get(LIMITED)).status_code == 200
        assert (await first.get(LIMITED)).status_code == 200
        assert (await second.get(LIMITED)).status_code == 429


async def test_users_and_addresses_have_separate_budgets(limited: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert (await limited.get(LIMITED)).status_code == 200
    assert (await limited.get(LIMITED)).status_code == 429

    alice, bob = token_for("alice"), token_for("bob")
    for _ in range(2):
        response = await limited.get(LIMITED, headers=alice)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit"] == "2"
    assert (await limited.get(LIMITED, headers=alice)).status_code == 429
    assert (await limited.get(LIMITED, headers=bob)).status_code == 200


async def test_forged_token_counts_as_anonymous(limited: httpx.AsyncClient) -> None:
    forged = TokenSigner("another-secret-another-secret-another-1", 900).issue("alice", 0)
    response = await limited.get(LIMITED, headers={"authorization": f"Bearer {forged}"})
    assert response.headers["x-ratelimit-limit"] == "3"


async def test_forged_forwarded_for_from_untrusted_peer_is_ignored(
    limited: httpx.AsyncClient,
) -> None:
    for n in range(3):
        response = await limited.get(LIMITED, headers={"x-forwarded-for": f"198.51.100.{n}"})
        assert response.status_code == 200
    spoofed = await limited.get(LIMITED, headers={"x-forwarded-for": "198.51.100.99"})
    assert spoofed.status_code == 429


async def test_forwarded_for_from_trusted_proxy_keys_by_client(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        rate_limit_default_anonymous="1/minute", trusted_proxies=["203.0.113.0/24"]
    )
    async with open_client(create_app(settings)) as client:
        first = await client.get(LIMITED, headers={"x-forwarded-for": "198.51.100.1"})
        other = await client.get(LIMITED, headers={"x-forwarded-for": "198.51.100.2"})
        again = await client.get(LIMITED, headers={"x-forwarded-for": "198.51.100.1"})
    assert [first.status_code, other.status_code, again.status_code] == [200, 200, 429]


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_redis_outage_falls_back_per_process_and_recovers(
    make_settings: Callable[..., Settings],
) -> None:
    redis = RedisServer().start()
    settings = make_settings(
        redis_url=redis.url, rate_limit_default_anonymous="3/minute", redis_breaker_cooldown_s=0.2
    )
    try:
        async with (
            open_client(create_app(settings)) as first,
            open_client(create_app(settings)) as second,
        ):
            assert (await first.get(LIMITED)).status_code == 200  # shared count: 1

            redis.stop()
            # Served and limited per process: `first` has its own budget of 3 now.
            local = [(await first.get(LIMITED)).status_code for _ in range(4)]
            assert local == [200, 200, 200, 429]
            text = (await first.get("/metrics")).text
            assert metric(text, "rate_limit_local_hits_total") >= 4
            assert metric(text, 'redis_degraded{component="rate_limit"}') == 1

            redis.start()  # a new, empty server
            await asyncio.sleep(0.3)  # past the breaker's cooldown
            statuses = [
                (await client.get(LIMITED)).status_code for client in (first, first, second, second)
            ]
            # Shared again: the two instances together get 3.
            assert statuses == [200, 200, 200, 429]
            text = (await first.get("/metrics")).text
            assert metric(text, 'redis_degraded{component="rate_limit"}') == 0
    finally:
        redis.close()


async def test_without_redis_limits_per_process(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(redis_url=None, rate_limit_default_anonymous="2/minute")
    async with open_client(create_app(settings)) as client:
        statuses = [(await client.get(LIMITED)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_limited_routes_document_429(app: FastAPI) -> None:
    operation = app.openapi()["paths"]["/api/v2"]["get"]
    assert "429" in operation["responses"]
    assert "Retry-After" in operation["responses"]["429"]["headers"]
    assert "DEFAULT_ANONYMOUS" in operation["description"]


def test_bad_rate_limit_setting_is_refused(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ValueError, match="not a rate limit"):
        make_settings(rate_limit_auth_login="lots")


async def test_metrics_count_rejections(limited: httpx.AsyncClient) -> None:
    for _ in range(4):
        await limited.get(LIMITED)
    text = (await limited.get("/metrics")).text
    assert 'rate_limit_rejections_total{limit="default_anonymous"} 1.0' in text
