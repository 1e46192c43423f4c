"""Generated FastAPI projects used the way their users use them: started with uvicorn in
production mode from the pinned virtualenv, driven over HTTP, and migrated after the spec
changed. Real servers only: SQLite files, Debian's PostgreSQL and this suite's MongoDB-wire
server."""

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from pymongo import MongoClient

from backend.generation.fullstack.generator import generate
from schemas.generation_schemas import FullstackCreate
from tests.support.servers import free_port
from tests.support.specs import ALL_FEATURES, rich_spec, write_project

SECRET = "a-secret-of-this-deployment-only-0123456789"
MISSING_ACCOUNT = {"sqlite": "2147483647", "postgresql": "2147483647", "mongodb": "0" * 24}
BAD_ID = {"sqlite": "2147483648", "postgresql": "2147483648", "mongodb": "x" * 24}
ORDER = {"total": 9.5, "note": "Blue widget", "select": "express"}


def token_for(sub: str, secret: str = SECRET) -> dict[str, str]:
    """An HS256 bearer token signed with the deployment's secret, for any `sub`."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    claims = {"sub": sub, "exp": int(time.time()) + 300}
    signing = part(b'{"alg":"HS256","typ":"JWT"}') + "." + part(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return {"Authorization": f"Bearer {signing}.{part(signature)}"}


def environment(database: str, folder: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """A production deployment's environment, on a fresh database of its own."""
    env = {"PATH": "/usr/bin:/bin", "ENVIRONMENT": "production", "JWT_SECRET": SECRET}
    if database == "mongodb":
        name = f"served_{uuid.uuid4().hex[:12]}"
        request.getfixturevalue("mongo_databases").append(name)
        env |= {"MONGODB_URL": request.getfixturevalue("mongo_url"), "MONGODB_DB": name}
    elif database == "postgresql":
        url = request.getfixturevalue("postgres_url")
        env["DATABASE_URL"] = url.replace("postgresql://", "postgresql+psycopg://", 1)
    else:
        env["DATABASE_URL"] = f"sqlite:///{folder}/app.db"
    return env


def run(python: Path, project: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(python), *args], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


