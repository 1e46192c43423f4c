"""What a job changed, as diffs, and putting it back (the project and the job in one
transaction)."""

from backend.cache import Cache
from backend.db import Mongo
from backend.errors import NotFound
from backend.generation.errors import (
    JobDataExpired,
    JobNotSucceeded,
    JobReverted,
    RevertConflict,
)
from backend.generation.files import apply_changes, change_views
from backend.generation.models import Job
from backend.generation.repository import JobRepository
from backend.repositories.base import Session, utcnow
from backend.repositories.projects import ProjectRepository
from backend.services.project_rules import LIMITS, owner_scope, project_scope
from schemas.generation_schemas import ChangeList

# How many changed paths a revert conflict names in its detail (all are in `paths`).
CONFLICT_PATHS_SHOWN = 20


class Changes:
    def __init__(
        self, *, mongo: Mongo, jobs: JobRepository, projects: ProjectRepository, cache: Cache
    ) -> None:
        self.mongo = mongo
        self.jobs = jobs
        self.projects = projects
        self.cache = cache

    async def of(self, job: Job) -> ChangeList:
        """What the job changed, or would change while it has not landed, with diffs."""
        _still_kept(job)
        changes = await self.jobs.staged_changes(job.id)
        if job.status != "succeeded" and job.project_id is not None:
            project = await self.projects.get(job.owner_id, job.project_id)
            current = {f.path: f.content for f in project.files} if project else {}
            changes = [
                change.model_copy(update={"before": current.get(change.path)}) for change in changes
            ]
        return ChangeList(data=await change_views(changes, applied=job.status == "succeeded"))

    async def revert(self, job: Job) -> None:
        """Put back what a succeeded job changed, unless those files changed since."""
        if job.status != "succeeded" or job.project_id is None:
            raise JobNotSucceeded(f"The job is {job.status}")
        if job.reverted_at is not None:
            raise JobReverted("The job was reverted already")
        _still_kept(job)
        owner_id, project_id = job.owner_id, job.project_id

        async def undo(session: Session) -> None:
            project = await self.projects.get(owner_id, project_id, session=session)
            if project is None:
                raise NotFound("The job's project no longer exists")
            changes = await self.jobs.staged_changes(job.id, session=session)
            current = {f.path: f.content for f in project.files}
            changed = [c.path for c in changes if current.get(c.path) != c.after]
            if changed:
                raise RevertConflict(
                    "Changed since the job: " + ", ".join(changed[:CONFLICT_PATHS_SHOWN]),
                    extensions={"paths": changed},
                )
            restore = {c.path: c.before for c in changes}
            files, _ = apply_changes(project.files, restore, LIMITS)
            if not await self.projects.replace_files(
                owner_id, project_id, project.version, files, session=session
            ):
                raise RevertConflict("The project changed during the revert; try again")
            if not await self.jobs.set_fields(
                job, {"reverted_at": utcnow()}, {"reverted_at": None}, session=session
            ):
                raise JobReverted("The job was reverted already")

        await self.mongo.transaction(undo)
        await self.cache.invalidate(owner_scope(owner_id), project_scope(project_id))


def _still_kept(job: Job) -> None:
    """Past its retention a job's changes are gone (or about to be: the TTL sweep runs once
    a minute), so nothing is answered from what may be left of them."""
    if job.data_expires_at is not None and utcnow() >= job.data_expires_at:
        raise JobDataExpired(f"The job's changes were kept until {job.data_expires_at:%Y-%m-%d}")
