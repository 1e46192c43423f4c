"""Offline docs, the committed OpenAPI document, and the compose file."""

import base64
import hashlib
import re
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi import FastAPI

from backend.config import Settings
from backend.http_protocol import SERVER_OPTIONS
from backend.openapi_export import openapi_yaml

ROOT = Path(__file__).resolve().parents[2]


async def test_swagger_ui_loads_only_local_assets(client: httpx.AsyncClient) -> None:
    page = (await client.get("/docs")).text
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page)
    assert assets, page
    assert all(url.startswith("/") and not url.startswith("//") for url in assets), assets
    for url in assets:
        response = await client.get(url)
        assert response.status_code == 200, url
        assert len(response.content) > 1000


async def test_redoc_loads_only_local_assets(client: httpx.AsyncClient) -> None:
    page = (await client.get("/redoc")).text
    assert "fonts.googleapis" not in page
    scripts = re.findall(r"""<script src=['"]([^'"]+)['"]""", page)
    assert scripts == ["/docs-assets/redoc.standalone.js"]
    assert (await client.get(scripts[0])).status_code == 200


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_docs_pages_run_only_their_own_scripts(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    sources = policy["script-src"].split()
    assert sources[0] == "'self'" and "'unsafe-inline'" not in sources
    inline = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    hashes = {
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in inline
    }
    assert set(sources[1:]) == hashes  # each inline script allowed by its hash, nothing else
    assert all(url.startswith("/") for url in re.findall(r'<script src="([^"]+)"', response.text))


async def test_openapi_is_3_1(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    assert spec["paths"]["/api/v2"]["get"]["operationId"] == "get_api_info"


def test_committed_openapi_matches_the_app(app: FastAPI) -> None:
    committed = (ROOT / "openapi.yaml").read_text(encoding="utf-8")
    assert committed == openapi_yaml(app), (
        "openapi.yaml is stale: run `python -m backend export-openapi`"
    )


def test_compose_runs_api_after_healthy_mongo_and_redis() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) >= {"api", "mongo", "redis"}
    assert services["mongo"]["image"] == "mongo:8"
    assert services["redis"]["image"].startswith("redis:7")
    assert "mongo-data:/data/db" in services["mongo"]["volumes"]
    for name in ("api", "mongo", "redis"):
        assert services[name]["healthcheck"]["test"], name
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert services["api"]["depends_on"] == {
        "mongo": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "redis-cache": {"condition": "service_healthy"},
    }
    command = services["api"]["command"]
    assert command[command.index("--workers") + 1] == "2"
    assert "--no-proxy-headers" in command  # TRUSTED_PROXIES alone decides
    assert command[command.index("--http") + 1] == SERVER_OPTIONS["http"]  # header bounds
    env = services["api"]["environment"]
    for name in ("ENVIRONMENT", "MONGODB_URL", "REDIS_URL", "JWT_SECRET", "FRONTEND_ORIGINS"):
        assert name in env, name
    assert env["ENVIRONMENT"] == "production"


def test_compose_keeps_counters_and_queue_out_of_reach_of_cache_eviction() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services, env = compose["services"], compose["services"]["api"]["environment"]

    def policy(name: str) -> str:
        command = services[name]["command"]
        return str(command[command.index("--maxmemory-policy") + 1])

    assert env["REDIS_URL"].startswith("redis://redis:")
    assert env["CACHE_REDIS_URL"].startswith("redis://redis-cache:")
    assert policy("redis") == "noeviction"
    assert policy("redis-cache") == "allkeys-lru"


def test_compose_runs_workers_beside_the_api() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    worker = compose["services"]["worker"]
    assert worker["command"] == ["python", "-m", "backend", "worker"]
    assert worker["build"] == compose["services"]["api"]["build"]
    assert (
        worker["environment"]["REDIS_URL"] == compose["services"]["api"]["environment"]["REDIS_URL"]
    )
    assert set(worker["depends_on"]) == {"mongo", "redis"}


def test_compose_passes_every_deployment_setting_through_empty_by_default() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    env = compose["services"]["api"]["environment"]
    prefixes = ("stripe_", "smtp_", "oauth_", "admin_", "public_app_url", "llm_")
    wanted_llm = {"LLM_BASE_URL", "LLM_API_KEY", "LLM_DEFAULT_MODEL", "LLM_MODELS"}
    wanted = {
        name.upper()
        for name in Settings.model_fields
        if name.startswith(prefixes) and name not in ("llm_max_retries",)
    }
    assert wanted_llm <= wanted <= set(env)
    assert all(env[name] == f"${{{name}:-}}" for name in wanted)


def test_empty_environment_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_FROM", "")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.smtp_from == Settings.model_fields["smtp_from"].default
    assert settings.stripe_secret_key is None


def test_docker_build_context_leaves_local_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", ".venv-db", ".data", ".env", ".git"} <= set(ignored)
