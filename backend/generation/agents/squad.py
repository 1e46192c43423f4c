"""The agentic job: architect, then developer, then (if the plan names any) integrations.

A loop over roles, not a framework. Each role converses with the model through its own
system prompt and only its tools, over the job's staged workspace. Budgets are checked
before every model call and after every answer: model calls, output tokens and wall clock
end the job `failed` with their own codes. A cancel aborts the model call in flight.
What one role wrote reaches the next only as fenced data (`untrusted.fenced`), and the
integrations only as names from the finish tool's fixed list.
"""

import asyncio
import inspect
import json
import math
import time
from typing import Any

from pydantic import ValidationError

from backend.config import ModelEntry, Settings
from backend.generation.agents.roles import ARCHITECT, DEVELOPER, INTEGRATIONS, Role
from backend.generation.agents.tools import TOOLS
from backend.generation.agents.tools.base import ToolContext
from backend.generation.agents.transcript import Transcript, capped
from backend.generation.agents.untrusted import fenced
from backend.generation.agents.verification import Verification
from backend.generation.agents.workspace import ToolError, Workspace
from backend.generation.context import JobContext
from backend.generation.costs import NANOS_PER_USD, call_cost, nanos
from backend.generation.models import Job
from backend.generation.outcome import JobCanceled, JobFailure, Output
from backend.integrations.llm import LLMClient, LLMUnavailable, Turn
from backend.services.project_rules import LIMITS, language_of

MESSAGE_FLUSH_S = 0.1
MAX_TOOL_ERRORS = 8
# Tokens of the model's window kept free for its answer when the prompt is fitted; a call
# whose budgets leave it fewer than MIN_ANSWER_TOKENS to answer with is not made.
ANSWER_ROOM = 4096
MIN_ANSWER_TOKENS = 256


class Budget:
    def __init__(self, settings: Settings, plan: str) -> None:
        self.calls_left = settings.agent_max_calls
        self.tokens_left = int(getattr(settings, f"agent_max_output_tokens_{plan}"))
        self.deadline = time.monotonic() + settings.agent_max_seconds
        self.plan = plan
        self.monthly_tokens = int(getattr(settings, f"agent_monthly_tokens_{plan}"))
        self.cost_cap = nanos(getattr(settings, f"agent_job_cost_cap_usd_{plan}"))

    def before_call(self) -> None:
        if self.calls_left <= 0:
            raise JobFailure("step_budget_exceeded", "The job used all its model calls")
        if time.monotonic() > self.deadline:
            raise JobFailure("timeout", "The job ran out of time")
        self.calls_left -= 1

    def after_call(self, turn: Turn) -> None:
        self.tokens_left -= turn.completion_tokens
        if self.tokens_left < 0:
            raise JobFailure("token_budget_exceeded", "The job used all its output tokens")

    def seconds_left(self) -> float:
        return max(self.deadline - time.monotonic(), 0.0)


