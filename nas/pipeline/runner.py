"""Runs a job's stages in order under a lease; each stage skips what storage says is already done."""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
import uuid
from collections.abc import Callable

from nas.artifacts import ArtifactStore
from nas.pipeline.context import JobCancelledError, JobContext, LatencyMeasurer
from nas.pipeline.measure import run_measure
from nas.pipeline.predict import run_predict
from nas.pipeline.retry import is_transient
from nas.pipeline.search_stage import run_search
from nas.pipeline.state import JobState
from nas.pipeline.train import run_train
from nas.pipeline.verify import run_verify
from nas.schemas import JOB_STAGES, JobSpec, JobStatus
from nas.settings import Settings
from nas.store import Database, crud
from nas.store.models import utcnow

log = logging.getLogger(__name__)

LEASE_LOST = "lease_lost"


def run_data(state: JobState) -> None:
    """Stage 1: load and split the dataset; record its hash on the job."""
    splits = state.splits
    with state.ctx.db.session() as s:
        crud.update_job(s, job_id=state.ctx.job_id, dataset_hash=splits.sha256)
    state.ctx.emit(
        "log",
        {
            "message": f"dataset {splits.name}: {len(splits.train_x)} train, {len(splits.val_x)} val, "
            f"{len(splits.test_x)} test images, {splits.num_classes} classes"
        },
        stage="data",
    )


_RUNS: dict[str, Callable[[JobState], None]] = {
    "data": run_data,
    "train": run_train,
    "measure": run_measure,
    "predict": run_predict,
    "search": run_search,
    "verify": run_verify,
}
# In the order nas.schemas.JOB_STAGES gives (the one list the CLI and the dashboard show too).
STAGES: list[tuple[str, Callable[[JobState], None]]] = [(name, _RUNS[name]) for name in JOB_STAGES]
FINAL = {JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled}


def worker_identity() -> str:
    """A lease owner name unique to this process and run: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class _Retry(Exception):
    """A transient error ended this attempt; the job is retried after a backoff."""


def run_job(
    job_id: str, *, settings: Settings, measure_latency: LatencyMeasurer, owner: str | None = None
) -> str:
    """Run or resume ``job_id`` to its end; returns its status. Never raises for a job's own failure.

    Returns the current status without running anything if another worker holds the job's lease,
    and ``"lease_lost"`` if this worker lost the lease midway (its writes were refused).
    """
    db = Database(settings.database_url)
    owner = owner or worker_identity()
    try:
        retry = 0
        while True:
            try:
                return _attempt(
                    job_id, db=db, settings=settings, measure_latency=measure_latency, owner=owner
                )
            except _Retry as exc:
                if retry >= settings.max_attempts:  # e.g. the database stays down: the reaper takes over
                    raise (exc.__cause__ or exc) from None
                time.sleep(settings.retry_backoff_s * 2**retry)
                retry += 1
    finally:
        db.dispose()


def _attempt(
    job_id: str, *, db: Database, settings: Settings, measure_latency: LatencyMeasurer, owner: str
) -> str:
    try:
        with db.session() as s:
            job = crud.get_job(s, job_id=job_id)
            if job is None:
                raise LookupError(f"job {job_id} does not exist")
            if job.status in FINAL:
                return str(job.status.value)
            try:
                spec = JobSpec.model_validate(job.spec)
            except ValueError as exc:  # permanent: a stored spec this version no longer accepts
                error = f"the job's spec is invalid, resubmit it corrected: {exc}"
                crud.finish_job(s, job_id=job_id, status=JobStatus.failed, error=error)
                return JobStatus.failed.value
            lease = crud.claim_job(
                s, job_id=job_id, owner=owner, lease_s=settings.lease_s, max_attempts=settings.max_attempts
            )
            if lease is None:
                s.refresh(job)
                expires = job.lease_expires_at
                live = job.status == JobStatus.running and expires is not None and expires > utcnow()
                if job.status in FINAL or (live and job.lease_owner != owner):
                    return str(job.status.value)  # finished, or another worker runs it (and sees a cancel)
                if job.cancel_requested:
                    crud.finish_job(s, job_id=job_id, status=JobStatus.cancelled)
                    return JobStatus.cancelled.value
                error = f"job used all {settings.max_attempts} attempts; last error: {job.error}"
                crud.finish_job(s, job_id=job_id, status=JobStatus.failed, error=error)
                return JobStatus.failed.value
    except Exception as exc:
        if is_transient(exc):
            log.warning("job %s: transient error before it started, retrying: %s", job_id, exc)
            raise _Retry from exc
        raise
    fenced = db.fenced(lambda s: crud.renew_lease(s, lease, lease_s=settings.lease_s))
    try:
        return _run_stages(job_id, spec, lease, db=fenced, settings=settings, measure_latency=measure_latency)
    except crud.LeaseLostError:
        log.warning(
            "job %s: attempt %d lost its lease; stopping without further writes", job_id, lease.attempt
        )
        return LEASE_LOST


def _run_stages(
    job_id: str,
    spec: JobSpec,
    lease: crud.Lease,
    *,
    db: Database,
    settings: Settings,
    measure_latency: LatencyMeasurer,
) -> str:
    store = ArtifactStore(settings.artifact_root)
    ctx = JobContext(
        job_id=job_id, spec=spec, settings=settings, db=db, store=store, measure_latency=measure_latency,
        attempt=lease.attempt,
    )  # fmt: skip
    state = JobState(ctx)
    status, error = JobStatus.succeeded, None
    try:
        for name, stage in STAGES:
            ctx.check_cancel()
            with db.session() as s:
                crud.update_job(s, job_id=job_id, stage=name, progress=0.0)
            ctx.emit("stage", {"stage": name, "status": "started"}, stage=name)
            stage(state)
            with db.session() as s:
                crud.update_job(s, job_id=job_id, stage=name, progress=1.0)
                crud.add_event(
                    s, job_id=job_id, kind="stage", stage=name, payload={"stage": name, "status": "done"}
                )
    except (JobCancelledError, crud.LeaseLostError) as exc:
        if isinstance(exc, crud.LeaseLostError):
            raise
        status = JobStatus.cancelled
    except Exception as exc:  # a job's failure is recorded on the job, not raised into the scheduler
        error = f"{type(exc).__name__}: {exc}"
        if is_transient(exc) and lease.attempt < settings.max_attempts:
            log.warning("job %s: transient error in attempt %d, retrying: %s", job_id, lease.attempt, error)
            _note_retry(ctx, error, lease.attempt)
            raise _Retry from exc
        log.exception("job %s failed", job_id)
        status = JobStatus.failed
        if is_transient(exc):
            error = f"gave up after {lease.attempt} attempts; last error: {error}"
        ctx.emit("error", {"message": error, "traceback": traceback.format_exc(limit=20)})
    with db.session() as s:
        crud.finish_job(s, job_id=job_id, status=status, error=error)
    return status.value


def _note_retry(ctx: JobContext, error: str, attempt: int) -> None:
    """Record the transient error (best effort: the database may be what failed)."""
    try:
        with ctx.db.session() as s:
            crud.update_job(s, job_id=ctx.job_id, error=f"attempt {attempt}: {error} (retrying)")
    except crud.LeaseLostError:
        raise
    except Exception:
        log.debug("job %s: could not record the retry", ctx.job_id, exc_info=True)
