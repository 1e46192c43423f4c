"""The app factory: the one place that wires clients, middleware, errors and routes."""

import asyncio
import functools
import gc
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Scope

from api_v2.docs import DOCS_ASSETS_PATH, docs_assets, docs_router
from api_v2.endpoints import service
from api_v2.rate_limits import RATE_LIMIT_HEADERS_SCOPE_KEY, RateLimits
from api_v2.router import router as api_router
from api_v2.routing import operation_id
from api_v2.spec import DESCRIPTION as API_DESCRIPTION
from api_v2.spec import TAGS as API_TAGS
from api_v2.spec import openapi_schema
from backend import __version__
from backend.cache import Cache
from backend.client_ip import client_ip_of
from backend.config import Settings, load_settings
from backend.db import UNAVAILABLE_ERRORS, Mongo
from backend.errors import (
    AppError,
    ServiceUnavailable,
    ValidationFailed,
    error_for_status,
    problem_response,
)
from backend.generation.events import EventHub
from backend.generation.kinds import executors
from backend.generation.reaper import keep_queue_depth, reap_forever, recover_queued
from backend.generation.repository import EVENTS as JOB_EVENTS
from backend.generation.runner import JobRunner
from backend.integrations.email import Mailer
from backend.integrations.oauth import configured_providers
from backend.integrations.stripe_gateway import StripeGateway
from backend.jobs import JobQueue, create_broker
from backend.logs import AccessLog, configure_logging
from backend.metrics import Metrics
from backend.middleware import RequestContextMiddleware, request_id_of
from backend.rate_limiter import RateLimiter
from backend.redis_client import create_redis
from backend.resources import Resources
from backend.security import PasswordHasher, TokenSigner, signing_secret
from backend.services.credentials import Credentials
from backend.services.project_rules import Caps
from backend.services.registry import Services, build_services
from schemas.user_schemas import canonical_email

log = structlog.get_logger("devora.app")

OPENAPI_URL = "/openapi.json"


def build_resources(settings: Settings, metrics: Metrics) -> Resources:
    """Every client the app uses, created once per process."""
    redis = create_redis(settings.redis_url, settings)
    # Cache pressure must never evict security counters or queue data: the cache may have a
    # Redis of its own, with an evicting memory policy.
    cache_redis = create_redis(settings.cache_redis_url, settings) or redis
    mongo = Mongo(settings)
    cache = Cache(settings, metrics, cache_redis)
    return Resources(
        settings=settings,
        metrics=metrics,
        mongo=mongo,
        redis=redis,
        cache_redis=cache_redis,
        cache=cache,
        rate_limiter=RateLimiter(settings, metrics, redis, cache=cache),
        signer=TokenSigner(
            signing_secret(
                settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
                Path(settings.data_dir),
            ),
            settings.access_token_ttl_s,
        ),
        hasher=PasswordHasher(),
        mailer=Mailer(settings),
        oauth_providers=configured_providers(settings),
        stripe=StripeGateway(settings) if settings.stripe_secret_key else None,
        queue=JobQueue(create_broker(settings), settings.job_enqueue_timeout_s),
        hub=EventHub(mongo.db[JOB_EVENTS], metrics.sse_connections),
        caps=Caps.of(settings),
    )


async def prepare_database(resources: Resources) -> None:
    """Indexes first (they guard uniqueness), then the configured admin account."""
    await resources.mongo.ensure_indexes()
    settings = resources.settings
    if settings.admin_email and settings.admin_password:
        admin = await Credentials.on(resources.mongo.db, resources.cache).ensure_admin(
            canonical_email(settings.admin_email),
            settings.admin_password.get_secret_value(),
            resources.hasher,
        )
        log.info("admin_ready", email=admin.email)
    resources.mongo.ready.set()


async def close_resources(resources: Resources) -> None:
    await resources.hub.close()
    await resources.mailer.close()
    for provider in resources.oauth_providers.values():
        await provider.aclose()
    if resources.stripe is not None:
        await resources.stripe.aclose()
    for redis in {id(r): r for r in (resources.redis, resources.cache_redis) if r}.values():
        await redis.aclose()
    await resources.mongo.close()


