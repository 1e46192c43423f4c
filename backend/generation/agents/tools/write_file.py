"""`write_file(path, content)`: create or replace a whole file."""

from typing import cast

from backend.generation.agents.tools.base import Args, Tool, ToolContext


class WriteFileArgs(Args):
    path: str
    content: str


def write_file(context: ToolContext, args: Args) -> str:
    call = cast(WriteFileArgs, args)
    context.may_write(call.path)
    size = context.workspace.write(call.path, call.content)
    return f"wrote {call.path} ({size} bytes)"


TOOL = Tool(
    "write_file",
    "Create a file or replace all of it. For a small change to a large file use edit_file.",
    WriteFileArgs,
    write_file,
)
