"""A small OpenAI-compatible chat-completions server the suite starts: scripted replies,
streamed as the real API streams them, every request recorded."""

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from backend.config import Settings
from tests.support.servers import ThreadedServer
from tests.support.settings import FAST_JOBS, GENEROUS_LIMITS


@dataclass
class Reply:
    """One answer: text (in `pieces`), tool calls `(name, arguments)`, or an HTTP error."""

    text: str = ""
    calls: list[tuple[str, Any]] = field(default_factory=list)
    status: int = 200
    retry_after: str | None = None
    hang: bool = False
    pieces: int = 1
    delay_s: float = 0.0
    prompt_tokens: int = 100
    completion_tokens: int = 20
    stamp: bool = False  # replace `{t}` in each piece by the time it is sent (benchmarks)


def call(name: str, **arguments: Any) -> tuple[str, Any]:
    return name, arguments


class ScriptedLLM:
    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.disconnected = threading.Event()
        self.server = ThreadedServer(
            Starlette(routes=[Route("/v1/chat/completions", self.complete, methods=["POST"])])
        )

    @property
    def url(self) -> str:
        return f"{self.server.url}/v1"

    def start(self) -> "ScriptedLLM":
        self.server.start()
        return self

    def reset(self, *replies: Reply) -> None:
        self.script, self.requests = list(replies), []
        self.disconnected.clear()

    async def complete(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        reply = self.script.pop(0) if self.script else Reply(status=500)
        if reply.status != 200:
            headers = {"retry-after": reply.retry_after} if reply.retry_after else {}
            error = {"error": {"message": "scripted failure", "type": "server_error"}}
            return JSONResponse(error, status_code=reply.status, headers=headers)
        return StreamingResponse(self._stream(body, reply), media_type="text/event-stream")

    async def _stream(self, body: dict[str, Any], reply: Reply) -> Any:
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                "model": body["model"]}  # fmt: skip

        def chunk(**payload: Any) -> str:
            return f"data: {json.dumps({**base, **payload})}\n\n"

        try:
            if reply.hang:
                await asyncio.sleep(3600)
            size = max(len(reply.text) // reply.pieces, 1)
            for start in range(0, len(reply.text), size):
                piece = reply.text[start : start + size]
                if reply.stamp:
                    piece = piece.replace("{t}", f"{time.time():.6f}")
                yield chunk(choices=[{"index": 0, "delta": {"content": piece},
                                      "finish_reason": None}])  # fmt: skip
                await asyncio.sleep(reply.delay_s)
            for index, (name, arguments) in enumerate(reply.calls):
                raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
                function = {"name": name, "arguments": raw}
                tool_call = {"index": index, "id": f"call_{len(self.requests)}_{index}",
                             "type": "function", "function": function}  # fmt: skip
                delta = {"tool_calls": [tool_call]}
                yield chunk(choices=[{"index": 0, "delta": delta, "finish_reason": None}])
            finish = "tool_calls" if reply.calls else "stop"
            yield chunk(choices=[{"index": 0, "delta": {}, "finish_reason": finish}])
            usage = {"prompt_tokens": reply.prompt_tokens,
                     "completion_tokens": reply.completion_tokens,
                     "total_tokens": reply.prompt_tokens + reply.completion_tokens}  # fmt: skip
            yield chunk(choices=[], usage=usage)
            yield "data: [DONE]\n\n"
        except asyncio.CancelledError:
            self.disconnected.set()
            raise

    def system_prompts(self) -> list[str]:
        return [r["messages"][0]["content"] for r in self.requests]

    def offered_tools(self, index: int) -> list[str]:
        return [tool["function"]["name"] for tool in self.requests[index].get("tools", [])]


def llm_settings(
    make_settings: Callable[..., Settings], llm: "ScriptedLLM", catalogue: list[dict[str, Any]]
) -> Settings:
    """An app whose jobs run in process against the scripted model server."""
    return make_settings(
        redis_url=None,
        **GENEROUS_LIMITS,
        **FAST_JOBS,
        llm_base_url=llm.url,
        llm_api_key="test-key",
        llm_timeout_s=2,
        llm_max_retries=2,
        llm_default_model="test/coder",
        llm_models=catalogue,
    )
