"""`read_file(path)`: one file's content, marked as data, not instructions."""

import json
from typing import cast

from backend.generation.agents.tools.base import Args, Tool, ToolContext
from backend.generation.agents.untrusted import fenced


class ReadFileArgs(Args):
    path: str


def read_file(context: ToolContext, args: Args) -> str:
    path = cast(ReadFileArgs, args).path
    content = context.workspace.read(path)
    return fenced(f"The file {json.dumps(path)}", content)


TOOL = Tool("read_file", "Read one file of the project.", ReadFileArgs, read_file)
