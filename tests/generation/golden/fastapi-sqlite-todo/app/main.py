"""The app factory: settings, database, routers and error handling in one place."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app import errors
from app.config import Settings
from app.db import Database
from app.middleware.request_id import RequestIdMiddleware
from app.routers.task import router as task_router
from app.schemas.common import ErrorBody


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings.database_url)
        if settings.environment != "production":
            database.migrate()  # in production `alembic upgrade head` is a deploy step
        app.state.database = database
        try:
            yield
        finally:
            database.close()

    app = FastAPI(
        title=settings.app_name,
        version="1.0.0",
        lifespan=lifespan,
        responses={422: {"model": ErrorBody, "description": "Validation error"}},
    )
    app.state.settings = settings
    errors.install(app)
    app.add_middleware(RequestIdMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.include_router(task_router)

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok"}

    return app


app = create_app()
