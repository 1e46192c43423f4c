"""Fixtures: real redis-server and MongoDB-wire servers, the app with its lifespan, a client."""

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import redis as redis_sync
from fastapi import FastAPI
from pymongo import MongoClient

from backend.config import Settings
from backend.main import create_app
from tests.support.app_client import open_client
from tests.support.servers import MongoServer, RedisServer
from tests.support.settings import TEST_JWT_SECRET


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def mongo_url() -> Iterator[str]:
    """`MONGODB_TEST_URL` (any MongoDB, e.g. a real mongod), else one `secantusd-py` per run."""
    if url := os.environ.get("MONGODB_TEST_URL"):
        yield url
        return
    server = MongoServer().start()
    yield server.url
    server.close()


@pytest.fixture
def database_names(mongo_url: str) -> Iterator[list[str]]:
    """The databases this test's apps used; dropped afterwards."""
    names: list[str] = []
    yield names
    if names:
        # Bounded: a drop stuck behind a server-side lock must not hang the whole suite.
        with MongoClient(
            mongo_url, serverSelectionTimeoutMS=5000, socketTimeoutMS=120_000
        ) as client:
            for name in names:
                client.drop_database(name)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    with redis_sync.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def make_settings(
    redis_url: str, mongo_url: str, database_names: list[str]
) -> Callable[..., Settings]:
    """Settings for a test app: real Redis, a fresh database on the test MongoDB server."""

    def make(**overrides: Any) -> Settings:
        database = f"test_{uuid.uuid4().hex[:16]}"
        database_names.append(database)
        values: dict[str, Any] = {
            "environment": "test",
            "mongodb_url": mongo_url,
            "mongodb_db": database,
            "redis_url": redis_url,
            "jwt_secret": TEST_JWT_SECRET,
            "log_level": "warning",
            "frontend_origins": ["http://localhost:5173"],
            # Off unless a suite is about it (tests/generation/test_verified_jobs.py): a
            # verified fullstack job runs its project's tests, seconds each.
            "sandbox_command": "",
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
