"""What an agentic job sends the model stays bounded however much it reads: tool results are
capped with a marker, older ones are evicted first, the system prompt and request stay."""

import json
from collections.abc import Callable

import httpx
import pytest

from backend.config import Settings
from backend.generation.agents.transcript import EVICTED
from tests.support.factories import signed_up
from tests.support.jobs import finished
from tests.support.llm import Reply, ScriptedLLM, call, llm_settings

AGENTIC = "/api/v2/generate/agentic"
CATALOGUE = [{"id": "test/coder", "provider": "test", "kinds": ["agentic"], "plans": ["free"]}]
BUDGET_TOKENS = 4000
RESULT_CHARS = 5000
BIG = "".join(f"line {i:07d} of a large generated file\n" for i in range(26_000))  # ~1 MiB


@pytest.fixture
def settings(make_settings: Callable[..., Settings], llm: ScriptedLLM) -> Settings:
    return llm_settings(make_settings, llm, CATALOGUE).model_copy(
        update={"agent_context_tokens_free": BUDGET_TOKENS,
                "agent_tool_result_max_chars": RESULT_CHARS}
    )  # fmt: skip


def sent_bytes(request: dict) -> int:  # type: ignore[type-arg]
    return len(json.dumps(request["messages"], ensure_ascii=False).encode())


async def test_a_job_reading_large_files_keeps_every_request_bounded(
    client: httpx.AsyncClient, llm: ScriptedLLM
) -> None:
    _, alice = await signed_up(client)
    body = {"name": "Big", "files": [{"path": "big.txt", "content": BIG[:1_000_000]}]}
    project = (await client.post("/api/v2/projects", json=body, headers=alice)).json()
    reads = [Reply(calls=[call("read_file", path="big.txt", offset=i * 20_000)]) for i in range(18)]
    llm.reset(*reads, Reply(calls=[call("finish", summary="planned")]),
              Reply(calls=[call("finish", summary="nothing to build")]))  # fmt: skip
    response = await client.post(
        AGENTIC, json={"prompt": "Summarise big.txt", "project_id": project["id"]}, headers=alice
    )
    job = await finished(client, alice, response.json()["id"])
    assert job["status"] == "succeeded", job
    architect = llm.requests[:19]
    sizes = [sent_bytes(r) for r in architect]
    # The budget is 4,000 tokens; before the provider's count is known a byte is a third of a
    # token, after it (this server reports 100 tokens) a quarter: at most 16 KB of prompt,
    # plus the latest exchange, which always stays.
    assert max(sizes) < 4 * BUDGET_TOKENS + RESULT_CHARS + 3000, sizes
    assert max(sizes[5:]) < 2 * min(sizes[5:]), sizes  # flat, not growing with each read
    last = architect[-1]["messages"]
    assert last[0]["role"] == "system" and "Summarise big.txt" in last[1]["content"]
    results = [m["content"] for m in last if m["role"] == "tool"]
    assert results[0] == EVICTED and results[-1] != EVICTED
    assert "characters 340000-345000 of 1000000 (read on with offset=345000)" in results[-1]


async def test_a_large_result_is_capped_with_a_marker(
    client: httpx.AsyncClient, llm: ScriptedLLM
) -> None:
    _, alice = await signed_up(client)
    files = [{"path": f"f{i:03d}-{'x' * 100}.txt", "content": "x"} for i in range(100)]
    project = (await client.post("/api/v2/projects", json={"name": "Many", "files": files},
                                 headers=alice)).json()  # fmt: skip
    llm.reset(
        Reply(calls=[call("list_files"), call("read_file", path="f000-" + "x" * 100 + ".txt")]),
        Reply(calls=[call("finish", summary="planned")]),
        Reply(calls=[call("finish", summary="done")]),
    )
    response = await client.post(
        AGENTIC, json={"prompt": "x", "project_id": project["id"]}, headers=alice
    )
    await finished(client, alice, response.json()["id"])
    listing, read = [m["content"] for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert len(listing) < RESULT_CHARS + 300
    assert listing.endswith("read_file takes `offset` and `limit` to read a file in parts]")
    assert "truncated: the result was" in listing
    assert read.endswith('"x"')  # a small file is read whole, with no marker
