"""The Ray tasks: one runs a whole job's pipeline, the other times a model on a node's hardware."""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray
import torch
from torch import nn

from nas.pipeline import run_job
from nas.pipeline.runner import worker_identity
from nas.settings import Settings
from nas.store import Database, crud
from predictors.hardware import get_profile, node_fingerprint, resource_name
from predictors.measure import LatencyStats, measure_latency
from workers.resources import MEASURE


class HardwareUnavailableError(RuntimeError):
    """No node of the cluster serves the hardware profile a job asked for."""


@ray.remote(num_cpus=0, max_retries=0)
def measure_latency_task(
    model_bytes: bytes, input_shape: tuple[int, ...], profile_name: str
) -> dict[str, Any]:
    """Time one model with the measurement protocol on this node (which holds the profile's resource);
    the result names the node and CPU it ran on."""
    model = torch.load(io.BytesIO(model_bytes), map_location="cpu", weights_only=False)
    stats = measure_latency(model, input_shape=input_shape, profile=get_profile(profile_name))
    context = ray.get_runtime_context()
    node = {
        **node_fingerprint(),
        "ray_node_id": context.get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
    }
    return replace(stats, node=node).to_dict()


def measurement_resources(profile_name: str) -> dict[str, float]:
    """What a latency task asks for: the profile's ``hw:`` resource, and ``nas_measure`` where a
    measurement-only node serves the profile (then it runs there, never beside a training job).

    Without such a node the task runs on a node that trains too; there it waits for the node's one
    unit of the profile, while the job asking for it waits for the result rather than training.
    """
    key = resource_name(get_profile(profile_name))
    alive = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(r.get(key, 0) > 0 and r.get(MEASURE, 0) > 0 for r in alive):
        return {key: 1, MEASURE: 1}
    if any(r.get(key, 0) > 0 for r in alive):
        return {key: 1}
    served = sorted({k for r in alive for k in r if k.startswith("hw:")}) or ["none"]
    raise HardwareUnavailableError(
        f"no node serves hardware profile {profile_name!r}; the cluster serves: {', '.join(served)}. "
        "Start a worker on such hardware (`nas worker --profiles ...`) or remove the profile from "
        "the job's 'hardware'."
    )


class LeaseHeartbeat:
    """Renews the lease of the job a worker runs as ``owner``, while it waits on something else.

    The pipeline renews its lease at every write and cancel poll; a wait for a latency measurement
    on another node (queued behind other jobs' measurements, or slow) has neither, so the waiter
    beats every ``interval_s`` (a quarter of the lease). Raises ``LeaseLostError`` once another
    attempt holds the job.
    """

    def __init__(self, settings: Settings, *, job_id: str, owner: str) -> None:
        self.job_id, self.owner, self.lease_s = job_id, owner, settings.lease_s
        self.interval_s = settings.lease_s / 4
        self._db = Database(settings.database_url)

    def __call__(self) -> None:
        with self._db.session() as s:
            crud.renew_owned_lease(s, job_id=self.job_id, owner=self.owner, lease_s=self.lease_s)

    def close(self) -> None:
        self._db.dispose()


def _wait_beating(
    refs: list[ray.ObjectRef], heartbeat: Callable[[], None] | None, every_s: float
) -> list[Any]:
    """``ray.get(refs)``, calling ``heartbeat`` every ``every_s`` until all are done; if it raises
    (the lease is lost), the measurements still pending are cancelled and the error goes up."""
    pending = list(refs)
    while heartbeat is not None and pending:
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=every_s)
        if pending:
            try:
                heartbeat()
            except BaseException:
                for ref in pending:
                    ray.cancel(ref)
                raise
    return list(ray.get(refs))


def ray_latency_measurer(
    items: list[tuple[nn.Module, tuple[int, ...]]],
    profile_name: str,
    *,
    heartbeat: LeaseHeartbeat | None = None,
) -> list[LatencyStats]:
    """Measure models on nodes advertising ``hw:<profile>``, one at a time per node; while waiting,
    ``heartbeat`` keeps the job's lease alive."""
    resources = measurement_resources(profile_name)
    refs = []
    for model, shape in items:
        buf = io.BytesIO()
        torch.save(model, buf)
        refs.append(
            measure_latency_task.options(resources=resources).remote(buf.getvalue(), shape, profile_name)
        )
    every_s = heartbeat.interval_s if heartbeat is not None else 0.0
    return [LatencyStats.from_dict(d) for d in _wait_beating(refs, heartbeat, every_s)]


def check_reachable(settings: Settings) -> None:
    """Refuse to run where the job's SQLite database is not (SQLAlchemy would create an empty one)."""
    prefix = "sqlite:///"
    url = settings.database_url
    if url.startswith(prefix) and ":memory:" not in url and not Path(url[len(prefix) :]).exists():
        raise RuntimeError(
            f"node {ray.util.get_node_ip_address()} cannot open the service's database {url}: "
            "run the cluster on PostgreSQL (NAS_DATABASE_URL=postgresql+psycopg://...)"
        )


def lower_priority(niceness: int) -> None:
    """Make every thread of this process (and those it starts later) ``niceness`` nicer.

    On Linux a niceness belongs to a thread, so each one already running is set; new threads
    inherit it from the thread that starts them.
    """
    if niceness <= 0 or not hasattr(os, "setpriority"):
        return
    tasks = Path("/proc/self/task")
    tids = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
        except OSError:  # a thread that just ended
            continue


# max_calls=1: the worker process that trained (at a lowered priority) exits with the job, so no
# later task, a latency measurement above all, runs in it.
@ray.remote(num_cpus=0, max_retries=2, retry_exceptions=False, max_calls=1)
def run_job_task(job_id: str, settings_data: dict[str, Any]) -> str:
    """Run (or resume) the pipeline of ``job_id``; Ray retries it on another node if this one dies."""
    settings = Settings(**settings_data)
    check_reachable(settings)
    lower_priority(settings.train_nice)
    threads = settings.train_threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    owner = worker_identity()
    heartbeat = LeaseHeartbeat(settings, job_id=job_id, owner=owner)
    try:
        measurer = functools.partial(ray_latency_measurer, heartbeat=heartbeat)
        return run_job(job_id, settings=settings, measure_latency=measurer, owner=owner)
    finally:
        heartbeat.close()
