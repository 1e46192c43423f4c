"""/healthz, /readyz, /metrics, /api/v2 and the settings they run on."""

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from backend import __version__
from backend.config import Settings
from backend.main import create_app
from tests.support.app_client import open_client
from tests.support.factories import signed_up
from tests.support.servers import MongoServer, RedisServer, served

PROJECTS = "/api/v2/projects"

ROOT = Path(__file__).resolve().parents[2]


async def test_healthz_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_api_index_names_version_and_docs(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v2")
    assert response.json() == {
        "name": "Devora API",
        "version": __version__,
        "docs_url": "/docs",
        "openapi_url": "/openapi.json",
    }


async def test_readyz_with_redis_and_embedded_mongodb(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"mongodb": "ok", "redis": "ok"}}


async def test_readyz_without_redis_reports_embedded(
    make_settings: Callable[..., Settings],
) -> None:
    async with open_client(create_app(make_settings(redis_url=None))) as client:
        response = await client.get("/readyz")
    assert response.json()["checks"] == {"mongodb": "ok", "redis": "embedded"}


async def test_readyz_with_unreachable_mongodb_is_503_quickly(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(mongodb_url="mongodb://127.0.0.1:1"))
    async with open_client(app, ready=False) as client:
        started = time.monotonic()
        response = await client.get("/readyz")
        elapsed = time.monotonic() - started
    assert elapsed < 5
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "service_unavailable"
    assert body["checks"]["mongodb"] == "unavailable"
    assert "mongodb" in body["detail"]


async def test_requests_with_mongodb_down_are_503_not_500(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(mongodb_url="mongodb://127.0.0.1:1", mongodb_timeout_ms=500))
    async with open_client(app, ready=False) as client:
        started = time.monotonic()
        response = await client.post(
            "/api/v2/auth/register", json={"email": "a@example.com", "password": "Secret123"}
        )
        elapsed = time.monotonic() - started
        closing = time.monotonic()
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert elapsed < 5
    # Shutting down never waits on the unreachable database for long.
    assert time.monotonic() - closing < 5


async def test_a_transaction_meets_a_database_that_went_away_with_a_503_not_a_hang(
    make_settings: Callable[..., Settings], database_names: list[str]
) -> None:
    """Creating a project is a transaction; PyMongo retries a transaction for up to 120 s on
    transient errors, a down database included. A request's transactions are bounded."""
    database = MongoServer().start()
    try:
        settings = make_settings(mongodb_url=database.url)
        async with open_client(create_app(settings)) as client:
            _, alice = await signed_up(client)
            assert (
                await client.post(PROJECTS, json={"name": "a"}, headers=alice)
            ).status_code == 201
            assert database.process is not None
            database.process.kill()  # kill -9: connections drop mid-life
            database.process.wait(10)
            started = time.monotonic()
            response = await client.post(PROJECTS, json={"name": "b"}, headers=alice)
            elapsed = time.monotonic() - started
    finally:
        database.close()
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert elapsed < 15  # the budget is 4 s; unbounded, this waited 120 s


async def test_readyz_names_redis_when_it_stops_and_recovers(
    make_settings: Callable[..., Settings],
) -> None:
    redis = RedisServer().start()
    try:
        app = create_app(make_settings(redis_url=redis.url))
        async with open_client(app) as client:
            assert (await client.get("/readyz")).status_code == 200
            redis.stop()
            down = await client.get("/readyz")
            redis.start()
            await asyncio.sleep(0.1)
            back = await client.get("/readyz")
    finally:
        redis.close()
    assert down.status_code == 503
    assert down.json()["code"] == "service_unavailable"
    assert down.json()["checks"] == {"mongodb": "ok", "redis": "unavailable"}
    assert back.status_code == 200


async def test_metrics_label_route_templates_not_raw_paths(client: httpx.AsyncClient) -> None:
    for n in range(3):
        await client.get(f"/api/v2/unknown/{n}")
    await client.get("/api/v2")
    text = (await client.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/api/v2",status="200"} 1.0' in text
    assert 'route="<unmatched>",status="404"} 3.0' in text
    assert "/api/v2/unknown/1" not in text
    assert "http_request_duration_seconds_bucket" in text


def test_settings_read_comma_separated_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTEND_ORIGINS", "http://localhost:5173, https://app.devora.dev/")
    monkeypatch.setenv("TRUSTED_PROXIES", '["10.0.0.0/8"]')
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.frontend_origins == ["http://localhost:5173", "https://app.devora.dev"]
    assert settings.trusted_proxies == ["10.0.0.0/8"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"frontend_origins": ["*"]},
        {"trusted_proxies": ["not-a-network"]},
        {"jwt_secret": "short"},
        {"environment": "production"},
        {"log_level": "loud"},
    ],
)
def test_bad_settings_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, **overrides)  # type: ignore[arg-type]


def test_production_without_jwt_secret_refuses_to_start() -> None:
    env = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    env["ENVIRONMENT"] = "production"
    result = subprocess.run(
        [sys.executable, "-c", "import backend.main as m; m.app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Invalid configuration" in result.stderr
    assert "JWT_SECRET" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_sends_hsts(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(environment="production", jwt_secret="p" * 40, mail_to_log=True)
    with served(create_app(settings)) as url:  # production serves only through our protocol
        response = httpx.get(f"{url}/healthz", timeout=10)
    assert response.status_code == 200
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_production_without_mail_refuses_to_start_unless_told() -> None:
    with pytest.raises(ValidationError, match="MAIL_TO_LOG"):
        Settings(_env_file=None, environment="production", jwt_secret="p" * 40)  # type: ignore[call-arg]
    told = Settings(_env_file=None, environment="production", jwt_secret="p" * 40, mail_to_log=True)  # type: ignore[call-arg]
    assert told.mail_to_log


async def test_metrics_answer_only_their_bearer_when_a_token_is_set(
    make_settings: Callable[..., Settings],
) -> None:
    async with open_client(create_app(make_settings(metrics_token="scrape-me"))) as client:
        anonymous = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.json()["code"] == "unauthorized"
    assert right.status_code == 200 and "http_requests_total" in right.text


def test_production_serves_no_metrics_without_a_token(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(environment="production", jwt_secret="p" * 40, mail_to_log=True)
    with served(create_app(settings)) as url:  # production serves only through our protocol
        response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 404 and response.json()["code"] == "not_found"


async def test_docs_can_be_turned_off(make_settings: Callable[..., Settings]) -> None:
    async with open_client(create_app(make_settings(docs_enabled=False))) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            response = await client.get(path)
            assert response.status_code == 404, path


async def test_without_a_jwt_secret_a_random_one_is_kept_with_the_local_data(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    local = make_settings(jwt_secret=None, data_dir=str(tmp_path / "data"))
    async with open_client(create_app(local)) as client:
        _, headers = await signed_up(client)
    secret_file = tmp_path / "data" / "jwt_secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert len(secret_file.read_text().strip()) >= 32

    # A restart on the same data keeps the session; another installation cannot verify it.
    async with open_client(create_app(local)) as client:
        kept = await client.get("/api/v2/auth/me", headers=headers)
    elsewhere = local.model_copy(update={"data_dir": str(tmp_path / "other")})
    async with open_client(create_app(elsewhere)) as client:
        foreign = await client.get("/api/v2/auth/me", headers=headers)
    assert kept.status_code == 200
    assert foreign.status_code == 401
    assert (tmp_path / "other" / "jwt_secret").read_text() != secret_file.read_text()


def test_no_signing_secret_is_written_in_the_source() -> None:
    assert Settings(_env_file=None).jwt_secret is None  # type: ignore[call-arg]