@contextmanager
def served(python: Path, project: Path, env: dict[str, str]) -> Iterator[httpx.Client]:
    """The project under uvicorn on a free loopback port, and a client for it."""
    port = free_port()
    log = (project / "server.log").open("w+")
    process = subprocess.Popen(
        [str(python), "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, (project / "server.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the app did not start in 60 s"
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield client
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def sign_in(client: httpx.Client, email: str, *, register: bool = True) -> dict[str, str]:
    account = {"email": email, "password": "correct-horse-9"}
    if register:
        assert client.post("/auth/register", json=account).status_code == 201
    login = client.post("/auth/login", json=account)
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


@pytest.fixture
def mongo_databases(mongo_url: str) -> Iterator[list[str]]:
    """The databases this test's deployments used; dropped afterwards."""
    names: list[str] = []
    yield names
    with MongoClient(mongo_url, serverSelectionTimeoutMS=5000) as client:
        for name in names:
            client.drop_database(name)


def prepared(
    database: str, spec: FullstackCreate, folder: Path, python: Path, env: dict[str, str]
) -> Path:
    """The project written and, on SQL, its database migrated as the README says."""
    project = write_project(generate(spec), folder / "project")
    if database != "mongodb":
        run(python, project, env, "-m", "alembic", "upgrade", "head")
    return project


@pytest.mark.generated_projects
@pytest.mark.parametrize("database", ["sqlite", "postgresql", "mongodb"])
def test_a_served_project_round_trips_and_refuses_what_it_should(
    database: str, project_python: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = environment(database, tmp_path, request)
    project = prepared(database, rich_spec(database, ALL_FEATURES), tmp_path, project_python, env)
    with served(project_python, project, env) as client:
        alice, bob = sign_in(client, "alice@example.com"), sign_in(client, "bob@example.com")
        created = client.post("/orders", json=ORDER, headers=alice)
        assert created.status_code == 201, created.text
        order = created.json()
        url = f"/orders/{order['id']}"
        assert client.get(url, headers=alice).json() == order
        patched = client.patch(url, json={"note": "Red widget"}, headers=alice)
        assert patched.status_code == 200 and patched.json()["note"] == "Red widget"
        newer = client.post("/orders", json={"total": 1.0, "note": "gadget"}, headers=alice)
        assert newer.status_code == 201

        found = client.get("/orders", params={"q": "WIDGET"}, headers=alice).json()
        assert [row["id"] for row in found["data"]] == [order["id"]]
        page = client.get("/orders", params={"page": 2, "limit": 1}, headers=alice).json()
        assert page["meta"] == {"page": 2, "limit": 1, "total": 2, "total_pages": 2}
        assert [row["id"] for row in page["data"]] == [order["id"]]  # newest first

        for response in (
            client.get(url, headers=bob),
            client.patch(url, json={"note": "mine now"}, headers=bob),
            client.delete(url, headers=bob),
        ):
            assert response.status_code == 404
            assert response.json()["code"] == "not_found"
        assert client.get("/orders", headers=bob).json()["meta"]["total"] == 0

        forged = client.post("/orders", json=ORDER, headers=token_for(MISSING_ACCOUNT[database]))
        assert forged.status_code == 401 and forged.json()["code"] == "unauthorized"
        other_secret = token_for(order["id"], secret="x" * 40)
        assert client.get("/orders", headers=other_secret).status_code == 401

        huge = client.get("/orders", params={"page": 10**18}, headers=alice)
        assert huge.status_code == 422 and huge.json()["code"] == "validation_error"
        bad_id = client.get(f"/orders/{BAD_ID[database]}", headers=alice)
        assert bad_id.status_code == 422 and bad_id.json()["code"] == "validation_error"
        unknown = client.get("/no-such-route")
        assert unknown.status_code == 404
        assert unknown.json() == {"code": "not_found", "detail": "Not Found"}

        assert client.delete(url, headers=alice).status_code == 204
        assert client.get(url, headers=alice).status_code == 404
        assert client.get(url, headers=bob).status_code == 404


@pytest.mark.generated_projects
@pytest.mark.parametrize("database", ["sqlite", "mongodb"])
def test_production_refuses_to_start_without_its_own_secret(
    database: str, project_python: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    project = write_project(generate(rich_spec(database, ALL_FEATURES)), tmp_path)
    env = environment(database, tmp_path, request)
    for secret in (None, "short"):
        env.pop("JWT_SECRET")
        if secret is not None:
            env["JWT_SECRET"] = secret
        result = subprocess.run(
            [str(project_python), "-m", "uvicorn", "app.main:app", "--port", str(free_port())],
            cwd=project, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode != 0
        assert "Set JWT_SECRET" in result.stderr
        env["JWT_SECRET"] = SECRET


def with_a_new_field(spec: FullstackCreate) -> FullstackCreate:
    data = spec.model_dump()
    order = next(model for model in data["data_models"] if model["name"] == "Order")
    order["fields"].append({"name": "coupon", "type": "string", "required": False})
    return FullstackCreate.model_validate(data)


@pytest.mark.generated_projects
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_field_added_to_the_spec_migrates_an_existing_database(
    database: str, project_python: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = environment(database, tmp_path, request)
    spec = rich_spec(database, ALL_FEATURES)
    project = prepared(database, spec, tmp_path, project_python, env)
    with served(project_python, project, env) as client:
        alice = sign_in(client, "alice@example.com")
        order = client.post("/orders", json=ORDER, headers=alice).json()

    # Regenerated as the README says: the new code, the existing revisions kept as they are.
    write_project(generate(with_a_new_field(spec)), project, keep=("migrations/versions/",))
    run(project_python, project, env, "-m", "alembic", "revision", "--autogenerate", "-m", "coupon")
    revisions = set((project / "migrations" / "versions").glob("*.py"))
    new = [path for path in revisions if path.name != "0001_initial.py"]
    assert len(new) == 1
    upgrade = new[0].read_text().split("def downgrade")[0]
    assert "add_column" in upgrade and "coupon" in upgrade and "drop" not in upgrade
    run(project_python, project, env, "-m", "alembic", "upgrade", "head")
    assert "No new upgrade operations" in run(
        project_python, project, env, "-m", "alembic", "check"
    )

    with served(project_python, project, env) as client:
        alice = sign_in(client, "alice@example.com", register=False)
        url = f"/orders/{order['id']}"
        assert client.get(url, headers=alice).json() == {**order, "coupon": None}
        patched = client.patch(url, json={"coupon": "SAVE10"}, headers=alice)
        assert patched.status_code == 200 and patched.json()["coupon"] == "SAVE10"
        created = client.post("/orders", json={**ORDER, "coupon": "NEW"}, headers=alice)
        assert created.status_code == 201 and created.json()["coupon"] == "NEW"


@pytest.mark.parametrize("database", ["sqlite", "mongodb", "postgresql"])
@pytest.mark.parametrize("features", [ALL_FEATURES, [], ["search"]], ids=["all", "none", "search"])
def test_generated_projects_are_ruff_clean(
    database: str, features: list[str], tmp_path: Path
) -> None:
    project = write_project(generate(rich_spec(database, features)), tmp_path)
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(
        [str(ruff), "check", "--no-cache", "--output-format", "concise", "."],
        cwd=project, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert (project / "ruff.toml").exists()


@pytest.mark.parametrize("database", ["sqlite", "mongodb", "postgresql"])
def test_no_secret_ships_with_a_project(database: str) -> None:
    files = generate(rich_spec(database, ALL_FEATURES))
    assert "JWT_SECRET=\n" in files[".env.example"]
    assert 'jwt_secret: SecretStr = SecretStr("")' in files["app/config.py"]
    assert 'environment == "production"' in files["app/config.py"]
