"""Contract tests: the live API as its users meet it, over real sockets — schemathesis on the
published spec, the TypeScript client under Node, Swagger UI and ReDoc in Chromium.

Everything is configured (Stripe through localstripe, the scripted LLM, an admin), so
requests reach the logic instead of a 503 for a missing provider."""

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from backend.config import Settings
from backend.main import create_app
from tests.billing.conftest import fake_stripe, fake_stripe_server, localstripe
from tests.support.llm import ScriptedLLM
from tests.support.servers import ThreadedServer
from tests.support.settings import ADMIN_EMAIL, ADMIN_PASSWORD, FAST_JOBS, GENEROUS_LIMITS
from tests.support.stripe import PRICE_PRO, PRICE_TEAM, SECRET_KEY, WEBHOOK_SECRET, FakeStripe
from tests.support.typescript_client import CLIENT

__all__ = ["fake_stripe", "fake_stripe_server", "localstripe"]

# The page a frontend would be: the compiled client and openapi-fetch, as an ES module.
FRONTEND_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Devora client</title>
<script type="importmap">{"imports": {"openapi-fetch": "/vendor/openapi-fetch/index.mjs"}}</script>
</head><body><pre id="log"></pre>
<script type="module">
import { quickstart } from "/dist/examples/quickstart.js";
const api = new URLSearchParams(location.search).get("api");
const log = document.getElementById("log");
window.quickstartResult = quickstart(api, (line) => { log.textContent += line + "\\n"; })
  .catch((error) => ({ error: String(error && error.stack || error) }));
</script></body></html>
"""
MODELS = [{"id": "test/coder", "provider": "test", "kinds": ["agentic"], "plans": ["free"]}]


@pytest.fixture(scope="session")
def llm() -> Iterator[ScriptedLLM]:
    server = ScriptedLLM().start()
    yield server
    server.server.stop()


@pytest.fixture(scope="session")
def frontend_origin() -> Iterator[str]:
    """A static server standing in for the React app's origin (CORS is allowed for it)."""
    app = Starlette(
        routes=[
            Route("/", lambda _: HTMLResponse(FRONTEND_PAGE)),
            Route("/favicon.ico", lambda _: Response(status_code=204)),
            Mount("/dist", StaticFiles(directory=CLIENT / "dist", check_dir=False)),
            Mount(
                "/vendor/openapi-fetch",
                StaticFiles(directory=CLIENT / "node_modules/openapi-fetch/dist", check_dir=False),
            ),
        ]
    )
    server = ThreadedServer(app).start()
    yield server.url.replace("127.0.0.1", "localhost")
    server.stop()


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings],
    fake_stripe: FakeStripe,
    llm: ScriptedLLM,
    frontend_origin: str,
) -> Settings:
    """Jobs inside the app (no worker), every provider configured, generous limits."""
    return make_settings(
        redis_url=None, **GENEROUS_LIMITS, **FAST_JOBS,
        admin_email=ADMIN_EMAIL, admin_password=ADMIN_PASSWORD, frontend_origins=[frontend_origin],
        stripe_secret_key=SECRET_KEY, stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=fake_stripe.url, stripe_price_pro=PRICE_PRO, stripe_price_team=PRICE_TEAM,
        llm_base_url=llm.url, llm_api_key="test-key", llm_timeout_s=2, llm_max_retries=0,
        llm_default_model="test/coder", llm_models=MODELS,
    )  # fmt: skip


@pytest.fixture
def live_api(settings: Settings) -> Iterator[str]:
    """The app on a loopback port, ready (indexes built) before the test starts."""
    server = ThreadedServer(create_app(settings)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for _ in range(600):
                if client.get("/readyz").status_code == 200:
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the API never became ready")
        yield server.url
    finally:
        server.stop()
