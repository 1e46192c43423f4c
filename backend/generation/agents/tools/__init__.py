"""The agents' tools, one module each; `TOOLS` by name."""

from backend.generation.agents.tools import (
    delete_file,
    edit_file,
    finish,
    list_files,
    read_file,
    run_tests,
    write_file,
)
from backend.generation.agents.tools.base import Tool

TOOLS: dict[str, Tool] = {
    module.TOOL.name: module.TOOL
    for module in (list_files, read_file, write_file, edit_file, delete_file, run_tests, finish)
}
