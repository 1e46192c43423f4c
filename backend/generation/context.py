"""What a job's executor may do: report progress, read the project it works on, stage
files, learn of a cancel, and run CPU-bound work in a worker process."""

import asyncio
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from backend.generation.files import file_action
from backend.generation.lifecycle import Lifecycle
from backend.generation.models import Change, Job
from backend.generation.outcome import JobCanceled, Output
from backend.generation.repository import JobRepository
from backend.generation.sandbox.checks import MAX_CHECK_EVENTS, skipped
from backend.generation.sandbox.verify import Plan, Verifier
from backend.repositories.messages import Message, MessageRepository
from backend.repositories.projects import Project, ProjectRepository
from schemas.generation_schemas import Check, Checks

T = TypeVar("T")


class JobContext:
    def __init__(
        self,
        job: Job,
        cancel: asyncio.Event,
        pool: Callable[[], ProcessPoolExecutor],
        *,
        lifecycle: Lifecycle,
        jobs: JobRepository,
        projects: ProjectRepository,
        messages: MessageRepository,
        verifier: Verifier,
    ) -> None:
        self.job = job
        self.cancel = cancel
        self._pool = pool
        self._lifecycle = lifecycle
        self._jobs = jobs
        self._projects = projects
        self._messages = messages
        self._verifier = verifier
        self._message_seqs: list[int] = []  # the current model call's message events
        self._paths: set[str] | None = None

    async def offload(self, work: Callable[..., T], *args: Any) -> T:
        """Run `work(*args)` in the runner's process pool: pure-Python CPU in a thread would
        hold the GIL and starve this event loop (heartbeats, other jobs, SSE)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), functools.partial(work, *args))

    def check(self) -> None:
        """Raise `JobCanceled` if the owner asked to stop; call between steps."""
        if self.cancel.is_set():
            raise JobCanceled()

    async def progress(self, percent: int, stage: str) -> None:
        data = {"progress": percent, "stage": stage}
        await self._emit("progress", data, progress=percent, stage=stage)

    async def message(self, text: str) -> None:
        await self._emit("message", {"text": text})

    async def end_of_call(self) -> None:
        """A model call is over: its `message` events are stored as one."""
        seqs, self._message_seqs = self._message_seqs, []
        await self._lifecycle.merge_messages(self.job, seqs)

    async def month_left(self, budget: int) -> int:
        """Tokens of the owner's monthly `budget` neither spent nor held."""
        return await self._lifecycle.month_left(self.job, budget)

    async def hold(self, tokens: int, budget: int) -> bool:
        """Hold `tokens` of the owner's month (of `budget`) for the next model call."""
        return await self._lifecycle.hold(self.job, tokens, budget)

    async def settle(self, prompt_tokens: int, completion_tokens: int, cost_nanos: int) -> None:
        """What a model call spent: on the job and the owner's month, in place of its hold."""
        await self._lifecycle.settle(self.job, prompt_tokens, completion_tokens, cost_nanos)

    async def stage(
        self, files: dict[str, str | None], languages: dict[str, str], *, announce: bool = True
    ) -> None:
        """Keep the job's pending changes (shown by `GET /changes`); announce each file unless
        the executor announced them as it went."""
        self.check()
        changes = [
            Change(path=path, language=languages[path], after=content)
            for path, content in sorted(files.items())
        ]
        await self._jobs.stage_changes(self.job.id, changes)
        if announce:
            for path, content in sorted(files.items()):
                await self.announce(path, languages[path], content)

    async def announce(self, path: str, language: str, content: str | None) -> None:
        """A `file` event: what this change does to the project as the job found it."""
        existing = await self._existing_paths()
        action = file_action(path in existing, content)
        size = len((content or "").encode())
        await self._emit(
            "file", {"path": path, "language": language, "size": size, "action": action}
        )

    async def verify(self, files: dict[str, str], plan: Plan) -> tuple[Checks, list[Check]]:
        """Run the files' checks in the sandbox: a `check` event per test (the first
        MAX_CHECK_EVENTS), then `checks` with the totals. A cancel kills the run."""
        checks, tests = await self._verifier.run(files, plan, self.cancel)
        self.check()
        for test in tests[:MAX_CHECK_EVENTS]:
            await self._emit("check", test.model_dump())
        await self._emit("checks", checks.model_dump())
        return checks, tests

    async def can_verify(self) -> bool:
        """Whether this process's sandbox can run anything (on, installed, usable)."""
        return await self._verifier.sandbox.available()

    @staticmethod
    def unavailable_checks() -> Checks:
        return skipped("sandbox_unavailable")

    async def project(self) -> Project | None:
        """The project the job works on, as it is now (None for a job that creates one)."""
        if self.job.project_id is None:
            return None
        return await self._projects.get(self.job.owner_id, self.job.project_id)

    async def recent_messages(self, count: int) -> list[Message]:
        """The last `count` messages of the project's conversation, oldest first."""
        if self.job.project_id is None:
            return []
        return await self._messages.latest(self.job.project_id, count)

    async def previous_summary(self) -> str | None:
        """What the project's last succeeded job said it did."""
        if self.job.project_id is None:
            return None
        previous = await self._jobs.last_succeeded(self.job.owner_id, self.job.project_id)
        return previous.result.summary if previous and previous.result else None

    async def _emit(self, kind: str, data: dict[str, Any], **fields: Any) -> None:
        self.check()
        seq, cancel = await self._lifecycle.emit(self.job, kind, data, **fields)
        if kind == "message":
            self._message_seqs.append(seq)
        if cancel:
            self.cancel.set()
            raise JobCanceled()

    async def _existing_paths(self) -> set[str]:
        """The project's paths, read once per job (not once per file event)."""
        if self._paths is None:
            project = await self.project()
            self._paths = {file.path for file in project.files} if project else set()
        return self._paths


Executor = Callable[[Job, JobContext], Awaitable[Output]]
