"""Route conventions: docstring summaries, `verb_noun` operation ids, documented problems."""

from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute

from api_v2.rate_limits import RateLimit
from backend.errors import PROBLEM_MEDIA_TYPE, AppError
from schemas.common import Problem, ValidationProblem, problem_example

Responses = dict[int | str, dict[str, Any]]


def problems(*errors: type[AppError]) -> Responses:
    """Document the given problems for one route, so they reach OpenAPI and the TS types."""
    by_status: dict[int, list[type[AppError]]] = {}
    for error in errors:
        by_status.setdefault(error.status, []).append(error)
    responses: Responses = {}
    for status, same in sorted(by_status.items()):
        codes = ", ".join(f"`{error.code}`" for error in same)
        responses[status] = {
            "model": Problem,
            "description": f"{same[0].title} ({codes})",
            "content": {PROBLEM_MEDIA_TYPE: {"example": problem_example(same[0].code, status)}},
        }
    return responses


VALIDATION_RESPONSE: Responses = {
    422: {
        "model": ValidationProblem,
        "description": "Request validation failed (`validation_error`)",
        "content": {PROBLEM_MEDIA_TYPE: {"example": problem_example("validation_error", 422)}},
    }
}


_RATE_LIMIT_HEADER_DOCS = {
    "X-RateLimit-Limit": "Requests allowed in the current window",
    "X-RateLimit-Remaining": "Requests left in the current window",
    "X-RateLimit-Reset": "Seconds until the window resets",
}

RATE_LIMITED_RESPONSE: Responses = {
    429: {
        "model": Problem,
        "description": "Too many requests (`rate_limited`)",
        "headers": {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}},
            **{
                name: {"description": text, "schema": {"type": "integer"}}
                for name, text in _RATE_LIMIT_HEADER_DOCS.items()
            },
        },
        "content": {PROBLEM_MEDIA_TYPE: {"example": problem_example("rate_limited", 429)}},
    }
}


class DocumentedRoute(APIRoute):
    """Summary from the docstring's first line; our 422 problem instead of FastAPI's shape."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        lines = (endpoint.__doc__ or "").strip().splitlines()
        if lines and kwargs.get("summary") is None:
            kwargs["summary"] = lines[0]
        super().__init__(path, endpoint, **kwargs)
        if lines and not kwargs.get("description"):
            # FastAPI would repeat the whole docstring; the summary already says line one.
            self.description = "\n".join(lines[1:]).strip()
        if (self.body_field or self.dependant.query_params or self.dependant.path_params) and (
            422 not in self.responses
        ):
            self.responses = {**self.responses, **VALIDATION_RESPONSE}
        limits = [
            dep.call for dep in self.dependant.dependencies if isinstance(dep.call, RateLimit)
        ]
        if limits:
            self.description = "\n\n".join(
                filter(None, [self.description, *(limit.describe() for limit in limits)])
            )
            self.responses = {**self.responses, **RATE_LIMITED_RESPONSE}


def operation_id(route: APIRoute) -> str:
    """The handler's own `verb_noun` name, which becomes the TS client's method name."""
    return route.name
