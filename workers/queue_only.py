"""A scheduler for an API-only node (``NAS_SCHEDULER=none``): it runs nothing and nothing polls.

Submitted jobs stay 'queued' in the database. No worker picks them up while this scheduler
serves; they run only when a process with the Ray scheduler starts on the same database
(``RayScheduler.start`` resubmits every unfinished job).
"""

from __future__ import annotations

from typing import Any

from nas.settings import Settings
from nas.store import Database, crud
from workers.reaper import Reaper
from workers.scheduler import Scheduler


class QueueOnlyScheduler(Scheduler):
    """Accepts jobs and leaves them queued (none runs until a Ray scheduler starts on this database);
    cancelling a queued job ends it at once."""

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
