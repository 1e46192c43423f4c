"""The squad's three roles: who they are, what they may do, in which order."""

from dataclasses import dataclass
from pathlib import Path

PROMPTS = Path(__file__).parent / "prompts"
# The architect's plan: exact names, as a prefix would admit `openapi.yaml.py` (#28), or
# anything under `docs/`.
PLAN_FILES = frozenset({"openapi.yaml", "openapi.json"})
PLAN_DIR = "docs/"
ALL_TOOLS = (
    "list_files",
    "read_file",
    "write_file",
    "edit_file",
    "delete_file",
    "run_tests",
    "finish",
)


@dataclass(frozen=True)
class Role:
    name: str
    stage: str
    tools: tuple[str, ...]
    plan_only: bool = False

    def system_prompt(self) -> str:
        return (PROMPTS / f"{self.name}.md").read_text(encoding="utf-8")

    def may_write(self, path: str) -> bool:
        return not self.plan_only or path in PLAN_FILES or path.startswith(PLAN_DIR)


ARCHITECT = Role(
    "architect",
    "designing the API",
    ("list_files", "read_file", "write_file", "edit_file", "finish"),
    plan_only=True,
)
DEVELOPER = Role("developer", "implementing", ALL_TOOLS)
INTEGRATIONS = Role("integrations", "adding integrations", ALL_TOOLS)
