"""`read_file(path, offset, limit)`: a file's content (or a part of a large one), marked as
data, not instructions."""

import json
from typing import cast

from pydantic import Field

from backend.generation.agents.tools.base import Args, Tool, ToolContext
from backend.generation.agents.untrusted import fenced


class ReadFileArgs(Args):
    path: str
    offset: int = Field(default=0, ge=0, description="The first character to read")
    limit: int | None = Field(
        default=None, ge=1, description="How many characters to read (capped by the tool)"
    )


def read_file(context: ToolContext, args: Args) -> str:
    call = cast(ReadFileArgs, args)
    content = context.workspace.read(call.path)
    end = min(call.offset + min(call.limit or context.read_limit, context.read_limit), len(content))
    label = f"The file {json.dumps(call.path)}"
    if call.offset or end < len(content):
        label += f", characters {call.offset}-{end} of {len(content)}"
        if end < len(content):
            label += f" (read on with offset={end})"
    return fenced(label, content[call.offset : end])


TOOL = Tool(
    "read_file",
    "Read one file of the project; a large one in parts (offset, limit in characters).",
    ReadFileArgs,
    read_file,
)
