"""One app and database per test run, served through FastAPI's TestClient; its lifespan runs
once (indexes are created). Every test starts from empty collections:
building an app and a database for each test would cost more than most tests do."""

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app

PASSWORD = "correct-horse-9"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The run ends by naming the database the tests ran on."""
    url = os.environ.get("MONGODB_URL", "mongodb://localhost:27017")
    terminalreporter.write_line(f"database: MongoDB at {url.rpartition('@')[2]}")


@contextmanager
def new_database() -> Iterator[Settings]:
    """Settings naming a database of this run's own, removed afterwards."""
    url = os.environ.get("MONGODB_URL", "mongodb://localhost:27017")
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield Settings(environment="test", mongodb_url=url, mongodb_db=name)
    from pymongo import MongoClient

    with MongoClient(url) as client:
        client.drop_database(name)


@pytest.fixture(scope="session")
def app_client() -> Iterator[TestClient]:
    """The run's app on the run's database."""
    with new_database() as settings, TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def client(app_client: TestClient) -> TestClient:
    """The run's app, with every collection emptied (indexes kept)."""
    db = app_client.app.state.database.db
    for name in db.list_collection_names():
        db[name].delete_many({})
    return app_client


@pytest.fixture(scope="session")
def password_hash() -> str:
    """The fixtures' password, hashed once per run: scrypt is slow on purpose."""
    from app.auth import hash_password

    return hash_password(PASSWORD)


@pytest.fixture
def sign_in(client: TestClient, password_hash: str) -> Callable[[str], dict[str, str]]:
    """Stores an account (registering over HTTP is `test_auth.py`'s), logs it in over HTTP and
    returns its `Authorization` header."""
    from app.repositories.auth_user import AuthUserRepository

    def sign_in(email: str) -> dict[str, str]:
        AuthUserRepository(client.app.state.database.db).create(email, password_hash)
        response = client.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return sign_in


@pytest.fixture
def auth(sign_in: Callable[[str], dict[str, str]]) -> dict[str, str]:
    """Headers of a signed-in user."""
    return sign_in("tester@example.com")


@pytest.fixture
def other_auth(sign_in: Callable[[str], dict[str, str]]) -> dict[str, str]:
    """Headers of a second account."""
    return sign_in("other@example.com")
