"""The generated code is the product: generated projects install and pass their own tests.

One virtualenv per run gets the pinned requirements of every variant (from PyPI, as a user
would install them); each variant then runs its own pytest suite — sqlite in temporary
files, postgresql on a database of the suite's own Debian PostgreSQL, mongodb against this
suite's MongoDB-wire server."""

import subprocess
from pathlib import Path

import pytest

from backend.generation.fullstack.generator import generate
from schemas.generation_schemas import FullstackCreate
from tests.support.specs import ALL_FEATURES, rich_spec, write_project

pytestmark = pytest.mark.generated_projects


def run_tests(python: Path, project: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=project, capture_output=True, text=True, timeout=600,
        env={"PATH": "/usr/bin:/bin", **env},
    )  # fmt: skip


@pytest.mark.parametrize("features", [ALL_FEATURES, []], ids=["all-features", "no-features"])
def test_the_sqlite_project_passes_its_own_tests(
    project_python: Path, tmp_path: Path, features: list[str]
) -> None:
    project = write_project(generate(rich_spec("sqlite", features)), tmp_path)
    result = run_tests(project_python, project)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
    assert "database: SQLite" in result.stdout


@pytest.mark.parametrize("features", [ALL_FEATURES, ["pagination"]], ids=["all", "pagination"])
def test_the_mongodb_project_passes_its_own_tests_on_a_real_server(
    project_python: Path, tmp_path: Path, mongo_url: str, features: list[str]
) -> None:
    project = write_project(generate(rich_spec("mongodb", features)), tmp_path)
    result = run_tests(project_python, project, MONGODB_URL=mongo_url)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


@pytest.mark.parametrize("features", [ALL_FEATURES, []], ids=["all-features", "no-features"])
def test_the_postgresql_project_passes_its_own_tests_on_a_real_server(
    project_python: Path, tmp_path: Path, postgres_url: str, features: list[str]
) -> None:
    project = write_project(generate(rich_spec("postgresql", features)), tmp_path)
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)
    result = run_tests(project_python, project, TEST_DATABASE_URL=url)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
    assert "database: postgresql+psycopg (TEST_DATABASE_URL)" in result.stdout


DDL = """
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

import app.models  # noqa: F401
from app.db import Base
from app.main import create_app

create_app()
for table in Base.metadata.sorted_tables:
    print(CreateTable(table).compile(dialect=postgresql.dialect()))
"""


def test_the_postgresql_project_imports_and_its_ddl_compiles(
    project_python: Path, tmp_path: Path
) -> None:
    project = write_project(generate(rich_spec("postgresql", ALL_FEATURES)), tmp_path)
    result = subprocess.run(
        [str(project_python), "-c", DDL], cwd=project, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ddl = result.stdout
    for table in ("users", "orders", "groups", "order_items", "auth_users"):
        assert f"CREATE TABLE {table} (" in ddl
    assert '"order" BIGINT' in ddl and '"select" VARCHAR(255)' in ddl  # reserved: quoted
    assert "owner_id INTEGER NOT NULL" in ddl and "REFERENCES auth_users (id)" in ddl
    assert "TIMESTAMP WITH TIME ZONE" in ddl and "UUID" in ddl
    assert "psycopg" in (project / "requirements.txt").read_text()


def test_the_same_spec_gives_byte_identical_output() -> None:
    spec = rich_spec("sqlite", ALL_FEATURES)
    assert generate(spec) == generate(FullstackCreate.model_validate(spec.model_dump()))


@pytest.mark.parametrize("feature", ALL_FEATURES)
def test_every_feature_changes_the_output(feature: str) -> None:
    without = generate(rich_spec("sqlite", []))
    with_it = generate(rich_spec("sqlite", [feature]))
    changed = {p for p in with_it if with_it[p] != without.get(p)}
    assert changed, feature
    assert any(p.startswith("tests/") for p in changed), f"{feature} is not tested"


def test_generated_python_is_valid_syntax() -> None:
    for database in ("sqlite", "mongodb", "postgresql"):
        for path, content in generate(rich_spec(database, ALL_FEATURES)).items():
            if path.endswith(".py"):
                compile(content, path, "exec")
