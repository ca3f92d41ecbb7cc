"""A scheduler for an API-only node: jobs wait in the database for a node that runs them."""

from __future__ import annotations

from typing import Any

from nas.settings import Settings
from nas.store import Database, crud
from workers.reaper import Reaper
from workers.scheduler import Scheduler


class QueueOnlyScheduler(Scheduler):
    """Accepts jobs and leaves them queued; cancelling a queued job ends it at once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._reaper: Reaper | None = None

    def start(self) -> None:
        # Jobs whose worker died still go back to the queue (or fail, out of attempts) from here.
        self._reaper = Reaper(Database(self.settings.database_url), self.settings, self.submit)
        self._reaper.start()

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
        if self._reaper is not None:
            self._reaper.stop()
            self._reaper.db.dispose()
            self._reaper = None
