"""A scheduler for an API-only node: jobs wait in the database for a node that runs them."""

from __future__ import annotations

from typing import Any

from nas.settings import Settings
from nas.store import Database, crud
from workers.scheduler import Scheduler


class QueueOnlyScheduler(Scheduler):
    """Accepts jobs and leaves them queued; cancelling a queued job ends it at once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def start(self) -> None:
        return None

    def submit(self, job_id: str) -> None:
        return None

    def cancel(self, job_id: str) -> None:
        db = Database(self.settings.database_url)
        with db.session() as s:
            job = crud.get_job(s, job_id=job_id)
            if job is not None and job.status == crud.JobStatus.queued:
                crud.finish_job(s, job_id=job_id, status=crud.JobStatus.cancelled)

    def hardware(self) -> list[dict[str, Any]]:
        return []

    def shutdown(self) -> None:
        return None
