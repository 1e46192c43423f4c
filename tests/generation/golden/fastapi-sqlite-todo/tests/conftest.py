"""A fresh app and database for every test, served through FastAPI's TestClient."""

import os
import tempfile
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app


@pytest.fixture
def settings() -> Iterator[Settings]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield Settings(database_url=url)
        from app.db import Base, Database

        database = Database(url)
        Base.metadata.drop_all(database.engine)
        database.close()
        return
    with tempfile.TemporaryDirectory() as directory:
        yield Settings(database_url=f"sqlite:///{directory}/test-{uuid.uuid4().hex[:8]}.db")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def auth() -> dict[str, str]:
    """No accounts in this API: writes need no headers."""
    return {}
