"""What every tool shares: its argument model (whose JSON schema the model sees) and the
context it acts on."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from backend.generation.agents.workspace import ToolError, Workspace

if TYPE_CHECKING:
    from backend.generation.agents.verification import Verification


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class ToolContext:
    workspace: Workspace
    # Paths this role may change (None: any); the architect edits the plan, not the code.
    writable: Callable[[str], bool] | None = None
    # Test runs and the rule on finishing (roles with `run_tests`; None for the architect).
    verification: "Verification | None" = None
    # The most characters one read_file result holds (the rest is read with `offset`).
    read_limit: int = 20_000
    finished: str | None = None
    integrations: list[str] = field(default_factory=list)
    test_command: str | None = None

    def may_write(self, path: str) -> None:
        self.workspace.check_path(path)
        if self.writable is not None and not self.writable(path):
            raise ToolError(
                f"this role may not change {path}; it writes only the plan "
                "(openapi.yaml, openapi.json, files under docs/)"
            )


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[Args]
    run: Callable[[ToolContext, Args], str | Awaitable[str]]

    def schema(self) -> dict[str, object]:
        """The OpenAI function-tool declaration."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.args.model_json_schema(),
            },
        }
