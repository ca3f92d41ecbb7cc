"""Runs jobs on Ray: an embedded local Ray by default, or the cluster named by RAY_ADDRESS."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import ray

from nas.settings import Settings
from nas.store import Database, crud
from workers.reaper import Reaper, resubmit_on_start
from workers.resources import JOB_SLOT, node_resources
from workers.scheduler import Scheduler

log = logging.getLogger(__name__)


def absolute_settings(settings: Settings) -> Settings:
    """Settings with relative SQLite and artifact paths made absolute, so any worker's cwd works."""
    update: dict[str, Any] = {}
    prefix = "sqlite:///"
    url = settings.database_url
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        update["database_url"] = prefix + str(Path(url[len(prefix) :]).resolve())
    if "://" not in settings.artifact_root:
        update["artifact_root"] = str(Path(settings.artifact_root).resolve())
    return settings.model_copy(update=update)


class RayScheduler(Scheduler):
    """Submits each job as a Ray task holding one job slot; cancellation goes through the database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = absolute_settings(settings)
        self._started_ray = False
        self._db: Database | None = None
        self._reaper: Reaper | None = None

    def start(self) -> None:
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS") or None
            kwargs: dict[str, Any] = {
                "ignore_reinit_error": True,
                "log_to_driver": False,
                "include_dashboard": False,
                "configure_logging": False,
            }
            if address is None:
                kwargs["num_cpus"] = self.settings.ray_num_cpus or os.cpu_count()
                kwargs["resources"] = node_resources(job_slots=self.settings.max_concurrent_jobs)
            ray.init(address=address, **kwargs)
            self._started_ray = True
        # A job whose lease is live runs elsewhere: only queued and expired ones are (re)submitted;
        # the job's lease makes a duplicate submission harmless (the second task finds it claimed).
        resubmit_on_start(self._database(), self.settings, self.submit)
        self._reaper = Reaper(self._database(), self.settings, self.submit)
        self._reaper.start()

    def submit(self, job_id: str) -> None:
        from workers.tasks import run_job_task

        data = self.settings.model_dump(mode="json")
        # The task reports into the database; its return value is never awaited.
        run_job_task.options(resources={JOB_SLOT: 1}).remote(job_id, data)

    def cancel(self, job_id: str) -> None:
        # Cancellation goes through the database only: the running pipeline sees the flag within
        # a second, and a job that has not started is marked cancelled here; its Ray task, when
        # it starts, finds the job final and returns at once. ray.cancel is not used: on a task
        # that has just started it raises KeyboardInterrupt at an arbitrary point of the worker,
        # possibly inside a database transaction whose lock then outlives the task.
        with self._database().session() as s:
            job = crud.get_job(s, job_id=job_id)
            if job is not None and job.status == crud.JobStatus.queued:
                crud.finish_job(s, job_id=job_id, status=crud.JobStatus.cancelled)

    def _database(self) -> Database:
        if self._db is None:
            self._db = Database(self.settings.database_url)
        return self._db

    def hardware(self) -> list[dict[str, Any]]:
        profiles: dict[str, list[str]] = {}
        for node in ray.nodes():
            if not node.get("Alive"):
                continue
            for key in node.get("Resources", {}):
                if key.startswith("hw:"):
                    profiles.setdefault(key[3:], []).append(node.get("NodeManagerAddress", "?"))
        return [{"profile": p, "nodes": sorted(n)} for p, n in sorted(profiles.items())]

    def shutdown(self) -> None:
        if self._reaper is not None:
            self._reaper.stop()
            self._reaper = None
        if self._started_ray and ray.is_initialized():
            ray.shutdown()
        self._started_ray = False
        if self._db is not None:
            self._db.dispose()
            self._db = None
