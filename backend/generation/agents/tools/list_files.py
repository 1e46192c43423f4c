"""`list_files()`: every path in the project, with its size, fenced as data."""

from backend.generation.agents.tools.base import Args, Tool, ToolContext
from backend.generation.agents.untrusted import fenced


class ListFilesArgs(Args):
    pass


def list_files(context: ToolContext, args: Args) -> str:
    files = context.workspace.files
    if not files:
        return "(the project has no files yet)"
    listing = "\n".join(f"{path} ({len(files[path].encode())} bytes)" for path in sorted(files))
    return fenced("The project's files", listing)


TOOL = Tool("list_files", "List the project's files and their sizes.", ListFilesArgs, list_files)
