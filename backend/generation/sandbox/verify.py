"""What a job's code is checked with, and the run that checks it.

A fullstack project runs its own test suite: FastAPI's pytest on SQLite for sqlite and
postgresql projects (their tests use SQLite unless TEST_DATABASE_URL names a server, and a
sandbox reaches none), Next.js's vitest for sqlite projects. A project whose tests need a
database server (Next.js on postgresql, either framework on mongodb) is `skipped` with that
reason, never passed. An agentic job runs the command its architect named, in the Python
environment.
"""

import asyncio
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from backend.config import Settings
from backend.generation.sandbox.box import REPORT_PATH, Limits, Sandbox
from backend.generation.sandbox.checks import checks_of, skipped
from backend.generation.sandbox.environments import (
    KINDS,
    EnvironmentUnavailable,
    environment,
    home_of,
)
from schemas.generation_schemas import Check, Checks, FullstackCreate

log = structlog.get_logger("devora.sandbox")

PYTEST = ["python", "-m", "pytest"]
VITEST = ["vitest", "run", "--reporter=default", "--reporter=junit",
          f"--outputFile.junit={REPORT_PATH}"]  # fmt: skip
# pytest reads these from the environment whatever command runs it: a machine-readable
# report, and no cache folder in the working copy.
PYTEST_ADDOPTS = f"-p no:cacheprovider --junitxml={REPORT_PATH} -o junit_family=xunit2"
# The prepared node_modules is linked into the working copy, where Node resolves packages.
LINK_NODE_MODULES = 'ln -s "$DEVORA_ENVIRONMENT/node_modules" node_modules && exec "$@"'


@dataclass(frozen=True)
class Plan:
    """How to check a job's files: a command in an environment, or why there is none."""

    command: list[str] | None = None
    environment: str = "python"
    env: dict[str, str] = field(default_factory=dict)
    skip: str | None = None


def fullstack_plan(spec: FullstackCreate) -> Plan:
    if spec.database == "mongodb" or (spec.framework == "nextjs" and spec.database != "sqlite"):
        return Plan(skip="needs_database_server")
    if spec.framework == "nextjs":
        return Plan(command=VITEST, environment="node", env={"SQLITE_PATH": "/tmp/test.db"})  # noqa: S108
    return Plan(command=PYTEST)


def command_plan(command: str | None) -> Plan:
    """The architect's test command (`python -m pytest` when it named none)."""
    return Plan(command=shlex.split(command) if command else PYTEST)


class Verifier:
    def __init__(self, settings: Settings) -> None:
        limits = Limits(
            timeout_s=settings.sandbox_timeout_s,
            cpu_s=settings.sandbox_cpu_s,
            memory_mb=settings.sandbox_memory_mb,
            processes=settings.sandbox_processes,
            disk_mb=settings.sandbox_disk_mb,
            max_output_bytes=settings.sandbox_output_bytes,
        )
        self.sandbox = Sandbox(settings.sandbox_command, limits, settings.sandbox_concurrency)
        self.home = home_of(settings.sandbox_home)
        self._environments: dict[str, asyncio.Future[Path]] = {}

    def prepare(self, *kinds: str) -> None:
        """Start building the dependency environments now (a worker's start-up), so the
        first job does not wait for them."""
        if self.sandbox.bwrap is None:
            return
        for kind in kinds or KINDS:
            if kind not in self._environments:
                build = asyncio.to_thread(environment, kind, self.home)
                self._environments[kind] = asyncio.ensure_future(build)

    async def run(
        self, files: dict[str, str], plan: Plan, stop: asyncio.Event
    ) -> tuple[Checks, list[Check]]:
        if plan.skip is not None or plan.command is None:
            return skipped(plan.skip or "no_command"), []
        if not await self.sandbox.available():
            return skipped("sandbox_unavailable"), []
        self.prepare(plan.environment)
        try:
            prepared = await asyncio.shield(self._environments[plan.environment])
        except EnvironmentUnavailable as exc:
            log.error("sandbox_environment_unavailable", kind=plan.environment, error=str(exc))
            del self._environments[plan.environment]  # the next job tries again
            return skipped("environment_unavailable"), []
        command = plan.command
        if plan.environment == "node":
            command = ["sh", "-c", LINK_NODE_MODULES, "sh", *command]
        env = {"PYTEST_ADDOPTS": PYTEST_ADDOPTS, "DEVORA_ENVIRONMENT": str(prepared), **plan.env}
        run = await self.sandbox.run(files, command, environment=prepared, env=env, stop=stop)
        if run.limit == "canceled":
            return skipped("canceled"), []
        return await asyncio.to_thread(checks_of, run, plan.command)
