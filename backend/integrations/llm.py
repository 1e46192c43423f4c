"""Any OpenAI-compatible chat-completions API, through the official `openai` SDK.

The SDK does the retrying (429 and 5xx, with backoff, honouring `Retry-After`) and the
timeouts; this adapter streams one model turn: text as it arrives, tool calls assembled from
their chunks, token usage at the end. Whatever the provider does after the SDK gave up is
`LLMUnavailable`.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import openai
from openai import AsyncOpenAI

from backend.config import Settings


class LLMUnavailable(Exception):
    """The provider failed, refused or did not answer in time, after the SDK's retries."""


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass
class Turn:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None


class LLMClient:
    def __init__(self, settings: Settings) -> None:
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
        self.client = AsyncOpenAI(
            base_url=settings.llm_base_url,
            api_key=key,
            timeout=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
        )

    async def turn(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        max_tokens: int,
        on_text: Callable[[str], Awaitable[None]],
    ) -> Turn:
        """One streamed completion; `on_text` sees the text as it arrives."""
        turn = Turn()
        calls: dict[int, dict[str, str]] = {}
        try:
            # Plain dicts for messages and tools: the SDK's TypedDicts describe the same JSON.
            stream = await self.client.chat.completions.create(  # type: ignore[call-overload]
                model=model,
                messages=messages,
                tools=tools,
                max_tokens=max_tokens,
                stream=True,
                stream_options={"include_usage": True},
            )
            async with stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        turn.prompt_tokens = chunk.usage.prompt_tokens
                        turn.completion_tokens = chunk.usage.completion_tokens
                    for choice in chunk.choices:
                        delta = choice.delta
                        if delta.content:
                            turn.text += delta.content
                            await on_text(delta.content)
                        for call in delta.tool_calls or []:
                            slot = calls.setdefault(call.index, {"id": "", "name": "", "args": ""})
                            slot["id"] = call.id or slot["id"]
                            if call.function is not None:
                                slot["name"] += call.function.name or ""
                                slot["args"] += call.function.arguments or ""
                        turn.finish_reason = choice.finish_reason or turn.finish_reason
        except openai.APIError as exc:
            raise LLMUnavailable(f"{type(exc).__name__}: {exc}"[:300]) from exc
        turn.tool_calls = [
            ToolCall(id=slot["id"] or f"call_{index}", name=slot["name"], arguments=slot["args"])
            for index, slot in sorted(calls.items())
        ]
        return turn

    async def close(self) -> None:
        await self.client.close()
