"""`finish(summary)`: this role is done; the summary is what the next role and the user read.

The architect may add `integrations` (e.g. ["stripe", "email"]): the integration specialist
runs only when that list is not empty."""

from typing import cast

from pydantic import Field

from backend.generation.agents.tools.base import Args, Tool, ToolContext


class FinishArgs(Args):
    summary: str = Field(min_length=1, max_length=4000)
    integrations: list[str] = Field(default_factory=list, max_length=20)


def finish(context: ToolContext, args: Args) -> str:
    call = cast(FinishArgs, args)
    context.finished = call.summary
    context.integrations = call.integrations
    return "done"


TOOL = Tool("finish", "Say you are done, with a short summary of what you did.", FinishArgs, finish)
