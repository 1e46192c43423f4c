"""The `fullstack` job: generate from the spec (in a worker process), stage, run the
project's own tests in the sandbox, hand over."""

import structlog

from backend.generation.context import JobContext
from backend.generation.fullstack.generator import generate
from backend.generation.models import Job
from backend.generation.outcome import JobFailure, Output
from backend.generation.sandbox.verify import fullstack_plan
from backend.services.project_rules import language_of
from schemas.generation_schemas import FullstackCreate

log = structlog.get_logger("devora.fullstack")


def spec_summary(spec: FullstackCreate) -> str:
    models = ", ".join(model.name for model in spec.data_models)
    features = ", ".join(spec.features) or "no extra features"
    return (
        f"Generate {spec.project_name}: a {spec.framework} API on {spec.database} "
        f"with {models}; {features}."
    )


async def run_fullstack(job: Job, context: JobContext) -> Output:
    spec = FullstackCreate.model_validate(job.request)
    await context.progress(10, "designing")
    # The largest spec is seconds of pure-Python rendering: a worker process does it.
    files = await context.offload(generate, spec)
    await context.progress(60, "writing files")
    await context.stage(dict(files), {path: language_of(path) for path in files})
    await context.progress(70, "verifying")
    checks, _ = await context.verify(dict(files), fullstack_plan(spec))
    if checks.status == "failed":
        # Our templates wrote a project that fails its own tests: a generator bug, not the
        # user's. The project stays as it was, and the generation is given back.
        log.error(
            "generated_project_failed_its_tests",
            job_id=job.id, framework=spec.framework, database=spec.database,
            features=spec.features, failed=checks.failed, errors=checks.errors,
            reason=checks.reason, output=checks.output_tail[-2000:],
        )  # fmt: skip
        raise JobFailure(
            "checks_failed",
            f"The generated project failed {checks.failed + checks.errors} of its own checks; "
            "this is a Devora bug and has been logged. Nothing was changed.",
        )
    await context.progress(90, "applying")
    summary = (
        f"Generated {len(files)} files: a {spec.framework} project on {spec.database} with "
        f"{len(spec.data_models)} resource(s), tests, README and settings."
    )
    return Output(
        files=dict(files),
        summary=summary,
        project_name=spec.project_name,
        prompt=spec_summary(spec),
        checks=checks,
    )
