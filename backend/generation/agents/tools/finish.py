"""`finish(summary)`: this role is done; the summary is what the next role and the user read.

The architect may add `integrations`, names from a fixed list (the ones the integration
specialist knows how to add): it runs only when that list is not empty. A closed list keeps
the architect from passing free text to it as instructions."""

import shlex
from typing import Literal, cast

from pydantic import Field, field_validator

from backend.generation.agents.tools.base import Args, Tool, ToolContext
from backend.generation.agents.workspace import ToolError

Integration = Literal["stripe", "oauth", "email", "object_storage", "chat_webhooks"]


class FinishArgs(Args):
    summary: str = Field(min_length=1, max_length=4000)
    integrations: list[Integration] = Field(
        default_factory=list,
        max_length=20,
        description="Architect only: the third-party integrations the plan needs (Stripe "
        "payments, OAuth sign-in, email, S3-compatible object storage, chat webhooks).",
    )

    test_command: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Architect only: the command that runs the project's tests in its root "
        "(default: python -m pytest).",
    )

    @field_validator("test_command")
    @classmethod
    def _one_command(cls, command: str | None) -> str | None:
        if command is not None:
            try:
                words = shlex.split(command)
            except ValueError as exc:
                raise ValueError(f"not a command line: {exc}") from None
            if not words:
                raise ValueError("empty command")
        return command

    @field_validator("integrations")
    @classmethod
    def _once_each(cls, integrations: list[Integration]) -> list[Integration]:
        return list(dict.fromkeys(integrations))


def finish(context: ToolContext, args: Args) -> str:
    call = cast(FinishArgs, args)
    if context.verification is not None and (refused := context.verification.refusal()):
        raise ToolError(f"not finished: {refused}")
    context.finished = call.summary
    context.integrations = list(call.integrations)
    context.test_command = call.test_command
    return "done"


TOOL = Tool("finish", "Say you are done, with a short summary of what you did.", FinishArgs, finish)
