"""`cached` and `cached_json`: cache an async service method by scope and arguments."""

import functools
import hashlib
import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import orjson
from pydantic import TypeAdapter

from backend.cache.core import Cache
from backend.cache.entries import CacheEntry

T = TypeVar("T")


class HasCache(Protocol):
    """An object whose methods `cached` wraps: the cache they read through is its own."""

    cache: Cache


def _digest(key_value: object) -> str:
    # orjson, not `json`: every cached call is digested, several per signed-in request.
    text = orjson.dumps(key_value, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(text).hexdigest()[:32]


class _CachedCall:
    """What `cached` and `cached_json` share: the key of a call from its arguments."""

    def __init__(
        self,
        entry: CacheEntry,
        method: Callable[..., Awaitable[Any]],
        scope: Callable[..., str],
        key: Callable[..., object] | None,
    ) -> None:
        self.entry = entry
        self.method = method
        self.signature = inspect.signature(method)
        self.scope = scope
        self.key = key
        parameters = list(self.signature.parameters.values())[1:]
        self.names = [p.name for p in parameters]
        self.defaults = {p.name: p.default for p in parameters if p.default is not p.empty}
        # Plain named parameters only: then a call's arguments are found without `bind`.
        self.is_plain = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters)

    @functools.cached_property
    def adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(typing.get_type_hints(self.method)["return"])

    def locate(self, *args: Any, **kwargs: Any) -> tuple[str, str]:
        """(scope, argument digest) of a call, `self` included in `args`."""
        positional = args[1:]
        arguments = {**self.defaults, **dict(zip(self.names, positional, strict=False)), **kwargs}
        exact = len(positional) <= len(self.names) and len(arguments) == len(self.names)
        if not (self.is_plain and exact):
            bound = self.signature.bind(*args, **kwargs)  # raises what the call would
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            arguments.pop(next(iter(self.signature.parameters)))
        key_value = self.key(**arguments) if self.key is not None else arguments
        return self.scope(**arguments), _digest(key_value)

    def stem(self, **arguments: Any) -> tuple[str, str]:
        """(scope, stem) of a call by its arguments without `self`: what `prefetch` takes."""
        scope, digest = self.locate(None, **arguments)
        return scope, f"{self.entry.name}:{digest}"


def _decorator(
    entry: CacheEntry,
    scope: Callable[..., str],
    key: Callable[..., object] | None,
    as_json: bool,
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    def decorate(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        call = _CachedCall(entry, method, scope, key)

        @functools.wraps(method)
        async def wrapper(self: HasCache, *args: Any, **kwargs: Any) -> Any:
            scope_name, digest = call.locate(self, *args, **kwargs)
            fetch = self.cache.get_or_compute_json if as_json else self.cache.get_or_compute
            return await fetch(
                entry, scope_name, digest, lambda: method(self, *args, **kwargs), call.adapter
            )

        wrapper.cached_call = call  # type: ignore[attr-defined]
        return wrapper

    return decorate


def cached(
    entry: CacheEntry,
    *,
    scope: Callable[..., str],
    key: Callable[..., object] | None = None,
) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T]]]:
    """Cache an async service method (whose object has `.cache`) by scope and arguments.

    `scope` and `key` receive the method's arguments by name (without `self`); the key
    defaults to all of them, so every argument that changes the result is in it. The wrapper's
    `cached_call.stem(**arguments)` names the entry a call reads, for `Cache.prefetch`.
    """
    return _decorator(entry, scope, key, as_json=False)


def cached_json(
    entry: CacheEntry,
    *,
    scope: Callable[..., str],
    key: Callable[..., object] | None = None,
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[bytes]]]:
    """`cached`, answering the JSON of the method's result: a hit is the stored bytes, so a
    handler can send it without parsing and re-serialising (`api_v2.routing.JSONBytes`)."""
    return _decorator(entry, scope, key, as_json=True)
