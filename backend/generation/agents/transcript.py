"""A role's conversation with the model, kept under a token budget.

Tokens are estimated from bytes, calibrated by the provider's own count: each answer reports
how many prompt tokens the request was (`usage.prompt_tokens`), so after the first call the
estimate uses the larger of that observed rate and one token per four bytes; before it, one
per three bytes (above what English and code take, so the first call errs on the safe side).
A tokenizer library would need each model family's vocabulary, which this machine cannot
download; the provider's count is exact for the provider that bills us.

Before every call, while the estimate is over the budget, the oldest material goes first:
tool results (replaced by a marker saying how to get them again), then long string arguments
of the model's own earlier tool calls (a written file's content). The system prompt and the
brief (the request and the project's context) always stay, and so does the latest exchange.
"""

import json
from typing import Any

DEFAULT_TOKENS_PER_BYTE = 1 / 3
MIN_TOKENS_PER_BYTE = 1 / 4
KEPT_LONG_ARGUMENT_CHARS = 200
EVICTED = "[evicted to keep the prompt within its budget: call the tool again if you need it]"


class Transcript:
    def __init__(self, messages: list[dict[str, Any]], budget_tokens: int) -> None:
        self.messages = messages
        self.budget_tokens = budget_tokens
        self.tokens_per_byte = DEFAULT_TOKENS_PER_BYTE
        self.evicted = 0

    def size(self) -> int:
        """The request's messages in bytes, as they are sent."""
        return len(json.dumps(self.messages, ensure_ascii=False).encode())

    def estimate(self) -> int:
        return int(self.size() * self.tokens_per_byte) + 1

    def observe(self, sent_bytes: int, prompt_tokens: int) -> None:
        """The provider's count for a request of `sent_bytes`."""
        if sent_bytes > 0 and prompt_tokens > 0:
            self.tokens_per_byte = max(prompt_tokens / sent_bytes, MIN_TOKENS_PER_BYTE)

    def fit(self) -> int:
        """Evict the oldest material until the estimate is within the budget; the estimate."""
        estimate = self.estimate()
        # 0: system prompt, 1: brief; the last assistant turn and its results stay.
        last_assistant = max(
            (i for i, m in enumerate(self.messages) if m["role"] == "assistant"), default=1
        )
        for index in range(2, last_assistant):
            if estimate <= self.budget_tokens:
                break
            if self._evict(self.messages[index]):
                self.evicted += 1
                estimate = self.estimate()
        return estimate

    @staticmethod
    def _evict(message: dict[str, Any]) -> bool:
        if message["role"] == "tool":
            if message["content"] == EVICTED:
                return False
            message["content"] = EVICTED
            return True
        changed = False
        for call in message.get("tool_calls") or []:
            function = call["function"]
            try:
                arguments = json.loads(function["arguments"] or "{}")
            except json.JSONDecodeError:
                arguments = None
            if not isinstance(arguments, dict):
                if len(function["arguments"]) > KEPT_LONG_ARGUMENT_CHARS:
                    function["arguments"] = "{}"
                    changed = True
                continue
            for key, value in arguments.items():
                if isinstance(value, str) and len(value) > KEPT_LONG_ARGUMENT_CHARS:
                    arguments[key] = f"[evicted: {len(value)} characters]"
                    changed = True
            if changed:
                function["arguments"] = json.dumps(arguments, ensure_ascii=False)
        return changed


def capped(text: str, limit: int) -> str:
    """A tool result of at most `limit` characters, with a marker when it was cut."""
    if len(text) <= limit:
        return text
    return (
        f"{text[:limit]}\n[truncated: the result was {len(text)} characters; this shows the "
        f"first {limit}. read_file takes `offset` and `limit` to read a file in parts]"
    )
