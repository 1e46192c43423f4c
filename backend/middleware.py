"""The outermost ASGI layer: request id, access log, metrics, security headers, last-resort 500.

It is also where CORS and the body-size limit are applied, each only to the requests it can
concern: CORS to requests with an `Origin` header, the body limit to requests that declare a
body (HTTP/1.1 has none without `Content-Length` or `Transfer-Encoding`). One layer instead of
three on the common path: a signed-in `GET` from a server pays for neither.

In production it also answers 503 to every request that did not come through the bounded
HTTP protocol (backend/http_protocol.py): served without it, heads would go unbounded.
"""

import re
import time
from collections.abc import Callable
from typing import Any

import anyio
import structlog
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.errors import (
    AppError,
    InternalError,
    PayloadTooLarge,
    ServiceUnavailable,
    problem_response,
)
from backend.http_protocol import BOUNDED_HEAD
from backend.logs import REQUEST_ID, AccessLog
from backend.metrics import UNMATCHED_ROUTE, Metrics
from backend.unique_ids import UniqueIds

REQUEST_ID_HEADER = "x-request-id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

log = structlog.get_logger("devora.http")

UNBOUNDED = (
    "The server must run uvicorn with `--http backend.http_protocol:BoundedHttpTools` "
    "(backend.http_protocol.SERVER_OPTIONS)."
)
_NONE: dict[str, Any] = {}  # a scope without extensions


def request_id_of(scope: Scope) -> str | None:
    """The id the middleware gave this request."""
    value = scope.get("request_id")
    return value if isinstance(value, str) else None


_request_ids = UniqueIds()


def _request_id(incoming: bytes | None) -> str:
    """The caller's id when it is sane, else a new one."""
    if incoming is not None:
        value = incoming.decode("latin-1")
        if _SANE_REQUEST_ID.fullmatch(value):
            return value
    return _request_ids.new()


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    if "endpoint" in scope:  # inside a Mount, which names its prefix in root_path
        return f"{scope.get('root_path', '')}/{{path}}"
    return UNMATCHED_ROUTE


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
        cors: dict[str, Any],
        access_log: AccessLog,
        requires_bounded_head: bool,
    ) -> None:
        self.app = app
        self.requires_bounded_head = requires_bounded_head
        self.access_log = access_log
        limited = RequestBodyLimitMiddleware(app, max_body_size=max_body_bytes)
        # (declares a body, has an Origin) -> the app behind the layers that request needs.
        self._apps: dict[tuple[bool, bool], ASGIApp] = {
            (False, False): app,
            (True, False): limited,
            (False, True): CORSMiddleware(app, **cors),
            (True, True): CORSMiddleware(limited, **cors),
        }
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.security_headers = [(k.encode(), v.encode()) for k, v in security_headers.items()]
        self.client_ip = client_ip
        # Headers a dependency decided on (rate-limit state), added to any response, errors too.
        self.extra_headers_scope_key = extra_headers_scope_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        # One pass over the raw headers (ASGI names are lower-case bytes) for what this layer
        # reads; a `Headers` object would be built and scanned once per name.
        incoming_id = length = None
        chunked = has_origin = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming_id = value
            elif name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"origin":
                has_origin = True
        request_id = _request_id(incoming_id)
        scope["request_id"] = request_id
        status = 500
        response_started = False
        id_header = (REQUEST_ID_HEADER.encode(), request_id.encode())

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0] != id_header[0]]
                present = {name for name, _ in headers}
                headers.append(id_header)
                headers += [h for h in self.security_headers if h[0] not in present]
                headers += scope.get(self.extra_headers_scope_key, ())
                message["headers"] = headers
            await send(message)

        bound = REQUEST_ID.set(request_id)
        try:
            declared = int(length) if length is not None and length.isdigit() else None
            if self.requires_bounded_head and BOUNDED_HEAD not in scope.get("extensions", _NONE):
                log.error("unbounded_http_protocol", detail=UNBOUNDED)
                await self._reject(ServiceUnavailable(UNBOUNDED), scope, receive, send_with_headers)
            elif declared is not None and declared > self.max_body_bytes:
                # Refused from the header alone: the body is never read.
                await self._reject(PayloadTooLarge(), scope, receive, send_with_headers)
            else:
                app = self._apps[bool(declared) or chunked, has_origin]
                await app(scope, receive, send_with_headers)
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
            REQUEST_ID.reset(bound)

    async def _reject(self, error: AppError, scope: Scope, receive: Receive, send: Send) -> None:
        await problem_response(error, request_id_of(scope))(scope, receive, send)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = _route_template(scope)
        method = scope["method"]
        self.metrics.observe_request(method, route, status, seconds)
        self.access_log.request(
            scope["request_id"],
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
