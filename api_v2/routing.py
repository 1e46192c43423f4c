"""Route conventions: docstring summaries, `verb_noun` operation ids, documented problems."""

import copy
import textwrap
from collections.abc import Callable
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope

from api_v2.deps import IMPLIED_PROBLEMS
from api_v2.rate_limits import RateLimit
from api_v2.solver import lean_app
from backend.errors import PROBLEM_MEDIA_TYPE, AppError, PayloadTooLarge, ValidationFailed
from schemas.common import Problem, ValidationProblem, problem_example

Responses = dict[int | str, dict[str, Any]]


class JSONBytes(Response):
    """A body that is JSON already (a cached page): sent as it is. The route's
    `response_model` still documents it; the cache stored what that model serialised to."""

    media_type = "application/json"


def problems(*errors: type[AppError]) -> Responses:
    """Document the given problems for one route, so they reach OpenAPI and the TS types."""
    responses: Responses = {}
    for error in sorted(errors, key=lambda e: e.status):
        _add_problem(responses, error)
    return responses


def _add_problem(responses: Responses, error: type[AppError]) -> None:
    """One entry per status; every code that status may carry is named in its description
    and in `x-problem-codes` (which `api_v2.spec` turns into an enum on `code`)."""
    entry = responses.get(error.status)
    if entry is None:
        entry = responses[error.status] = {
            "model": Problem,
            "description": f"{error.title} (`{error.code}`)",
            "content": {PROBLEM_MEDIA_TYPE: {"example": problem_example(error.code, error.status)}},
            "x-problem-codes": [error.code],
        }
        if error.status == 401:
            entry["headers"] = {
                "WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}
            }
    else:
        _name_code(entry, error.code)


def _name_code(entry: dict[str, Any], code: str) -> None:
    """Add `code` to a response entry that documents other codes of its status."""
    if code not in entry.setdefault("x-problem-codes", []):
        entry["x-problem-codes"].append(code)
        entry["description"] = entry["description"].removesuffix(")") + f", `{code}`)"


VALIDATION_RESPONSE: Responses = {
    422: {
        "model": ValidationProblem,
        "description": "Request validation failed (`validation_error`)",
        "content": {PROBLEM_MEDIA_TYPE: {"example": problem_example("validation_error", 422)}},
        "x-problem-codes": ["validation_error"],
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
        "x-problem-codes": ["rate_limited"],
    }
}


class DocumentedRoute(APIRoute):
    """Summary from the docstring's first line, the rest as its description; and every
    problem the route can answer with, including those its dependencies imply
    (`api_v2.deps.IMPLIED_PROBLEMS`), a body limit, validation and rate limits."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # What every path this route matches starts with; all of it when it has no parameter.
        self.literal_prefix, brace, _ = path.partition("{")
        self.is_literal = not brace
        lines = (endpoint.__doc__ or "").strip().splitlines()
        if lines and kwargs.get("summary") is None:
            kwargs["summary"] = lines[0]
        super().__init__(path, endpoint, **kwargs)
        if lines and not kwargs.get("description"):
            # FastAPI would repeat the whole docstring; the summary already says line one.
            self.description = textwrap.dedent("\n".join(lines[1:])).strip()
        # The router's entries are shared between its routes: copy before adding.
        self.responses = copy.deepcopy(self.responses)
        dependants = [self.dependant, *_all_dependants(self.dependant)]
        # Each provider once, in order: FastAPI solves a shared sub-dependency once too.
        calls = list(dict.fromkeys(dep.call for dep in dependants[1:]))
        for call in calls:
            for error in IMPLIED_PROBLEMS.get(call, ()):  # type: ignore[arg-type]
                _add_problem(self.responses, error)
        if self.body_field is not None:
            _add_problem(self.responses, PayloadTooLarge)
        has_params = any(d.query_params or d.path_params or d.header_params for d in dependants)
        if self.body_field is not None or has_params:
            if 422 in self.responses:  # another 422 problem, such as a reused idempotency key
                _add_problem(self.responses, ValidationFailed)
            else:
                self.responses[422] = copy.deepcopy(VALIDATION_RESPONSE[422])
        limits = [call for call in calls if isinstance(call, RateLimit)]
        if limits:
            # `include_router` builds the route again from this one's description: say it once.
            said = [limit.describe() for limit in limits]
            said = [text for text in said if text not in self.description]
            self.description = "\n\n".join(filter(None, [self.description, *said]))
            own = self.responses.get(429, {}).get("x-problem-codes", [])  # e.g. too_many_streams
            self.responses = {**self.responses, **copy.deepcopy(RATE_LIMITED_RESPONSE)}
            for code in own:
                _name_code(self.responses[429], code)
        self.app = lean_app(self, self.app) or self.app

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """Starlette tries every route in order with a regex, on every request; most are
        refused here by a string comparison first."""
        if scope["type"] == "http":
            path = get_route_path(scope)
            prefix = self.literal_prefix
            if (path != prefix) if self.is_literal else not path.startswith(prefix):
                return Match.NONE, {}
        return super().matches(scope)


def _all_dependants(dependant: Dependant) -> list[Dependant]:
    found = []
    for dep in dependant.dependencies:
        found.append(dep)
        found.extend(_all_dependants(dep))
    return found


def operation_id(route: APIRoute) -> str:
    """The handler's own `verb_noun` name, which becomes the TS client's method name."""
    return route.name
