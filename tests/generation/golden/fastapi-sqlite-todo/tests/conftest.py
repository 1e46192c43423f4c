"""A fresh app and database for every test, served through FastAPI's TestClient (the app's
lifespan runs: `alembic upgrade head` builds the schema)."""

import os
import tempfile
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The run ends by naming the database the tests ran on."""
    url = os.environ.get("TEST_DATABASE_URL")
    where = f"{url.split('://')[0]} (TEST_DATABASE_URL)" if url else "SQLite (temporary files)"
    terminalreporter.write_line(f"database: {where}")


@pytest.fixture
def settings() -> Iterator[Settings]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield Settings(environment="test", database_url=url)
        from sqlalchemy import text

        from app.db import Base, Database

        database = Database(url)
        Base.metadata.drop_all(database.engine)
        with database.engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        database.close()
        return
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/test-{uuid.uuid4().hex[:8]}.db"
        yield Settings(environment="test", database_url=url)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def auth() -> dict[str, str]:
    """No accounts in this API: requests need no headers."""
    return {}
