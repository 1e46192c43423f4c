"""Generation tests: jobs run in the app (no Redis) unless a test asks for the Redis queue
and real `python -m backend worker` processes; generated projects on PostgreSQL get Debian's,
started by the suite."""

import subprocess
import time
import uuid
import venv
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from backend.config import Settings
from backend.generation.fullstack.generator import generate
from tests.support.factories import signed_up
from tests.support.llm import ScriptedLLM
from tests.support.postgres import PostgresServer
from tests.support.servers import Worker
from tests.support.settings import FAST_JOBS, GENEROUS_LIMITS
from tests.support.specs import ALL_FEATURES, rich_spec


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Jobs run inside the app: no Redis."""
    return make_settings(redis_url=None, **GENEROUS_LIMITS, **FAST_JOBS)


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> dict[str, str]:
    return (await signed_up(client))[1]


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> dict[str, str]:
    return (await signed_up(client))[1]


@pytest.fixture
def workers() -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(settings: Settings, concurrency: int = 4, **env: str) -> Worker:
        worker = Worker(settings, concurrency, **env)
        started.append(worker)
        time.sleep(0)  # started; it connects on its own
        return worker

    yield start
    # Stopped the way production stops them: a worker killed mid-commit would leave its
    # transaction open on the server, holding the database the teardown then drops.
    for worker in started:
        if worker.process.poll() is None:
            worker.process.terminate()
    for worker in started:
        try:
            worker.process.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        worker.log.close()


@pytest.fixture(scope="session")
def project_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A virtualenv with every generated FastAPI variant's pinned requirements installed."""
    home = tmp_path_factory.mktemp("generated-venv")
    venv.create(home, with_pip=True)
    python = home / "bin" / "python"
    requirements = set()
    for database in ("sqlite", "mongodb", "postgresql"):
        files = generate(rich_spec(database, ALL_FEATURES))
        requirements |= set(files["requirements.txt"].split())
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *sorted(requirements)],
        check=True, timeout=600, capture_output=True,
    )  # fmt: skip
    yield python


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throw-away cluster per test process; fails (never skips) without Debian's PostgreSQL."""
    server = PostgresServer().start()
    yield server
    server.close()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    """A fresh, empty database: `postgresql://postgres@127.0.0.1:<port>/<name>`, dropped after."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    yield postgres.create_database(name)
    postgres.drop_database(name)


@pytest.fixture(scope="session")
def llm_server() -> Iterator[ScriptedLLM]:
    """The scripted OpenAI-compatible server agentic tests talk to."""
    server = ScriptedLLM().start()
    yield server
    server.server.stop()


@pytest.fixture
def llm(llm_server: ScriptedLLM) -> ScriptedLLM:
    llm_server.reset()
    return llm_server
