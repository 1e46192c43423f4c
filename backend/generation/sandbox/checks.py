"""A sandbox run as checks: one per test from the runner's JUnit XML report, and the totals.

The report is the code under test's own output, so it is read as untrusted: at most
REPORT_MAX_BYTES (the sandbox's bound), parsed by the standard library's expat, which resolves
no external entity and refuses entity expansion bombs, in a thread (it is CPU work)."""

import shlex
import xml.etree.ElementTree as ET

from backend.generation.sandbox.box import Run
from schemas.generation_schemas import Check, Checks

OUTPUT_TAIL_CHARS = 4000
NAME_CHARS = 300
# Per run: more tests than this still count in the totals, but send no `check` event each.
MAX_CHECK_EVENTS = 500
LIMIT_REASONS = {"timeout": "timeout", "output": "output_limit"}


def skipped(reason: str) -> Checks:
    return Checks(
        status="skipped", reason=reason, command=None, passed=0, failed=0, errors=0,
        duration_ms=0, output_tail="",
    )  # fmt: skip


def checks_of(run: Run, command: list[str]) -> tuple[Checks, list[Check]]:
    """The totals and each test of a finished (or killed) run; blocking, call in a thread."""
    tests = _parse(run.report) if run.report else []
    passed = sum(c.status == "passed" for c in tests)
    failed = sum(c.status == "failed" for c in tests)
    errors = sum(c.status == "error" for c in tests)
    if run.limit is not None or (not run.ok and failed + errors == 0):
        # Killed, or failed with no test to blame (a crash, no tests collected, a command
        # that is not pytest): the run itself is the failing check.
        status = "failed" if run.limit is None and run.exit_code not in (125, 126, 127) else "error"
        tests.append(Check(name=shlex.join(command)[:NAME_CHARS], status=status,
                           duration_ms=run.duration_ms))  # fmt: skip
        failed += status == "failed"
        errors += status == "error"
    ok = run.ok and run.limit is None and failed + errors == 0
    summary = Checks(
        status="passed" if ok else "failed",
        reason=LIMIT_REASONS.get(run.limit or ""),
        command=shlex.join(command),
        passed=passed,
        failed=failed,
        errors=errors,
        duration_ms=run.duration_ms,
        output_tail=run.output[-OUTPUT_TAIL_CHARS:],
    )
    return summary, tests


def _parse(report: str) -> list[Check]:
    try:
        root = ET.fromstring(report)  # noqa: S314 - see the module docstring
    except ET.ParseError:
        return []
    found = []
    for case in root.iter("testcase"):
        outcome = {child.tag for child in case}
        if "skipped" in outcome:
            continue
        status = "error" if "error" in outcome else "failed" if "failure" in outcome else "passed"
        name = "::".join(part for part in (case.get("classname"), case.get("name")) if part)
        found.append(Check(name=name[:NAME_CHARS] or "test", status=status,
                           duration_ms=_milliseconds(case.get("time"))))  # fmt: skip
    return found


def _milliseconds(seconds: str | None) -> int:
    try:
        return max(int(float(seconds or 0) * 1000), 0)
    except (ValueError, OverflowError):
        return 0
