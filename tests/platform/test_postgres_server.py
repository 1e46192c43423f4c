"""The suite's PostgreSQL harness: Debian's server in a throw-away cluster, a database each."""

from collections.abc import Iterator

import pytest

from tests.support.postgres import PostgresServer


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.close()


def test_each_database_is_fresh_and_its_own(postgres: PostgresServer) -> None:
    first = postgres.create_database("first")
    postgres.create_database("second")

    postgres.psql(
        "first",
        "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL);"
        "INSERT INTO notes (body) VALUES ('kept');",
    )

    assert first == f"postgresql://postgres@127.0.0.1:{postgres.port}/first"
    assert postgres.psql("first", "SELECT body FROM notes") == "kept"
    assert postgres.psql("second", "SELECT 1") == "1"
    assert postgres.psql("second", "SELECT to_regclass('notes') IS NULL") == "t"


def test_a_script_stops_at_its_first_error(postgres: PostgresServer) -> None:
    postgres.create_database("broken")

    with pytest.raises(RuntimeError, match="division by zero"):
        postgres.psql("broken", "SELECT 1 / 0; CREATE TABLE after_the_error (id int);")

    assert postgres.psql("broken", "SELECT to_regclass('after_the_error') IS NULL") == "t"
