"""The reaper: requeues jobs whose worker stopped renewing its lease, and fails those out of attempts."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from nas.settings import Settings
from nas.store import Database, crud

log = logging.getLogger(__name__)


def reap_once(db: Database, settings: Settings) -> crud.ReapResult:
    """One pass: expired leases back to the queue (or failed with the reason in ``job.error``)."""
    with db.session() as s:
        result = crud.reap_expired(s, max_attempts=settings.max_attempts)
        for job_id in result.requeued:
            crud.add_event(s, job_id=job_id, kind="log", payload={"message": "lease expired; requeued"})
        for job_id in result.failed:
            job = crud.get_job(s, job_id=job_id)
            error = job.error if job is not None else None
            crud.add_event(s, job_id=job_id, kind="status", payload={"status": "failed", "error": error})
    for job_id in result.requeued:
        log.warning("job %s: its worker stopped renewing the lease; requeued", job_id)
    for job_id in result.failed:
        log.warning("job %s: lease expired and no attempts left; failed", job_id)
    return result


class Reaper:
    """A daemon thread running :func:`reap_once` every ``settings.reaper_interval_s``."""

    def __init__(self, db: Database, settings: Settings, submit: Callable[[str], None]) -> None:
        self.db, self.settings, self.submit = db, settings, submit
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="nas-reaper", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.reaper_interval_s):
            try:
                for job_id in reap_once(self.db, self.settings).requeued:
                    self.submit(job_id)
            except Exception:  # a database hiccup must not end the reaper
                log.exception("reaper pass failed; retrying in %.0f s", self.settings.reaper_interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def resubmit_on_start(db: Database, settings: Settings, submit: Callable[[str], None]) -> list[str]:
    """At start-up: requeue expired leases, then submit the queued jobs (never one with a live lease)."""
    reap_once(db, settings)
    with db.read() as s:
        pending = crud.runnable_job_ids(s)
    for job_id in pending:
        log.info("resubmitting queued job %s", job_id)
        submit(job_id)
    return pending
