"""One app and database per test run, served through FastAPI's TestClient; its lifespan runs
once (`alembic upgrade head` builds the schema). Every test starts from empty tables:
building an app and a database for each test would cost more than most tests do."""

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The run ends by naming the database the tests ran on."""
    url = os.environ.get("TEST_DATABASE_URL")
    where = f"{url.split('://')[0]} (TEST_DATABASE_URL)" if url else "SQLite (temporary files)"
    terminalreporter.write_line(f"database: {where}")


@contextmanager
def new_database() -> Iterator[Settings]:
    """Settings naming a database of this run's own, removed afterwards."""
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


@pytest.fixture(scope="session")
def app_client() -> Iterator[TestClient]:
    """The run's app on the run's database."""
    with new_database() as settings, TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def client(app_client: TestClient) -> TestClient:
    """The run's app, with every table emptied."""
    from app.db import Base

    with app_client.app.state.database.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    return app_client


@pytest.fixture
def auth() -> dict[str, str]:
    """No accounts in this API: requests need no headers."""
    return {}
