"""Swagger UI and ReDoc served from assets installed with the app, so docs work offline."""

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_ASSETS_PATH = "/docs-assets"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


class DocsPage:
    """A docs page, built once, with a Content-Security-Policy under which only our own
    assets run: scripts from this origin plus the page's inline scripts, allowed by hash.
    Styles may be inline (both UIs set them at run time); ReDoc's search runs in a blob
    worker; the UI talks to this origin alone and sits in no frame."""

    def __init__(self, page: HTMLResponse) -> None:
        self.body = bytes(page.body)
        hashes = " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
            for script in _INLINE_SCRIPT.findall(self.body.decode())
        )
        self.headers = {
            "content-security-policy": (
                f"default-src 'none'; script-src 'self' {hashes}; "
                "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
                "connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; "
                "form-action 'none'; frame-ancestors 'none'"
            )
        }

    def response(self) -> HTMLResponse:
        return HTMLResponse(self.body, headers=self.headers)


def docs_assets() -> StaticFiles:
    """The Swagger UI and ReDoc bundles shipped inside the fastapi-offline wheel."""
    return StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static")


def docs_router(title: str, openapi_url: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    swagger_ui = DocsPage(
        get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} — Swagger UI",
            swagger_js_url=f"{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS_PATH}/favicon.png",
            oauth2_redirect_url=OAUTH2_REDIRECT_PATH,
            swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True},
        )
    )
    oauth2_redirect = DocsPage(get_swagger_ui_oauth2_redirect_html())
    redoc = DocsPage(
        get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} — ReDoc",
            redoc_js_url=f"{DOCS_ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )
    )

    @router.get("/docs")
    async def get_swagger_ui() -> HTMLResponse:
        return swagger_ui.response()

    @router.get(OAUTH2_REDIRECT_PATH)
    async def get_swagger_ui_redirect() -> HTMLResponse:
        return oauth2_redirect.response()

    @router.get("/redoc")
    async def get_redoc() -> HTMLResponse:
        return redoc.response()

    return router
