"""Generation tests: jobs run in the app (no Redis) unless a test asks for the Redis queue
and real `python -m backend worker` processes."""

import subprocess
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from backend.config import Settings
from tests.support.factories import signed_up
from tests.support.servers import Worker
from tests.support.settings import FAST_JOBS, GENEROUS_LIMITS


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
