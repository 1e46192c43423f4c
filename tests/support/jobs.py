"""Generation jobs through the API: submit one, read its event stream, follow it to its end."""

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.support.specs import SPEC

FULLSTACK = "/api/v2/generate/fullstack"
JOBS = "/api/v2/generate/jobs"


async def submit(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    spec: dict[str, Any] | None = None,
    key: str | None = None,
) -> httpx.Response:
    extra = {"Idempotency-Key": key} if key else {}
    return await client.post(FULLSTACK, json=spec or SPEC, headers={**headers, **extra})


async def events(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    job_id: str,
    last: int | None = None,
    *,
    stop_after: int | None = None,
) -> list[dict[str, Any]]:
    """The job's SSE stream parsed into events (until it ends, or `stop_after` events)."""
    extra = {"Last-Event-ID": str(last)} if last is not None else {}
    found: list[dict[str, Any]] = []
    async with client.stream(
        "GET", f"{JOBS}/{job_id}/events", headers={**headers, **extra}, timeout=60
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for event in parse_sse(response.aiter_lines()):
            found.append(event)
            if stop_after is not None and len(found) >= stop_after:
                break
    return found


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    event: dict[str, Any] = {}
    async for line in lines:
        if not line:
            if "data" in event:
                yield event
            event = {}
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            event[name] = json.loads(value) if name == "data" else value


async def finished(client: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> dict:
    """Follow the job to its end; the job as it then is."""
    await events(client, headers, job_id)
    return dict((await client.get(f"{JOBS}/{job_id}", headers=headers)).json())
