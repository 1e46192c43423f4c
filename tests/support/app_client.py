"""An HTTP client on the app in-process, with the app's lifespan running around it."""

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI


@asynccontextmanager
async def open_client(app: FastAPI, *, ready: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app, with the app's lifespan running around it.

    `ready`: wait until indexes exist, so no test races start-up (False for a database that
    is meant to be unreachable).
    """
    watchdog: asyncio.Task[None] | None = None
    try:
        async with app.router.lifespan_context(app):
            if ready:
                await asyncio.wait_for(app.state.resources.mongo.ready.wait(), 30)
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                try:
                    yield c
                finally:
                    watchdog = asyncio.create_task(report_if_stuck("app shutdown", 60))
    finally:
        if watchdog is not None:
            watchdog.cancel()


async def report_if_stuck(what: str, after_s: float) -> None:
    """Print every task's stack if `what` is still going on after `after_s` seconds: the
    test's timeout then fails it with the place it hangs in its captured output."""
    await asyncio.sleep(after_s)
    print(f"{what} still running after {after_s}s; tasks:")
    for task in asyncio.all_tasks():
        task.print_stack(file=sys.stdout)
