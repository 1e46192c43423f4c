"""`/api/v2/generate`: generation jobs, their live events, changes and revert; quotas."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api_v2.deps import CurrentUser, GenerationServiceDep, Pagination
from api_v2.rate_limits import DEFAULT_LIMIT, RateLimits, rate_limit
from api_v2.routing import DocumentedRoute, problems
from backend.errors import IdempotencyKeyReused, NotFound, ServiceUnavailable, Unauthorized
from backend.generation.errors import (
    GenerationUnavailable,
    JobDataExpired,
    JobFinished,
    JobNotSucceeded,
    JobReverted,
    KeyInUse,
    ModelNotAllowed,
    QuotaExceeded,
    RevertConflict,
    TooManyActiveJobs,
    TooManyStreams,
)
from backend.generation.models import Job
from backend.generation.streams import StreamLease
from backend.generation.views import job_view
from backend.services.project_rules import ProjectLimitReached
from schemas.common import Page, ResourceId
from schemas.generation_schemas import (
    AgenticCreate,
    ChangeList,
    FullstackCreate,
    JobRead,
    JobStatus,
    ModelCatalogue,
    UsageRead,
)

router = APIRouter(
    prefix="/generate",
    tags=["generation"],
    route_class=DocumentedRoute,
    responses=problems(Unauthorized),
)
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"),
]
# ProjectLimitReached: a job without a project creates one, and takes its slot when accepted.
ADMISSION = problems(
    QuotaExceeded,
    TooManyActiveJobs,
    ProjectLimitReached,
    IdempotencyKeyReused,
    KeyInUse,
    ServiceUnavailable,
)


@router.post(
    "/fullstack",
    status_code=202,
    response_model=JobRead,
    responses=ADMISSION,
    dependencies=[rate_limit(RateLimits.GENERATE_FULLSTACK)],
)
async def start_fullstack_job(
    body: FullstackCreate,
    user: CurrentUser,
    generation: GenerationServiceDep,
    idempotency_key: IdempotencyKey = None,
) -> JobRead:
    """Generate a complete project from a spec (built-in templates; no model involved)."""
    return job_view(await generation.submit_fullstack(user, body, idempotency_key))


@router.post(
    "/agentic",
    status_code=202,
    response_model=JobRead,
    responses={**ADMISSION, **problems(GenerationUnavailable, ModelNotAllowed, NotFound)},
    dependencies=[rate_limit(RateLimits.GENERATE_AGENTIC)],
)
async def start_agentic_job(
    body: AgenticCreate,
    user: CurrentUser,
    generation: GenerationServiceDep,
    idempotency_key: IdempotencyKey = None,
) -> JobRead:
    """Have the agent squad change a project (or a new one) as the prompt asks."""
    return job_view(await generation.submit_agentic(user, body, idempotency_key))


@router.get("/jobs", response_model=Page[JobRead], dependencies=[DEFAULT_LIMIT])
async def list_jobs(
    user: CurrentUser,
    generation: GenerationServiceDep,
    paging: Pagination,
    status: JobStatus | None = None,
    project_id: Annotated[ResourceId | None, Query(max_length=64)] = None,
) -> Page[JobRead]:
    """Your jobs, newest first."""
    return await generation.list(user, paging.page, paging.limit, status, project_id)


async def owned_job(job_id: ResourceId, user: CurrentUser, generation: GenerationServiceDep) -> Job:
    return await generation.get(user, job_id)


OwnedJob = Annotated[Job, Depends(owned_job)]


@router.get(
    "/jobs/{job_id}",
    response_model=JobRead,
    responses=problems(NotFound),
    dependencies=[DEFAULT_LIMIT],
)
async def get_job(job: OwnedJob) -> JobRead:
    """One of your jobs."""
    return job_view(job)


async def stream_slot(
    job: OwnedJob, user: CurrentUser, generation: GenerationServiceDep
) -> AsyncIterator[StreamLease]:
    # Taken before the stream starts, so a refusal is an ordinary problem answer; given back
    # after the response even when the stream never ran or its client went away.
    async with await generation.open_stream(user, job) as lease:
        yield lease


StreamSlot = Annotated[StreamLease, Depends(stream_slot)]


@router.get(
    "/jobs/{job_id}/events",
    response_class=EventSourceResponse,
    responses=problems(NotFound, TooManyStreams),
    dependencies=[DEFAULT_LIMIT],
)
async def stream_job_events(
    job: OwnedJob,
    slot: StreamSlot,
    generation: GenerationServiceDep,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0, le=10**9)] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Follow a job's events as Server-Sent Events.

    Stored events first, then live ones, until exactly one of `done`, `error` or `canceled`
    ends the stream. After a dropped connection, send `Last-Event-ID` with the last `id`
    received to get only what came after it. Keep-alive comments come at least every 15 s.

    A stream also ends, without a terminal event, after `JOB_STREAM_MAX_S` (600 s by default):
    reconnect with `Last-Event-ID` to go on. At most `JOB_STREAMS_PER_JOB` (5) streams may be
    open per job and `JOB_STREAMS_PER_USER` (20) per user; one more → 429 `too_many_streams`
    with `Retry-After`, the seconds until a slot is sure to be free.
    """
    async for event in generation.follow(job, last_event_id or 0, slot):
        yield ServerSentEvent(data=event.data, event=event.type, id=str(event.seq))


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobRead,
    responses=problems(NotFound, JobFinished),
    dependencies=[DEFAULT_LIMIT],
)
async def cancel_job(
    job_id: ResourceId, user: CurrentUser, generation: GenerationServiceDep
) -> JobRead:
    """Stop a job: a queued one at once, a running one at its next step."""
    return job_view(await generation.cancel(user, job_id))


@router.get(
    "/jobs/{job_id}/changes",
    response_model=ChangeList,
    responses=problems(NotFound, JobDataExpired),
    dependencies=[DEFAULT_LIMIT],
)
async def list_job_changes(
    job_id: ResourceId, user: CurrentUser, generation: GenerationServiceDep
) -> ChangeList:
    """What the job changed (or will change, while it runs), each with a unified diff."""
    return await generation.changes(user, job_id)


@router.post(
    "/jobs/{job_id}/revert",
    response_model=JobRead,
    responses=problems(NotFound, RevertConflict, JobNotSucceeded, JobReverted, JobDataExpired),
    dependencies=[DEFAULT_LIMIT],
)
async def revert_job(
    job_id: ResourceId, user: CurrentUser, generation: GenerationServiceDep
) -> JobRead:
    """Put the files a succeeded job touched back as they were, all at once."""
    return job_view(await generation.revert(user, job_id))


@router.get("/models", response_model=ModelCatalogue, dependencies=[DEFAULT_LIMIT])
async def list_models(user: CurrentUser, generation: GenerationServiceDep) -> ModelCatalogue:
    """The models agentic jobs may use, by plan."""
    return generation.models()


@router.get("/usage", response_model=UsageRead, dependencies=[DEFAULT_LIMIT])
async def get_usage(user: CurrentUser, generation: GenerationServiceDep) -> UsageRead:
    """This month's generations, active jobs and tokens against your plan's limits."""
    return await generation.usage_of(user)
