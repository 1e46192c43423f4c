"""Generated Next.js projects, used as their users use them. For each database, the rich spec
(every field type, every feature) and a minimal one (the same models, no feature) are
installed from a clean folder with their pinned packages, type-checked (`tsc`), linted, run
through their own vitest suite against the real database, migrated, built (`next build`),
started (`next start` on a loopback port) and driven over HTTP.

Slow, so marked `generated_projects`: about 7 minutes for the six variants on 2 cores, builds
one after another — the first variant 2.5 minutes (an empty npm cache; better-sqlite3 compiles
itself, no prebuilt binary can be downloaded here), each other one 40-60 s. One npm cache
serves every variant; a database's second variant starts from a copy of the first one's
`node_modules`."""

import base64
import hashlib
import hmac
import json
import os
import secrets
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from backend.generation.fullstack.generator import FIELD_TYPES, generate
from schemas.generation_schemas import FullstackCreate
from tests.support.node import node_line, with_node
from tests.support.servers import free_port, wait_for_port
from tests.support.specs import ALL_FEATURES, TYPES, rich_spec

pytestmark = [pytest.mark.generated_projects, pytest.mark.timeout(1800)]


@dataclass(frozen=True)
class Variant:
    database: str
    kind: str  # "rich": every field type and feature; "minimal": the same models, no feature
    node: int | None = None  # a Node release line other than the machine's (Debian's 20)

    @property
    def id(self) -> str:
        return f"{self.database}-{self.kind}" + (f"-node{self.node}" if self.node else "")


# The rich variants (which have `auth`) come first, so the auth-only tests' variants are a
# prefix of everyone's: pytest then builds each project once, whichever test asks. The other
# LTS lines the projects declare in `engines` run the sqlite project, whose driver is the
# one native module (compiled per Node ABI).
RICH = [Variant(db, "rich") for db in ("sqlite", "postgresql", "mongodb")]
OTHER_NODES = [Variant("sqlite", "rich", node) for node in (22, 24, 26)]
VARIANTS = [
    *RICH,
    *OTHER_NODES,
    *(Variant(db, "minimal") for db in ("sqlite", "postgresql", "mongodb")),
]
WITH_AUTH = [*RICH, *OTHER_NODES]
with_auth = pytest.mark.parametrize("project", WITH_AUTH, ids=lambda v: v.id, indirect=True)
PASSWORD = "correct horse battery staple"
JWT_SECRET = secrets.token_hex(32)
# The rich spec's `User` has one field of every type: what it sends and what it reads back.
SAMPLE = {f"{t}_value": FIELD_TYPES[t]["sample"] for t in TYPES}
SAMPLE_READ = {**SAMPLE, "datetime_value": "2024-01-02T03:04:05.000Z"}


@dataclass
class Project:
    database: str
    features: list[str]
    root: Path
    env: dict[str, str]
    client: httpx.Client
    checks: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    @property
    def auth(self) -> bool:
        return "auth" in self.features

    def headers(self) -> dict[str, str]:
        """A new account's bearer header (none without `auth`)."""
        return bearer(sign_up(self.client)) if self.auth else {}


def nextjs(database: str, features: list[str]) -> dict[str, str]:
    spec = rich_spec(database, features).model_dump()
    return generate(FullstackCreate.model_validate({**spec, "framework": "nextjs"}))


