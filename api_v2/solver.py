"""A lean request path for the routes that need none of FastAPI's per-request generality.

FastAPI solves a route's dependencies anew on every request: for each dependant it parses
four parameter kinds (re-deriving each field's annotation shape), builds a sub-response, and
wraps the call in two exit stacks. A route whose dependencies are all plain `async def`
callables taking the request, scalar query/header/path parameters and other such dependencies
is solved here instead from a plan built once: the same calls, in the same order, with the
same cache keys, the same validation (each field's own `validate`) and the same
`RequestValidationError`. Anything else — a body, a generator dependency, `Response` or
`BackgroundTasks` parameters, security scopes, an active `app.dependency_overrides` — keeps
FastAPI's own handler. It reads FastAPI's `Dependant` and field helpers, so a FastAPI upgrade
is checked by `tests/platform/test_lean_routes.py`, which compares both paths' answers.
"""

import dataclasses
import functools
from collections.abc import Awaitable, Callable
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from fastapi._compat import ModelField, field_annotation_is_sequence, get_missing_field_error
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_validation_alias
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, serialize_response
from pydantic import BaseModel, Json
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Values = dict[str, Any]


_IMMUTABLE = (str, int, float, bool, type(None))
_UNSET = object()


@dataclass(frozen=True, slots=True)
class _Param:
    """One scalar parameter: where to read it, and how FastAPI would report it."""

    field: ModelField
    lookup: str
    loc: tuple[str, str]
    required: bool
    # FastAPI validates a missing parameter's default as it would a value; an immutable
    # default validates to the same thing every time, so that is done once, here.
    default: Any = _UNSET

    @classmethod
    def of(cls, field: ModelField, kind: str) -> "_Param":
        alias = get_validation_alias(field)
        param = cls(field, alias, (kind, alias), field.field_info.is_required())
        if param.required or not isinstance(field.default, _IMMUTABLE):
            return param
        default, errors = (None, []) if field.default is None else param._validate(field.default)
        return param if errors else dataclasses.replace(param, default=default)

    def _validate(self, raw: Any, values: Values | None = None) -> tuple[Any, list[Any]]:
        return self.field.validate(raw, values or {}, loc=self.loc)

    def read(self, received: Any, values: Values, errors: list[Any]) -> None:
        raw = received.get(self.lookup)
        if raw is None:
            if self.default is not _UNSET:
                values[self.field.name] = self.default
                return
            if self.required:
                errors.append(get_missing_field_error(loc=self.loc))
                return
            raw = deepcopy(self.field.default)
            if raw is None:
                values[self.field.name] = None
                return
        value, found = self._validate(raw, values)
        if found:
            errors.extend(found)
        else:
            values[self.field.name] = value


def _is_scalar(field: ModelField) -> bool:
    annotation = field.field_info.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return False
    is_json = any(type(item) is Json for item in field.field_info.metadata)
    return not is_json and not field_annotation_is_sequence(annotation)  # type: ignore[arg-type]


def _params(fields: list[ModelField], kind: str) -> list[_Param] | None:
    """Scalar parameters read as `request_params_to_args` reads them (header names were
    converted when the route was declared); None when one is not scalar."""
    params = []
    for field in fields:
        if not _is_scalar(field):
            return None
        params.append(_Param.of(field, kind))
    return params


@dataclass(frozen=True, slots=True)
class _Node:
    """One dependant: its sub-dependencies first, then its own parameters, then its call."""

    call: Callable[..., Awaitable[Any]]
    name: str | None
    cache_key: Any
    use_cache: bool
    request_param: str | None
    subs: tuple["_Node", ...]
    path: tuple[_Param, ...]
    query: tuple[_Param, ...]
    headers: tuple[_Param, ...]


def _node(dependant: Dependant) -> _Node | None:
    """The plan of a dependant, or None when it needs something only FastAPI's solver does."""
    if (
        dependant.body_params
        or dependant.cookie_params
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or dependant.is_gen_callable
        or dependant.is_async_gen_callable
        or not dependant.is_coroutine_callable
    ):
        return None
    subs = [_node(sub) for sub in dependant.dependencies]
    path = _params(dependant.path_params, "path")
    query = _params(dependant.query_params, "query")
    headers = _params(dependant.header_params, "header")
    if any(sub is None for sub in subs) or path is None or query is None or headers is None:
        return None
    assert dependant.call is not None
    return _Node(
        call=dependant.call,
        name=dependant.name,
        cache_key=dependant.cache_key,
        use_cache=dependant.use_cache,
        request_param=dependant.request_param_name,
        subs=tuple(s for s in subs if s is not None),
        path=tuple(path),
        query=tuple(query),
        headers=tuple(headers),
    )


async def _solve(node: _Node, request: Request, cache: dict[Any, Any]) -> tuple[Values, list[Any]]:
    """The arguments of `node.call`, as FastAPI's `solve_dependencies` would give them."""
    values: Values = {}
    errors: list[Any] = []
    for sub in node.subs:
        sub_values, sub_errors = await _solve(sub, request, cache)
        if sub_errors:
            errors.extend(sub_errors)
            continue
        if sub.use_cache and sub.cache_key in cache:
            solved = cache[sub.cache_key]
        else:
            solved = await sub.call(**sub_values)
        if sub.name is not None:
            values[sub.name] = solved
        cache.setdefault(sub.cache_key, solved)
    for params, received in (
        (node.path, request.path_params if node.path else None),
        (node.query, request.query_params if node.query else None),
        (node.headers, request.headers if node.headers else None),
    ):
        for param in params:
            param.read(received, values, errors)
    if node.request_param is not None:
        values[node.request_param] = request
    return values, errors


def lean_app(route: APIRoute, fallback: ASGIApp) -> ASGIApp | None:
    """An ASGI app for `route` that solves it from a plan, or None when it is not eligible."""
    if route.body_field is not None or route.status_code in (204, 304):
        return None
    plan = _node(route.dependant)
    if plan is None:
        return None
    status_code = route.status_code or 200
    # As FastAPI: a response model with the default class is dumped to JSON bytes at once.
    dump_json = route.response_field is not None and isinstance(
        route.response_class, DefaultPlaceholder
    )
    response_class = route.response_class
    if isinstance(response_class, DefaultPlaceholder):
        response_class = response_class.value
    serialize = functools.partial(
        serialize_response,
        field=route.response_field,
        include=route.response_model_include,
        exclude=route.response_model_exclude,
        by_alias=route.response_model_by_alias,
        exclude_unset=route.response_model_exclude_unset,
        exclude_defaults=route.response_model_exclude_defaults,
        exclude_none=route.response_model_exclude_none,
        dump_json=dump_json,
    )
    provider = route.dependency_overrides_provider

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if getattr(provider, "dependency_overrides", None):
            await fallback(scope, receive, send)  # a swapped provider: FastAPI's own solver
            return
        request = Request(scope, receive, send)
        values, errors = await _solve(plan, request, {})
        if errors:
            raise RequestValidationError(errors)
        result = await plan.call(**values)
        if isinstance(result, Response):
            response = result
        elif dump_json:
            content = await serialize(response_content=result)
            response = Response(content, status_code=status_code, media_type="application/json")
        else:
            response = response_class(await serialize(response_content=result), status_code)
        await response(scope, receive, send)

    return app
