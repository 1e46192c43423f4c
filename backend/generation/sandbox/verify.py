"""What a job's code is checked with, and the run that checks it.

A fullstack project runs its own test suite: FastAPI's pytest, Next.js's vitest, on the
project's own database. SQLite needs nothing; a postgresql project's run starts Debian's
PostgreSQL inside its sandbox first (a throw-away cluster on the sandbox's own loopback, gone
with the sandbox), and its tests get that server. A mongodb project is `skipped` with reason
`needs_database_server`: no MongoDB-wire server comes with Debian, and the one the suite uses
is a development tool that is never installed in production. An agentic job runs the command
its architect named, in the Python environment.
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
# A PostgreSQL cluster for this run only, in the sandbox's /tmp, on its private loopback:
# durability off (it lives for one run), started before the command and killed with the
# sandbox. Exit 125 (the run's own setup failed) when it does not come up in 10 s.
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
WITH_POSTGRES = """log=/tmp/postgres.log
fail() { cat "$log"; exit 125; }
"$PG_BIN/initdb" --no-sync -E UTF8 --no-locale -U postgres -A trust -D /tmp/postgres \
  >"$log" 2>&1 || fail
"$PG_BIN/postgres" -D /tmp/postgres -k /tmp -h 127.0.0.1 -p 5432 -c fsync=off \
  -c full_page_writes=off -c synchronous_commit=off -c dynamic_shared_memory_type=mmap \
  >>"$log" 2>&1 &
tries=0
until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p 5432; do
  tries=$((tries + 1)); [ $tries -gt 200 ] && fail; sleep 0.05
done
exec "$@"
"""


@dataclass(frozen=True)
class Plan:
    """How to check a job's files: a command in an environment, or why there is none."""

    command: list[str] | None = None
    environment: str = "python"
    env: dict[str, str] = field(default_factory=dict)
    postgres: bool = False  # start a PostgreSQL server in the sandbox first
    skip: str | None = None


def fullstack_plan(spec: FullstackCreate) -> Plan:
    if spec.database == "mongodb":
        return Plan(skip="needs_database_server")
    postgres = spec.database == "postgresql"
    if spec.framework == "nextjs":
        env = {"DATABASE_URL": POSTGRES_URL} if postgres else {"SQLITE_PATH": "/tmp/test.db"}  # noqa: S108
        return Plan(command=VITEST, environment="node", env=env, postgres=postgres)
    if postgres:
        url = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
        return Plan(command=PYTEST, env={"TEST_DATABASE_URL": url}, postgres=True)
    return Plan(command=PYTEST)


def postgres_bin(root: Path = Path("/usr/lib/postgresql")) -> str | None:
    """The newest Debian PostgreSQL's programs (`<root>/<major>/bin`), if any."""
    found = [path.parent for path in root.glob("*/bin/postgres") if path.parts[-3].isdigit()]
    return str(max(found, key=lambda path: int(path.parent.name))) if found else None


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
        env = {"PYTEST_ADDOPTS": PYTEST_ADDOPTS, "DEVORA_ENVIRONMENT": str(prepared), **plan.env}
        if plan.environment == "node":
            command = ["sh", "-c", LINK_NODE_MODULES, "sh", *command]
        if plan.postgres:
            if (programs := postgres_bin()) is None:
                return skipped("needs_database_server"), []
            command = ["sh", "-c", WITH_POSTGRES, "sh", *command]
            env["PG_BIN"] = programs
        run = await self.sandbox.run(files, command, environment=prepared, env=env, stop=stop)
        if run.limit == "canceled":
            return skipped("canceled"), []
        return await asyncio.to_thread(checks_of, run, plan.command)
