"""`read_file(path)`: one file's content, marked as data, not instructions."""

from typing import cast

from backend.generation.agents.tools.base import Args, Tool, ToolContext


class ReadFileArgs(Args):
    path: str


def read_file(context: ToolContext, args: Args) -> str:
    path = cast(ReadFileArgs, args).path
    content = context.workspace.read(path)
    return f'<file path="{path}" trust="untrusted-data">\n{content}\n</file>'


TOOL = Tool("read_file", "Read one file of the project.", ReadFileArgs, read_file)
