"""Unversioned service endpoints for orchestrators and scrapers."""

from fastapi import APIRouter, Response

from api_v2.deps import ResourcesDep
from api_v2.routing import DocumentedRoute
from backend.errors import ServiceUnavailable
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
    responses={503: {"model": NotReadyProblem, "description": "A backing service is not ready"}},
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
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def get_metrics(resources: ResourcesDep) -> Response:
    """Prometheus metrics of this process."""
    return Response(resources.metrics.render(), media_type=METRICS_MEDIA_TYPE)
