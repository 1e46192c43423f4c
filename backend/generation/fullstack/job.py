"""The `fullstack` job: generate from the spec (in a worker process), stage, hand over."""

from backend.generation.context import JobContext
from backend.generation.fullstack.generator import generate
from backend.generation.models import Job
from backend.generation.outcome import Output
from backend.services.project_rules import language_of
from schemas.generation_schemas import FullstackCreate


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
    )
