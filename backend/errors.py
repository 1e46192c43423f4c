"""The one error hierarchy, and the one RFC 9457 problem renderer."""

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

PROBLEM_TYPE_BASE = "https://devora.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class AppError(Exception):
    """An expected failure that the client is told about as a problem document."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})
        # RFC 9457 extension members, such as `errors` on a validation problem.
        self.extensions = dict(extensions or {})


class BadRequest(AppError):
    pass


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, *, code: str | None = None):
        super().__init__(detail, code=code, headers={"WWW-Authenticate": "Bearer"})


class InvalidAccessToken(Unauthorized):
    code, title = "invalid_token", "Invalid or expired access token"


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Not allowed"


class AccountDisabled(Forbidden):
    code, title = "account_disabled", "This account is disabled"


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class MethodNotAllowed(AppError):
    status, code, title = 405, "method_not_allowed", "Method not allowed"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class EmailTaken(Conflict):
    code, title = "email_taken", "An account with this email exists"


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload_too_large", "Request body too large"


class UnsupportedMediaType(AppError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class RateLimited(AppError):
    status, code, title = 429, "rate_limited", "Too many requests"


class ValidationFailed(AppError):
    status, code, title = 422, "validation_error", "Request validation failed"


class ServiceUnavailable(AppError):
    status, code, title = 503, "service_unavailable", "Service unavailable"


class InternalError(AppError):
    status, code, title = 500, "internal_error", "Internal server error"


# Starlette raises plain HTTP errors for routing and body limits; they get our codes.
_CODES_BY_STATUS: dict[int, type[AppError]] = {
    error.status: error
    for error in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        ValidationFailed,
        RateLimited,
        ServiceUnavailable,
        InternalError,
    )
}


def error_for_status(status: int) -> type[AppError]:
    """The AppError class that describes a bare HTTP status."""
    if status in _CODES_BY_STATUS:
        return _CODES_BY_STATUS[status]
    return InternalError if status >= 500 else BadRequest


def problem_response(error: AppError, request_id: str | None) -> Response:
    """Render an AppError as an `application/problem+json` response."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + error.code,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
        "request_id": request_id,
        **error.extensions,
    }
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status_code=error.status,
        headers=error.headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


class IdempotencyKeyReused(AppError):
    status, code, title = 422, "idempotency_key_reused", "Idempotency-Key used with another body"
