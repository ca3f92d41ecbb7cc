"""Runs jobs on Ray: an embedded local Ray by default, or the cluster named by RAY_ADDRESS."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import ray

from nas.settings import Settings
from nas.store import Database, crud
from workers.node import LOOPBACK, enable_token_auth, is_loopback
from workers.reaper import Reaper, resubmit_on_start
from workers.resources import JOB_SLOT, MEASURE, node_resources
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
    update["upload_dir"] = settings.upload_dir.resolve()  # dataset paths are checked against it
    return settings.model_copy(update=update)


@contextmanager
def _loopback_kept() -> Iterator[None]:
    """Ray's clustering switch off for a start-up: Ray then keeps 127.0.0.1 as this process's node
    address instead of mapping it to the machine's (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read
    when ray is imported, so it is set for the Ray processes spawned meanwhile too)."""
    from ray._private import ray_constants

    switch = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    saved_env, saved_flag = os.environ.get(switch), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[switch] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(switch, None)
        else:
            os.environ[switch] = saved_env


def init_ray(settings: Settings) -> None:
    """Join the cluster named by ``RAY_ADDRESS``, or start a Ray of our own bound to 127.0.0.1.

    The embedded Ray never looks for an existing one (``address="local"``), so a stale record of
    a killed head in Ray's temp folder cannot make start-up fail, and it exposes no cluster port:
    its node address is the loopback. Joining a cluster, token authentication is turned on when a
    token is available (``workers.node.enable_token_auth``: the same token every node has), and a
    head on a loopback address is joined over the loopback.
    """
    common: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False, "configure_logging": False}
    address = os.environ.get("RAY_ADDRESS") or None
    if address is not None:
        enable_token_auth(head=False)
        host = address.split("://")[-1].rsplit(":", 1)[0]
        with _loopback_kept() if is_loopback(host) else nullcontext():
            ray.init(address=address, **common)
        return
    with _loopback_kept():
        ray.init(
            address="local",
            _node_ip_address=LOOPBACK,
            _temp_dir=str(Path(settings.ray_temp_dir).resolve()) if settings.ray_temp_dir else None,
            num_cpus=settings.ray_num_cpus or os.cpu_count(),
            resources=node_resources(job_slots=settings.max_concurrent_jobs),
            **common,
        )


def check_shared_state(settings: Settings) -> None:
    """Joining a cluster: refuse a SQLite database when a node runs on another machine (it would
    open an empty database of its own there); the database must be one every node reaches."""
    if not settings.is_sqlite:
        return
    here = ray.util.get_node_ip_address()
    elsewhere = sorted({n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")} - {here})
    if elsewhere:
        raise RuntimeError(
            f"NAS_DATABASE_URL is SQLite ({settings.database_url}) but the cluster has nodes on "
            f"{', '.join(elsewhere)}, which cannot open this machine's file: use PostgreSQL "
            "(postgresql+psycopg://...) for a cluster of several machines"
        )


class RayScheduler(Scheduler):
    """Submits each job as a Ray task holding one job slot; cancellation goes through the database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = absolute_settings(settings)
        self._started_ray = False
        self._db: Database | None = None
        self._reaper: Reaper | None = None

    def start(self) -> None:
        if not ray.is_initialized():
            init_ray(self.settings)
            self._started_ray = True
            if os.environ.get("RAY_ADDRESS"):
                check_shared_state(self.settings)
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
        profiles: dict[str, dict[str, list[str]]] = {}
        for node in ray.nodes():
            if not node.get("Alive"):
                continue
            resources = node.get("Resources", {})
            for key in resources:
                if key.startswith("hw:"):
                    entry = profiles.setdefault(
                        key[3:], {"nodes": [], "node_ids": [], "measurement_nodes": []}
                    )
                    entry["nodes"].append(node.get("NodeManagerAddress", "?"))
                    entry["node_ids"].append(node.get("NodeID", "?"))
                    if resources.get(MEASURE):
                        entry["measurement_nodes"].append(node.get("NodeID", "?"))
        return [{"profile": p, **{k: sorted(v) for k, v in e.items()}} for p, e in sorted(profiles.items())]

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
