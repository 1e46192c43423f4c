"""Unversioned service endpoints for orchestrators and scrapers."""

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Response

from api_v2.deps import ResourcesDep
from api_v2.routing import DocumentedRoute, problems
from backend.errors import NotFound, ServiceUnavailable, Unauthorized
from backend.health import EMBEDDED, OK, is_ready, readiness
from backend.metrics import METRICS_MEDIA_TYPE
from schemas.common import Health, NotReadyProblem, Readiness

router = APIRouter(tags=["service"], route_class=DocumentedRoute)


@router.get("/healthz", response_model=Health)
async def get_health() -> Health:
    """Liveness: the process answers; touches nothing else."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        503: {
            "model": NotReadyProblem,
            "description": "A backing service is not ready (`service_unavailable`)",
            "x-problem-codes": [ServiceUnavailable.code],
        }
    },
)
async def get_readiness(resources: ResourcesDep) -> Readiness:
    """Readiness: MongoDB and Redis answer within their timeouts."""
    checks = await readiness(
        resources.mongo, resources.redis, resources.settings.redis_timeout_s * 2
    )
    if is_ready(checks):
        return Readiness(status="ok", checks=checks)
    failing = ", ".join(name for name, state in checks.items() if state not in (OK, EMBEDDED))
    raise ServiceUnavailable(f"Not ready: {failing}", extensions={"checks": checks})


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        **problems(Unauthorized, NotFound),
    },
)
async def get_metrics(
    resources: ResourcesDep, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """Prometheus metrics of this process.

    With `METRICS_TOKEN` set, only its bearer may read them; in production they need it.
    """
    settings = resources.settings
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if token is None and settings.is_production:
        raise NotFound("Metrics need METRICS_TOKEN in production")
    if token is not None and not hmac.compare_digest(
        (authorization or "").encode(), f"Bearer {token}".encode()
    ):
        raise Unauthorized("Metrics need the metrics bearer token")
    return Response(resources.metrics.render(), media_type=METRICS_MEDIA_TYPE)