def start_job_services(
    resources: Resources, services: Services, prepared: "asyncio.Task[None]"
) -> list["asyncio.Task[None]"]:
    """Without Redis this process also runs the jobs (and reaps them); with Redis, workers do.
    Either way it keeps the queue-depth gauge for /metrics."""
    settings, queue = resources.settings, resources.queue
    lifecycle = services.generation.lifecycle
    tasks = [asyncio.create_task(keep_queue_depth(lifecycle.jobs, resources.metrics, prepared))]
    if queue.is_in_process:
        runner = JobRunner(lifecycle, executors(settings), queue, settings)
        runner.verifier.prepare()
        queue.serve(runner)

        async def run_jobs() -> None:
            await prepared
            await recover_queued(lifecycle.jobs, queue)
            await reap_forever(lifecycle, queue, settings)

        tasks.append(asyncio.create_task(run_jobs(), name="in-process-jobs"))
    return tasks


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build every client once; close them all on the way out."""
    settings: Settings = app.state.settings
    resources = app.state.resources = build_resources(settings, app.state.metrics)
    services = app.state.services = build_services(resources)
    # Retried in the background, so a MongoDB outage at boot leaves the API up and
    # /readyz honest instead of crash-looping.
    prepare_task = asyncio.create_task(prepare_database(resources), name="prepare-database")
    await resources.queue.broker.startup()
    background = start_job_services(resources, services, prepare_task)
    # Everything built so far lives as long as the process: frozen, it is skipped by every
    # full collection, which would otherwise walk all imported code (long-tail pauses).
    gc.collect()
    gc.freeze()
    log.info("startup", environment=settings.environment.value, version=__version__)
    try:
        yield
    finally:
        for task in (prepare_task, *background):
            task.cancel()
        # Bounded: PyMongo's server selection can sit on a cancelled wait until the client
        # closes, and shutdown must never hang on an unreachable database.
        await asyncio.wait({prepare_task, *background}, timeout=2)
        await resources.queue.drain()
        await resources.queue.broker.shutdown()
        await close_resources(resources)
        log.info("shutdown")


async def _app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return problem_response(exc, request_id_of(request.scope))


# FastAPI's words when a body cannot be decoded at all (not UTF-8, a broken form).
_UNREADABLE_BODY = "There was an error parsing the body"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _UNREADABLE_BODY:
        # A body that is not UTF-8 is not JSON: the same 422 as any other malformed body.
        unreadable = {
            "loc": ["body"],
            "msg": "The body is not UTF-8",
            "type": "json_invalid",
        }
        invalid = ValidationFailed(extensions={"errors": [unreadable], "error_count": 1})
        return problem_response(invalid, request_id_of(request.scope))
    error = error_for_status(exc.status_code)(headers=exc.headers)
    error.status = exc.status_code
    return problem_response(error, request_id_of(request.scope))


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    log.error("mongodb_unavailable", error=repr(exc), path=request.url.path)
    error = ServiceUnavailable("The database is unavailable; try again shortly")
    return problem_response(error, request_id_of(request.scope))


MAX_REPORTED_ERRORS = 20


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # Only where and why: the rejected input may hold a password or a token. At most
    # MAX_REPORTED_ERRORS of them: the answer must not grow with the body.
    found = exc.errors()
    errors = [
        {"loc": list(item["loc"]), "msg": item["msg"], "type": item["type"]}
        for item in itertools.islice(found, MAX_REPORTED_ERRORS)
    ]
    error = ValidationFailed(extensions={"errors": errors, "error_count": len(found)})
    return problem_response(error, request_id_of(request.scope))


def _security_headers(settings: Settings) -> dict[str, str]:
    headers = {
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
    }
    if settings.is_production:
        headers["strict-transport-security"] = "max-age=63072000; includeSubDomains"
    return headers


def _cors_options(settings: Settings) -> dict[str, Any]:
    return {
        "allow_origins": settings.frontend_origins,
        "allow_credentials": True,
        "allow_methods": ["GET", "POST", "PUT", "PATCH", "DELETE"],
        "allow_headers": [
            "Authorization",
            "Content-Type",
            "Idempotency-Key",
            "If-None-Match",
            # A browser resuming a job's event stream (`fetch`, since EventSource cannot
            # send a bearer token) sends it, and so needs it allowed cross-origin.
            "Last-Event-ID",
            "X-Request-ID",
        ],
        "expose_headers": [
            "X-Request-ID",
            "ETag",
            "Retry-After",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
        ],
    }


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI app; clients are created by its lifespan, not here."""
    settings = settings or load_settings()
    configure_logging(settings)
    app = FastAPI(
        title="Devora API",
        version=__version__,
        summary="Create projects and have AI generate code into them.",
        description=API_DESCRIPTION,
        openapi_tags=API_TAGS,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_URL if settings.docs_enabled else None,
        generate_unique_id_function=operation_id,
        # `/api/v2/projects/` is not `/api/v2/projects`: no redirects a client must follow.
        redirect_slashes=False,
    )
    app.openapi = functools.partial(openapi_schema, app)  # type: ignore[method-assign]
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.rate_limits = RateLimits(settings)

    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for error in UNAVAILABLE_ERRORS:
        app.add_exception_handler(error, _database_unavailable)

    def client_ip(scope: Scope) -> str:
        return client_ip_of(scope, settings.trusted_networks)

    app.state.client_ip = client_ip
    app.add_middleware(
        RequestContextMiddleware,
        metrics=app.state.metrics,
        max_body_bytes=settings.max_body_bytes,
        security_headers=_security_headers(settings),
        client_ip=client_ip,
        extra_headers_scope_key=RATE_LIMIT_HEADERS_SCOPE_KEY,
        cors=_cors_options(settings),
        access_log=AccessLog(settings),
        requires_bounded_head=settings.is_production,
    )

    app.include_router(service.router)
    app.include_router(api_router)
    if settings.docs_enabled:
        app.include_router(docs_router(app.title, OPENAPI_URL))
        app.mount(DOCS_ASSETS_PATH, docs_assets(), name="docs-assets")
    return app


@functools.cache
def _default_app() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> FastAPI:
    """`uvicorn backend.main:app` builds the app on first use, not as an import side effect."""
    if name == "app":
        return _default_app()
    raise AttributeError(name)
