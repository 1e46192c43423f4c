"""A fresh app and database for every test, served through FastAPI's TestClient."""

import os
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app


@pytest.fixture
def settings() -> Iterator[Settings]:
    url = os.environ.get("MONGODB_URL", "mongodb://localhost:27017")
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield Settings(mongodb_url=url, mongodb_db=name)
    from pymongo import MongoClient

    with MongoClient(url) as client:
        client.drop_database(name)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def auth(client: TestClient) -> dict[str, str]:
    """Headers of a signed-in user."""
    account = {"email": "tester@example.com", "password": "correct-horse-9"}
    assert client.post("/auth/register", json=account).status_code == 201
    token = client.post("/auth/login", json=account).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}
