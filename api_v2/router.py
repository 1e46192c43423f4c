"""`/api/v2`: the one versioned router that mounts every area."""

from fastapi import APIRouter

from api_v2.endpoints import admin, auth, billing, generation, projects
from api_v2.rate_limits import DEFAULT_LIMIT
from api_v2.routing import DocumentedRoute
from backend import __version__
from schemas.common import ApiInfo

API_PREFIX = "/api/v2"

router = APIRouter(prefix=API_PREFIX, route_class=DocumentedRoute)


@router.get("", response_model=ApiInfo, tags=["service"], dependencies=[DEFAULT_LIMIT])
async def get_api_info() -> ApiInfo:
    """Name and version of this API, and where its documentation lives."""
    return ApiInfo(
        name="Devora API",
        version=__version__,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )


router.include_router(auth.router)
router.include_router(projects.router)
router.include_router(generation.router)
router.include_router(billing.router)
router.include_router(admin.router)