class Squad:
    def __init__(self, llm: LLMClient, settings: Settings) -> None:
        self.llm = llm
        self.settings = settings

    def _entry(self, model: str) -> ModelEntry:
        """The model's catalogue entry (window, prices); defaults for a model not in it."""
        entry = next((m for m in self.settings.llm_models if m.id == model), None)
        return entry or ModelEntry(id=model)

    async def _hold(
        self, context: JobContext, budget: Budget, entry: ModelEntry, prompt: int
    ) -> int:
        """The most tokens the next call may answer with, within the model's window, the
        job's output tokens, its cost cap and what is left of the month's token budget; that
        call's maximum is held against the month. A call that could pass either budget (with
        room for fewer than MIN_ANSWER_TOKENS of answer) is never made."""
        answer = min(budget.tokens_left, max(entry.context_window - prompt, 1))
        if entry.output_usd_per_million > 0:
            left = budget.cost_cap - context.job.usage.cost_nanos - call_cost(entry, prompt, 0)
            per_token = entry.output_usd_per_million * NANOS_PER_USD / 1_000_000
            answer = min(answer, math.floor(left / per_token))
        if answer < MIN_ANSWER_TOKENS:
            raise JobFailure("budget_exceeded", "The next model call could pass the job's cost cap")
        answer = min(answer, await context.month_left(budget.monthly_tokens) - prompt)
        # Held atomically: a call of another job may have taken the room since it was read.
        if answer < MIN_ANSWER_TOKENS or not await context.hold(
            prompt + answer, budget.monthly_tokens
        ):
            raise JobFailure(
                "budget_exceeded", "The next model call could pass this month's token budget"
            )
        return answer

    async def run(self, job: Job, context: JobContext, start: dict[str, str], brief: str) -> Output:
        workspace = Workspace(start, LIMITS)
        budget = Budget(self.settings, job.request.get("plan", "free"))
        verification = Verification(context, workspace, await context.can_verify())
        plan = await self._role(ARCHITECT, job, context, workspace, budget, brief, 5)
        verification.command = plan.test_command
        designed = fenced("The architect's summary of the plan", plan.finished or "")
        command = plan.test_command or "python -m pytest"
        with_plan = f"{brief}\n\n{designed}\n\nrun_tests runs: {command}"
        built = await self._role(
            DEVELOPER, job, context, workspace, budget, with_plan, 40, verification
        )
        summary = built.finished or ""
        if plan.integrations:
            wanted = fenced("The integrations to add", ", ".join(plan.integrations))
            added = await self._role(
                INTEGRATIONS, job, context, workspace, budget, f"{with_plan}\n\n{wanted}", 75,
                verification,
            )  # fmt: skip
            summary = f"{summary}\n\n{added.finished}"
        await context.stage(workspace.changes(), _languages(workspace), announce=False)
        return Output(
            files=workspace.changes(),
            summary=summary.strip(),
            project_name=_name_from(job.request["prompt"]),
            prompt=job.request["prompt"],
            checks=verification.final(),
        )

    async def _role(
        self,
        role: Role,
        job: Job,
        context: JobContext,
        workspace: Workspace,
        budget: Budget,
        brief: str,
        progress: int,
        verification: Verification | None = None,
    ) -> ToolContext:
        await context.progress(progress, role.stage)
        tests = verification if "run_tests" in role.tools else None
        limit = self.settings.agent_tool_result_max_chars
        tools = ToolContext(
            workspace, writable=role.may_write, verification=tests, read_limit=limit
        )
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": role.system_prompt()},
            {"role": "user", "content": brief},
        ]
        schemas = [TOOLS[name].schema() for name in role.tools]
        model = self.settings.llm_role_models.get(role.name) or job.model or ""
        entry = self._entry(model)
        plan_budget = int(getattr(self.settings, f"agent_context_tokens_{budget.plan}"))
        transcript = Transcript(messages, min(plan_budget, entry.context_window - ANSWER_ROOM))
        errors = 0
        for _ in range(self.settings.agent_max_steps_per_role):
            budget.before_call()
            estimate = transcript.fit()
            sent = transcript.size()
            answer = await self._hold(context, budget, entry, estimate)
            turn = await self._call(context, budget, model, messages, schemas, answer)
            await context.settle(
                turn.prompt_tokens,
                turn.completion_tokens,
                call_cost(entry, turn.prompt_tokens, turn.completion_tokens),
            )
            transcript.observe(sent, turn.prompt_tokens)
            budget.after_call(turn)
            messages.append(_assistant(turn))
            if not turn.tool_calls:
                messages.append({"role": "user", "content": "Use the tools, then call finish."})
                continue
            for call in turn.tool_calls:
                before = dict(workspace.files)
                result, failed = await _run_tool(role, tools, call.name, call.arguments)
                errors += failed
                content = capped(result, limit)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
                for path in _touched(before, workspace.files):
                    await context.announce(path, language_of(path), workspace.files.get(path))
            if errors > MAX_TOOL_ERRORS:
                raise JobFailure("tool_errors", "The model kept calling tools wrongly")
            if tools.finished is not None:
                return tools
        raise JobFailure("step_budget_exceeded", f"The {role.name} did not finish in time")

    async def _call(
        self,
        context: JobContext,
        budget: Budget,
        model: str,
        messages: list[dict[str, Any]],
        schemas: list[dict[str, Any]],
        answer: int,
    ) -> Turn:
        """One model call, its text streamed to `message` events every ~100 ms; a cancel
        aborts it at once (closing the connection)."""
        pending: list[str] = []
        flushed = time.monotonic()

        async def on_text(text: str) -> None:
            nonlocal flushed
            pending.append(text)
            if time.monotonic() - flushed >= MESSAGE_FLUSH_S:
                flushed = time.monotonic()
                await context.message("".join(pending))
                pending.clear()

        call = asyncio.create_task(
            self.llm.turn(
                model=model,
                messages=messages,
                tools=schemas,
                max_tokens=answer,
                on_text=on_text,
            )
        )
        canceled = asyncio.create_task(context.cancel.wait())
        try:
            done, _ = await asyncio.wait(
                {call, canceled},
                timeout=budget.seconds_left(),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            canceled.cancel()
        if call not in done:
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)
            if context.cancel.is_set():
                raise JobCanceled()
            raise JobFailure("timeout", "The job ran out of time")
        try:
            turn = call.result()
        except LLMUnavailable as exc:
            raise JobFailure("llm_unavailable", "The model provider did not answer") from exc
        if pending:
            await context.message("".join(pending))
        await context.end_of_call()
        return turn


async def _run_tool(role: Role, tools: ToolContext, name: str, arguments: str) -> tuple[str, int]:
    """(what the model is told, 1 if it was an error)."""
    if name not in role.tools:
        return f"error: no tool named {name!r} for the {role.name}", 1
    tool = TOOLS[name]
    try:
        args = tool.args.model_validate(json.loads(arguments or "{}"))
        result = tool.run(tools, args)
        return (await result if inspect.isawaitable(result) else result), 0
    except (json.JSONDecodeError, ValidationError) as exc:
        return f"error: the arguments are not valid for {name}: {str(exc)[:500]}", 1
    except ToolError as exc:
        return f"error: {exc}", 1


def _assistant(turn: Turn) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": turn.text or None}
    if turn.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in turn.tool_calls
        ]
    return message


def _touched(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def _languages(workspace: Workspace) -> dict[str, str]:
    paths = set(workspace.files) | set(workspace.original)
    return {path: language_of(path) for path in paths}


def _name_from(prompt: str) -> str:
    words = " ".join(prompt.split())[:60].strip()
    return words or "Generated project"
