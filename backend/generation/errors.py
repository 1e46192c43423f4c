"""The problems the generation area answers with."""

from backend.errors import AppError, Conflict, ServiceUnavailable


class QuotaExceeded(AppError):
    status, code, title = 402, "quota_exceeded", "This month's generation quota is used up"


class TooManyActiveJobs(AppError):
    status, code, title = 409, "too_many_active_jobs", "Too many jobs are queued or running"


class TooManyStreams(AppError):
    status, code, title = 429, "too_many_streams", "Too many open event streams"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class KeyInUse(Conflict):
    code, title = "idempotency_key_in_use", "A request with this key is being processed"


class JobFinished(Conflict):
    code, title = "job_finished", "The job has already finished"


class JobNotSucceeded(Conflict):
    code, title = "job_not_succeeded", "Only a succeeded job can be reverted"


class JobReverted(Conflict):
    code, title = "job_reverted", "The job has already been reverted"


class JobDataExpired(AppError):
    status, code, title = 410, "job_data_expired", "The job's changes are past their retention"


class RevertConflict(Conflict):
    code, title = "revert_conflict", "Files the job touched have changed since"


class GenerationUnavailable(ServiceUnavailable):
    code, title = "generation_unavailable", "No language model provider is configured"


class ModelNotAllowed(AppError):
    status, code, title = 403, "model_not_allowed", "Your plan may not use this model"
