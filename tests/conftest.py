"""Fixtures: a real redis-server for the session, the app with its lifespan, an HTTP client."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis as redis_sync
from fastapi import FastAPI

from backend.config import Settings
from backend.main import create_app
from tests.servers import RedisServer

TEST_JWT_SECRET = "test-secret-test-secret-test-secret-0123"
# For suites that are not about rate limits.
GENEROUS_LIMITS = {
    f"rate_limit_{name}": "100000/minute"
    for name in (
        "auth_login", "auth_register", "auth_password_forgot", "auth_verify_request",
        "default_user", "default_anonymous", "stripe_webhook",
    )
}  # fmt: skip


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    with redis_sync.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def make_settings(redis_url: str) -> Callable[..., Settings]:
    """Settings for a test app: real Redis, embedded MongoDB (fresh per app)."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "redis_url": redis_url,
            "jwt_secret": TEST_JWT_SECRET,
            "log_level": "warning",
            "frontend_origins": ["http://localhost:5173"],
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@asynccontextmanager
async def open_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app, with the app's lifespan running around it."""
    async with app.router.lifespan_context(app):
        if app.state.settings.mongodb_url is None:
            # The embedded engine is ready at once; wait so no test races start-up.
            await asyncio.wait_for(app.state.resources.mongo.ready.wait(), 10)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with open_client(app) as c:
        yield c


@pytest.fixture
async def fresh_minute_window() -> None:
    """Rate-limit windows are aligned to the clock: keep a test off a minute boundary."""
    into_minute = time.time() % 60
    if into_minute > 55:
        await asyncio.sleep(60 - into_minute + 0.05)
