"""The agentic job's own overhead, with a scripted model server that answers at once.

- Job steps per second: one job whose developer makes 60 model calls (each a `write_file`),
  run inside the API process (no Redis: the API is the one worker). Every step is a streamed
  model call, a tool call on the workspace and a few job writes.
- Streamed text to SSE: the model server streams text chunks 20 ms apart, each carrying its
  send time; an SSE client measures when each chunk's text arrives in a `message` event
  (events are coalesced every ~100 ms, which is part of the figure).

Usage: python -m bench.agentic
"""

import asyncio
import json
import platform
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from backend.dev import local_database
from bench.server import api_server
from tests.support.llm import Reply, ScriptedLLM, call
from tests.support.servers import free_port

PASSWORD = "Bench-Pass-123"
STEPS = 60
CHUNKS = 100


def _env(url: str, llm: ScriptedLLM) -> dict[str, str]:
    return {
        "MONGODB_URL": url, "MONGODB_DB": "bench_agentic", "LOG_LEVEL": "warning",
        "LLM_BASE_URL": llm.url, "LLM_API_KEY": "bench", "LLM_DEFAULT_MODEL": "bench/model",
        "LLM_MODELS": json.dumps([{"id": "bench/model", "provider": "bench",
                                   "kinds": ["agentic"], "plans": ["free"]}]),
        "AGENT_MAX_CALLS": "1000", "AGENT_MAX_STEPS_PER_ROLE": "500",
        "AGENT_MAX_OUTPUT_TOKENS_FREE": "100000000", "QUOTA_FREE": "1000",
        "RATE_LIMIT_GENERATE_AGENTIC": "100000/minute",
        "RATE_LIMIT_DEFAULT_USER": "100000000/minute",
    }  # fmt: skip


def _headers(base: str) -> dict[str, str]:
    with httpx.Client(base_url=base, timeout=30) as client:
        body = {"email": "agent@example.com", "password": PASSWORD}
        client.post("/api/v2/auth/register", json=body)
        token = client.post("/api/v2/auth/login", json=body).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}


def _wait(base: str, headers: dict[str, str], job_id: str) -> dict[str, object]:
    with httpx.Client(base_url=base, timeout=30) as client:
        while True:
            job = client.get(f"/api/v2/generate/jobs/{job_id}", headers=headers).json()
            if job["status"] not in ("queued", "running"):
                return dict(job)
            time.sleep(0.01)


def steps_per_second(base: str, headers: dict[str, str], llm: ScriptedLLM) -> float:
    writes = [
        Reply(calls=[call("write_file", path=f"app/m{n}.py", content=f"x = {n}\n")])
        for n in range(STEPS - 1)
    ]
    llm.reset(
        Reply(calls=[call("finish", summary="plan")]),
        *writes,
        Reply(calls=[call("finish", summary="built")]),
    )
    started = time.monotonic()
    job = httpx.post(f"{base}/api/v2/generate/agentic", json={"prompt": "bench"},
                     headers=headers).json()  # fmt: skip
    done = _wait(base, headers, str(job["id"]))
    assert done["status"] == "succeeded", done
    return (STEPS + 1) / (time.monotonic() - started)


async def chunk_latency(base: str, headers: dict[str, str], llm: ScriptedLLM) -> list[float]:
    text = "".join(f"<{{t}}{n:03d}>" for n in range(CHUNKS))
    llm.reset(
        Reply(text=text, pieces=CHUNKS, delay_s=0.02, stamp=True),
        Reply(calls=[call("finish", summary="plan")]),
        Reply(calls=[call("finish", summary="built")]),
    )
    delays: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        job = (await client.post("/api/v2/generate/agentic", json={"prompt": "bench"},
                                 headers=headers)).json()  # fmt: skip
        url = f"/api/v2/generate/jobs/{job['id']}/events"
        async with client.stream("GET", url, headers=headers) as response:
            async for line in response.aiter_lines():
                if line.startswith("data:") and '"text"' in line:
                    now = time.time()
                    sent = re.findall(r"<(\d+\.\d{6})\d{3}>", json.loads(line[5:])["text"])
                    delays.extend((now - float(stamp)) * 1000 for stamp in sent)
                if line.startswith("event: done") or line.startswith("event: error"):
                    break
    return sorted(delays)


def main() -> None:
    llm = ScriptedLLM().start()
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            local_database(Path(tmp), free_port()) as url,
            api_server(free_port(), _env(url, llm)) as base,
        ):
            headers = _headers(base)
            steps_per_second(base, headers, llm)  # warm-up
            rate = statistics.median(steps_per_second(base, headers, llm) for _ in range(3))
            delays = asyncio.run(chunk_latency(base, headers, llm))
    finally:
        llm.server.stop()
    print(f"{datetime.now(UTC):%Y-%m-%d} · {platform.machine()} · API with in-process jobs, "
          "secantusd-py on disk, scripted model server answering at once")  # fmt: skip
    print(f"job steps: {rate:.1f} model calls/s on one worker (median of 3 jobs of {STEPS + 1})")
    p50, p99 = statistics.median(delays), delays[int(len(delays) * 0.99) - 1]
    print(f"streamed chunk → SSE message: {len(delays)} chunks, p50 {p50:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
