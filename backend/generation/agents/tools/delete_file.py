"""`delete_file(path)`."""

from typing import cast

from backend.generation.agents.tools.base import Args, Tool, ToolContext


class DeleteFileArgs(Args):
    path: str


def delete_file(context: ToolContext, args: Args) -> str:
    path = cast(DeleteFileArgs, args).path
    context.may_write(path)
    context.workspace.delete(path)
    return f"deleted {path}"


TOOL = Tool("delete_file", "Delete a file of the project.", DeleteFileArgs, delete_file)
