"""A fresh app and database for every test, served through FastAPI's TestClient (the app's
lifespan runs: indexes are created)."""

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The run ends by naming the database the tests ran on."""
    url = os.environ.get("MONGODB_URL", "mongodb://localhost:27017")
    terminalreporter.write_line(f"database: MongoDB at {url.rpartition('@')[2]}")


@pytest.fixture
def settings() -> Iterator[Settings]:
    url = os.environ.get("MONGODB_URL", "mongodb://localhost:27017")
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield Settings(environment="test", mongodb_url=url, mongodb_db=name)
    from pymongo import MongoClient

    with MongoClient(url) as client:
        client.drop_database(name)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def sign_in(client: TestClient) -> Callable[[str], dict[str, str]]:
    """Registers an account and returns its `Authorization` header."""

    def sign_in(email: str) -> dict[str, str]:
        account = {"email": email, "password": "correct-horse-9"}
        assert client.post("/auth/register", json=account).status_code == 201
        token = client.post("/auth/login", json=account).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    return sign_in


@pytest.fixture
def auth(sign_in: Callable[[str], dict[str, str]]) -> dict[str, str]:
    """Headers of a signed-in user."""
    return sign_in("tester@example.com")


@pytest.fixture
def other_auth(sign_in: Callable[[str], dict[str, str]]) -> dict[str, str]:
    """Headers of a second account."""
    return sign_in("other@example.com")
