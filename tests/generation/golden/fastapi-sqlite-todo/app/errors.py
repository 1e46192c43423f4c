"""One error format, `{"code", "detail"}`, for every error the service answers: its own,
validation errors (422, which add `errors`), unknown routes (404), wrong methods (405) and
unexpected failures (500)."""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "validation_error",
}


class AppError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(AppError):
    status, code = 404, "not_found"


class Conflict(AppError):
    status, code = 409, "conflict"


class Unauthorized(AppError):
    status, code = 401, "unauthorized"


def _body(code: str, detail: str, status: int, **extra: object) -> JSONResponse:
    return JSONResponse({"code": code, "detail": detail, **extra}, status_code=status)


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    response = _body(exc.code, exc.detail, exc.status)
    if isinstance(exc, Unauthorized):
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _CODES.get(exc.status_code, f"http_{exc.status_code}")
    response = _body(code, str(exc.detail), exc.status_code)
    response.headers.update(exc.headers or {})
    return response


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "Invalid request"}
    detail = ".".join(str(part) for part in first["loc"]) + ": " + str(first["msg"])
    return _body("validation_error", detail, 422, errors=errors)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette raises the exception again after this answer: the server logs it.
    return _body("internal_error", "Internal error", 500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(Exception, _unexpected)