def run(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def must(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, f"{done.args}:\n{done.stdout[-6000:]}\n{done.stderr[-4000:]}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_up(client: httpx.Client) -> str:
    email = f"user-{uuid.uuid4().hex}@example.com"
    body = {"email": email, "password": PASSWORD}
    assert client.post("/api/auth/register", json=body).status_code == 201
    answer = client.post("/api/auth/login", json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def hs256(claims: dict[str, Any], secret: str) -> str:
    """A JWT signed with `secret`: what anyone holding the server's secret could forge."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = part(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{part(signature)}"


def base_env(npm_cache: Path) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "npm_config_cache": str(npm_cache),
        "npm_config_update_notifier": "false",
        "NEXT_TELEMETRY_DISABLED": "1",
        "CI": "1",
    }
    # better-sqlite3 compiles itself where no prebuilt binary can be downloaded: against
    # Debian's Node headers, not ones node-gyp would download.
    if Path("/usr/include/node/node.h").exists():
        env["npm_config_nodedir"] = "/usr"
    return env


@pytest.fixture(scope="module")
def npm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("npm-cache")


@pytest.fixture(scope="module")
def installed() -> dict[str, Path]:
    """Per database, the folder whose `node_modules` the next variant starts from."""
    return {}


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda v: v.id)
def project(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    npm_cache: Path,
    installed: dict[str, Path],
) -> Iterator[Project]:
    variant: Variant = request.param
    database, kind = variant.database, variant.kind
    features = ALL_FEATURES if kind == "rich" else []
    root = tmp_path_factory.mktemp(f"nextjs-{variant.id}")
    for path, content in nextjs(database, features).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(content, encoding="utf-8")
    env = base_env(npm_cache)
    if variant.node:
        env = with_node(env, node_line(variant.node))
    name = f"nextjs_{kind}_{uuid.uuid4().hex[:8]}"
    drop = prepare_database(request, database, name, root, env)
    try:
        # Each Node line compiles its own better-sqlite3: it shares no node_modules.
        yield from serve(database, features, root, env, installed if not variant.node else {})
    finally:
        drop()


def prepare_database(
    request: pytest.FixtureRequest, database: str, name: str, root: Path, env: dict[str, str]
) -> Any:
    """Points `env` at a new, empty database; returns what drops it."""
    if database == "sqlite":
        env["SQLITE_PATH"] = str(root / "app.db")
        return lambda: None
    if database == "mongodb":
        url = request.getfixturevalue("mongo_url")
        env.update(MONGODB_URL=url, MONGODB_DB=name)

        def drop_mongo() -> None:
            with MongoClient(url, serverSelectionTimeoutMS=5000) as client:
                client.drop_database(name)

        return drop_mongo
    server = request.getfixturevalue("postgres")  # one cluster per run; a database per variant
    env["DATABASE_URL"] = server.create_database(name)
    return lambda: server.drop_database(name)


def serve(
    database: str, features: list[str], root: Path, env: dict[str, str], installed: dict[str, Path]
) -> Iterator[Project]:
    """Install, check, migrate, build, start; the running project."""
    if database in installed:
        subprocess.run(
            ["cp", "-a", str(installed[database] / "node_modules"), str(root)], check=True
        )
    npm = ["npm", "--no-audit", "--no-fund", "--loglevel=error"]
    must(run([*npm, "install"], root, env, 900))
    installed.setdefault(database, root)
    checks = {
        script: run([*npm, "run", "-s", script], root, env, 300)
        for script in ("typecheck", "lint", "test")
    }
    if database != "mongodb":
        must(run([*npm, "run", "-s", "migrate"], root, env, 120))
    must(run([*npm, "run", "-s", "build"], root, env, 900))
    port = free_port()
    log = (root / "next-start.log").open("w")
    server = subprocess.Popen(
        [str(root / "node_modules" / ".bin" / "next"), "start", "--port", str(port),
         "--hostname", "127.0.0.1"],
        # A time zone far from UTC: what the server reads back must not depend on it.
        cwd=root, env={**env, "JWT_SECRET": JWT_SECRET, "TZ": "Asia/Tokyo"}, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield Project(database, features, root, env, client, checks)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        log.close()


def test_the_project_type_checks(project: Project) -> None:
    must(project.checks["typecheck"])


def test_the_project_passes_its_linter(project: Project) -> None:
    must(project.checks["lint"])


def test_the_project_passes_its_own_tests_on_the_real_database(project: Project) -> None:
    done = project.checks["test"]
    must(done)
    assert " passed" in done.stdout and " failed" not in done.stdout, done.stdout[-3000:]


def test_a_record_goes_through_create_read_update_delete(project: Project) -> None:
    client, headers = project.client, project.headers()
    created = client.post("/api/users", json=SAMPLE, headers=headers)
    assert created.status_code == 201, created.text
    record = created.json()
    assert {k: record[k] for k in SAMPLE_READ} == SAMPLE_READ  # types survive the database
    url = f"/api/users/{record['id']}"

    read = client.get(url, headers=headers)
    assert read.status_code == 200, read.text
    assert read.json() == record

    changes = {"string_value": "changed", "integer_value": 9}
    patched = client.patch(url, json=changes, headers=headers)
    assert patched.status_code == 200, patched.text
    expected = {**record, **changes}
    assert all(patched.json()[k] == v for k, v in expected.items() if k != "updated_at")

    assert client.delete(url, headers=headers).status_code == 204
    gone = client.get(url, headers=headers)
    assert gone.status_code == 404
    assert gone.json()["code"] == "not_found"
    assert client.delete(url, headers=headers).status_code == 404


def test_lists_search_and_pages(project: Project) -> None:
    client, headers = project.client, project.headers()
    marker = uuid.uuid4().hex[:10]
    ids = []
    for i in range(3):
        body = {"total": i + 0.5, "note": "plain", "select": f"Has {marker} {i}"}
        created = client.post("/api/orders", json=body, headers=headers)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    client.post("/api/orders", json={"total": 1.0, "select": "unrelated"}, headers=headers)
    if "pagination" not in project.features:
        listed = client.get("/api/orders", headers=headers)
        assert listed.status_code == 200
        assert set(ids) <= {row["id"] for row in listed.json()}
        assert int(listed.headers["x-total-count"]) == len(listed.json())
        return
    query = {"q": marker.upper(), "limit": 2}
    first = client.get("/api/orders", params={**query, "page": 1}, headers=headers)
    assert first.status_code == 200, first.text
    assert [row["id"] for row in first.json()["data"]] == [ids[2], ids[1]]
    assert first.json()["meta"] == {"page": 1, "limit": 2, "total": 3, "total_pages": 2}
    second = client.get("/api/orders", params={**query, "page": 2}, headers=headers)
    assert [row["id"] for row in second.json()["data"]] == [ids[0]]


def test_bad_input_answers_in_the_error_format(project: Project) -> None:
    client, headers = project.client, project.headers()
    missing = "0123456789abcdef01234567" if project.database == "mongodb" else "2147483647"
    answer = client.get(f"/api/users/{missing}", headers=headers)
    assert answer.status_code == 404 and answer.json()["code"] == "not_found", answer.text
    for bad in ("not-an-id", "0", "2147483648", "9" * 20, "0" * 23):
        for method in ("GET", "PATCH", "DELETE"):
            body = {} if method == "PATCH" else None
            answer = client.request(method, f"/api/users/{bad}", json=body, headers=headers)
            assert answer.status_code == 422, (method, bad, answer.text)
            assert answer.json()["code"] == "validation_error"
    for path in ("/api/nothing-here", "/api/users/1/more"):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 404, (path, answer.text)
        assert set(answer.json()) == {"code", "detail"}
    broken = client.post("/api/users", content=b"{not json", headers=headers)
    assert broken.status_code == 422 and broken.json()["code"] == "validation_error"
    for integer in ("seven", 2**53, -(2**53), 1.5):
        body = {**SAMPLE, "integer_value": integer}
        wrong = client.post("/api/users", json=body, headers=headers)
        assert wrong.status_code == 422 and wrong.json()["code"] == "validation_error", integer
    edge = client.post("/api/users", json={**SAMPLE, "integer_value": 2**53 - 1}, headers=headers)
    assert edge.status_code == 201 and edge.json()["integer_value"] == 2**53 - 1, edge.text
    if "pagination" in project.features:
        for params in ({"page": 10**18}, {"page": 0}, {"limit": 101}):
            answer = client.get("/api/users", params=params, headers=headers)
            assert answer.status_code == 422, (params, answer.text)
            assert answer.json()["code"] == "validation_error"


@with_auth
def test_another_accounts_record_is_404(project: Project) -> None:
    client, owner, stranger = project.client, project.headers(), project.headers()
    created = client.post("/api/users", json=SAMPLE, headers=owner).json()
    url = f"/api/users/{created['id']}"
    assert client.get(url, headers=stranger).status_code == 404
    assert client.patch(url, json={"integer_value": 1}, headers=stranger).status_code == 404
    assert client.delete(url, headers=stranger).status_code == 404
    assert client.get("/api/users", headers=stranger).json()["data"] == []
    assert client.get(url, headers=owner).json() == created


@with_auth
def test_a_token_must_name_a_live_account(project: Project) -> None:
    client = project.client
    missing = "0123456789abcdef01234567" if project.database == "mongodb" else "999999999"
    forged = hs256({"sub": missing, "exp": int(time.time()) + 600}, JWT_SECRET)
    other_secret = hs256({"sub": missing, "exp": int(time.time()) + 600}, "x" * 64)
    for token in (forged, other_secret):
        answer = client.post("/api/users", json=SAMPLE, headers=bearer(token))
        assert answer.status_code == 401, answer.text
        assert answer.json()["code"] == "unauthorized"
    assert client.get("/api/users").status_code == 401


@with_auth
def test_an_email_registers_once(project: Project) -> None:
    email = f"once-{uuid.uuid4().hex}@example.com"
    register = {"email": email, "password": PASSWORD}
    assert project.client.post("/api/auth/register", json=register).status_code == 201
    # A newer account whose email contains this one: a lookup by substring finds it first.
    longer = {"email": f"x{email}", "password": PASSWORD}
    assert project.client.post("/api/auth/register", json=longer).status_code == 201
    for again in (email, email.upper()):
        answer = project.client.post("/api/auth/register", json={**register, "email": again})
        assert answer.status_code == 409, answer.text
        assert answer.json()["code"] == "conflict"


@with_auth
def test_next_start_refuses_to_run_without_a_jwt_secret(project: Project) -> None:
    next_bin = str(project.root / "node_modules" / ".bin" / "next")
    done = run([next_bin, "start", "--port", str(free_port()), "--hostname", "127.0.0.1"],
               project.root, project.env, 120)  # fmt: skip
    assert done.returncode != 0
    assert "JWT_SECRET" in done.stdout + done.stderr
