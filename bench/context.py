"""Prompt bytes per model call over a long agentic job that reads large files, with the
bounded context (this build's defaults) and without it (budget and result caps set so high
they never act: what every job sent before issue #30).

The project holds eight files of 250 KiB; the architect makes 40 calls, each reading a
file from a different offset, then finishes. The scripted model server records every
request; the figure is the size of each request's messages.

Usage: python -m bench.context
"""

import json
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx

from backend.dev import local_database
from bench.agentic import _env, _headers, _wait
from bench.server import api_server
from tests.support.llm import Reply, ScriptedLLM, call
from tests.support.servers import free_port

CALLS = 40
FILES = 8
CONTENT = "".join(f"line {i:07d} of a large generated file\n" for i in range(6_600))[:256_000]
UNBOUNDED = {
    "AGENT_CONTEXT_TOKENS_FREE": "100000000",
    "AGENT_TOOL_RESULT_MAX_CHARS": "1000000",
    "LLM_MODELS": json.dumps([{"id": "bench/model", "provider": "bench", "kinds": ["agentic"],
                               "plans": ["free"], "context_window": 100_000_000}]),
}  # fmt: skip


def one_job(base: str, headers: dict[str, str], llm: ScriptedLLM) -> list[int]:
    with httpx.Client(base_url=base, timeout=60, headers=headers) as client:
        files = [{"path": f"data/part{n}.txt", "content": CONTENT} for n in range(FILES)]
        project = client.post("/api/v2/projects", json={"name": "Big"}).json()
        for file in files:
            assert client.put(f"/api/v2/projects/{project['id']}/files", json=file).is_success
        reads = [
            Reply(calls=[call("read_file", path=f"data/part{n % FILES}.txt",
                              offset=(n // FILES) * 32_000)])
            for n in range(CALLS - 1)
        ]  # fmt: skip
        llm.reset(*reads, Reply(calls=[call("finish", summary="read")]),
                  Reply(calls=[call("finish", summary="nothing to build")]))  # fmt: skip
        body = {"prompt": "Read the data", "project_id": project["id"]}
        job = client.post("/api/v2/generate/agentic", json=body).json()
    done = _wait(base, headers, str(job["id"]))
    assert done["status"] == "succeeded", done
    return [len(json.dumps(r["messages"]).encode()) for r in llm.requests[:CALLS]]


def run(extra: dict[str, str]) -> list[int]:
    llm = ScriptedLLM().start()
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            local_database(Path(tmp), free_port()) as url,
            api_server(free_port(), {**_env(url, llm), **extra}) as base,
        ):
            return one_job(base, _headers(base), llm)
    finally:
        llm.server.stop()


def describe(sizes: list[int]) -> str:
    picks = ", ".join(f"#{i + 1}: {sizes[i] / 1024:,.0f} KiB" for i in (0, 1, 9, 19, 29, 39))
    return f"{picks}; max/min over calls 5-40: {max(sizes[4:]) / min(sizes[4:]):.2f}x"


def main() -> None:
    before, after = run(UNBOUNDED), run({})
    print(f"{datetime.now(UTC):%Y-%m-%d} · {platform.machine()} · {CALLS} calls, "
          f"{FILES} files of 250 KiB")  # fmt: skip
    print(f"unbounded (before): {describe(before)}")
    print(f"bounded (defaults): {describe(after)}")


if __name__ == "__main__":
    main()
