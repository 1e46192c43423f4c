"""The outermost ASGI layer: request id, access log, metrics, security headers, last-resort 500."""

import re
import time
import uuid
from collections.abc import Callable

import anyio
import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.errors import AppError, InternalError, PayloadTooLarge, problem_response
from backend.metrics import UNMATCHED_ROUTE, Metrics

REQUEST_ID_HEADER = "x-request-id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

log = structlog.get_logger("devora.http")


def request_id_of(scope: Scope) -> str | None:
    """The id the middleware gave this request."""
    value = scope.get("request_id")
    return value if isinstance(value, str) else None


def _incoming_request_id(headers: Headers) -> str:
    value = headers.get(REQUEST_ID_HEADER)
    if value is not None and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    if "endpoint" in scope:  # inside a Mount, which names its prefix in root_path
        return f"{scope.get('root_path', '')}/{{path}}"
    return UNMATCHED_ROUTE


def _declared_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)


class RequestContextMiddleware:
    """Wraps every HTTP request; nothing inside it can leak a traceback to the client."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_body_bytes: int,
        security_headers: dict[str, str],
        client_ip: Callable[[Scope], str],
        extra_headers_scope_key: str,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.security_headers = security_headers
        self.client_ip = client_ip
        # Headers a dependency decided on (rate-limit state), added to any response, errors too.
        self.extra_headers_scope_key = extra_headers_scope_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        headers = Headers(scope=scope)
        request_id = _incoming_request_id(headers)
        scope["request_id"] = request_id
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                out = MutableHeaders(scope=message)
                out[REQUEST_ID_HEADER] = request_id
                for name, value in self.security_headers.items():
                    out.setdefault(name, value)
                for raw_name, raw_value in scope.get(self.extra_headers_scope_key, ()):
                    out.raw.append((raw_name, raw_value))
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            declared = _declared_length(headers)
            if declared is not None and declared > self.max_body_bytes:
                # Refused from the header alone: the body is never read.
                await self._reject(PayloadTooLarge(), scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            if response_started and _client_left(exc):
                # FastAPI's SSE keep-alive task may write once more after the client hung up
                # (fastapi discussion #15725): the stream was over, nothing failed.
                log.info("client_left_stream", path=scope.get("path"))
                return
            log.exception("unhandled_error", path=scope.get("path"), request_id=request_id)
            if not response_started:
                await self._reject(InternalError(), scope, receive, send_with_headers)
        finally:
            self._record(scope, status, time.perf_counter() - started_at)
            structlog.contextvars.unbind_contextvars("request_id")

    async def _reject(self, error: AppError, scope: Scope, receive: Receive, send: Send) -> None:
        await problem_response(error, request_id_of(scope))(scope, receive, send)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = _route_template(scope)
        method = scope["method"]
        self.metrics.observe_request(method, route, status, seconds)
        log.info(
            "request",
            method=method,
            route=route,
            path=scope.get("path"),
            status=status,
            duration_ms=round(seconds * 1000, 2),
            client_ip=self.client_ip(scope),
        )


def _client_left(exc: BaseException) -> bool:
    """Only "the other end of a stream is closed" errors, alone or grouped by a task group."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_client_left(inner) for inner in exc.exceptions)
    return isinstance(exc, anyio.BrokenResourceError | anyio.ClosedResourceError)
