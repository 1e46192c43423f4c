"""`edit_file(path, old, new)`: replace one exact, unique occurrence (cheap on big files)."""

from typing import cast

from backend.generation.agents.tools.base import Args, Tool, ToolContext


class EditFileArgs(Args):
    path: str
    old: str
    new: str


def edit_file(context: ToolContext, args: Args) -> str:
    call = cast(EditFileArgs, args)
    context.may_write(call.path)
    size = context.workspace.edit(call.path, call.old, call.new)
    return f"edited {call.path} ({size} bytes)"


TOOL = Tool(
    "edit_file",
    "Replace the one place in a file where `old` occurs exactly (it must occur once) by `new`.",
    EditFileArgs,
    edit_file,
)
