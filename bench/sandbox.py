"""What the sandbox costs: starting a run (bubblewrap, limits, a tmpfs copy of nothing, `true`)
and running generated projects' own tests in it, as a fullstack job does (postgresql ones with
the PostgreSQL server their run starts inside the sandbox).

    .venv/bin/python -m bench.sandbox [--starts 50] [--projects 3]

Needs bubblewrap, Debian's PostgreSQL and the sandbox environment (`make sandbox`)."""

import argparse
import asyncio
import statistics
import time

from backend.config import Settings
from backend.generation.fullstack.generator import generate
from backend.generation.sandbox.verify import Verifier, fullstack_plan
from schemas.generation_schemas import FullstackCreate
from tests.support.specs import ALL_FEATURES, SPEC, rich_spec

SMALL = FullstackCreate.model_validate(SPEC)
RICH = rich_spec("sqlite", ALL_FEATURES)  # the suite's: every field type and feature
VARIANTS = {
    "FastAPI, small spec": SMALL,
    "FastAPI, rich spec": RICH,
    "Next.js (vitest), small spec": SMALL.model_copy(update={"framework": "nextjs"}),
    "Next.js (vitest), rich spec": RICH.model_copy(update={"framework": "nextjs"}),
    # PostgreSQL started inside the sandbox for the run
    "FastAPI, rich spec, postgresql": RICH.model_copy(update={"database": "postgresql"}),
    "Next.js (vitest), rich spec, postgresql": RICH.model_copy(
        update={"framework": "nextjs", "database": "postgresql"}
    ),
}


def quantiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):.0f} ms, p95 {p95:.0f} ms, n={len(ordered)}"


async def main(starts: int, projects: int) -> None:
    verifier = Verifier(Settings(_env_file=None))  # type: ignore[call-arg]
    assert await verifier.sandbox.available(), "bubblewrap is not usable here"
    verifier.prepare()
    timings = []
    for _ in range(starts):
        began = time.perf_counter()
        run = await verifier.sandbox.run({}, ["true"])
        timings.append((time.perf_counter() - began) * 1000)
        assert run.ok, run.output
    print(f"sandbox start (`true`): {quantiles(timings)}")
    for name, parsed in VARIANTS.items():
        files = generate(parsed)
        runs, counts = [], set()
        for _ in range(projects):
            began = time.perf_counter()
            checks, _ = await verifier.run(dict(files), fullstack_plan(parsed), asyncio.Event())
            runs.append((time.perf_counter() - began) * 1000)
            assert checks.status == "passed", checks.output_tail
            counts.add(checks.passed)
        print(f"{name}: {len(files)} files, {counts} tests: {quantiles(runs)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=50)
    parser.add_argument("--projects", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.starts, arguments.projects))
