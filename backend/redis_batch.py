"""Auto-pipelining for one Lua script: the calls of an event-loop iteration share a round trip.

Every signed-in request runs the cache's lookup script once (`backend/cache/redis_backend.py`),
and redis-py's per-command path (pool checkout, a write, a read, the reply parsed, the
connection handed back) is paid per call. Calls made in the same loop iteration are sent as
one pipeline instead, sharing one checkout, one write and one read. A lone call goes straight
to the script.
"""

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

_Call = tuple[Sequence[Any], Sequence[Any], "asyncio.Future[Any]"]


class ScriptBatcher:
    """`await batcher(keys, args)` runs `script` as `await script(keys=keys, args=args)`
    would, in a pipeline with the other calls made in the same loop iteration."""

    def __init__(self, redis: Redis, script: AsyncScript) -> None:
        self._redis = redis
        self._script = script
        self._queued: list[_Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def __call__(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queued.append((keys, args, future))
        if len(self._queued) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._queued = self._queued, []
        # A task of its own: a caller cancelled meanwhile must not cancel the others' call.
        task = asyncio.create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Call]) -> None:
        try:
            if len(batch) == 1:
                keys, args, _ = batch[0]
                replies: list[Any] = [await self._script(keys=keys, args=args)]
            else:
                replies = await self._pipelined(batch)
        except Exception as exc:  # every caller sees the failure it would have seen alone
            replies = [exc] * len(batch)
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _pipelined(self, batch: list[_Call]) -> list[Any]:
        sha = self._script.sha
        async with self._redis.pipeline(transaction=False) as pipe:
            for keys, args, _ in batch:
                pipe.evalsha(sha, len(keys), *keys, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        for n, reply in enumerate(replies):
            if isinstance(reply, NoScriptError):  # never ran: Redis was restarted or flushed
                keys, args, _ = batch[n]
                replies[n] = await self._script(keys=keys, args=args)  # loads it, then runs
        return replies
