"""Runs a job's stages in order; each stage skips what storage says is already done."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

from nas.artifacts import ArtifactStore
from nas.pipeline.context import JobCancelledError, JobContext, LatencyMeasurer
from nas.pipeline.search import run_measure, run_predict, run_search, run_verify
from nas.pipeline.state import JobState
from nas.pipeline.train import run_train
from nas.schemas import JobSpec, JobStatus
from nas.settings import Settings
from nas.store import Database, crud

log = logging.getLogger(__name__)


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


STAGES: list[tuple[str, Callable[[JobState], None]]] = [
    ("data", run_data),
    ("train", run_train),
    ("measure", run_measure),
    ("predict", run_predict),
    ("search", run_search),
    ("verify", run_verify),
]
FINAL = {JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled}


def run_job(job_id: str, *, settings: Settings, measure_latency: LatencyMeasurer) -> str:
    """Run or resume ``job_id`` to its end; returns the final status. Never raises for a job's own failure."""
    db = Database(settings.database_url)
    store = ArtifactStore(settings.artifact_root)
    with db.session() as s:
        job = crud.get_job(s, job_id=job_id)
        if job is None:
            raise LookupError(f"job {job_id} does not exist")
        if job.status in FINAL:
            return str(job.status.value)
        if job.cancel_requested:
            crud.finish_job(s, job_id=job_id, status=JobStatus.cancelled)
            return JobStatus.cancelled.value
        spec = JobSpec.model_validate(job.spec)
        crud.update_job(s, job_id=job_id, status=JobStatus.running)
    ctx = JobContext(
        job_id=job_id, spec=spec, settings=settings, db=db, store=store, measure_latency=measure_latency
    )
    state = JobState(ctx)
    status, error = JobStatus.succeeded, None
    try:
        for name, stage in STAGES:
            ctx.check_cancel()
            with db.session() as s:
                crud.update_job(s, job_id=job_id, stage=name, progress=0.0)
            ctx.emit("stage", {"stage": name, "status": "started"}, stage=name)
            stage(state)
            ctx.emit("stage", {"stage": name, "status": "done"}, stage=name)
    except JobCancelledError:
        status = JobStatus.cancelled
    except Exception as exc:  # a job's failure is recorded on the job, not raised into the scheduler
        log.exception("job %s failed", job_id)
        status, error = JobStatus.failed, f"{type(exc).__name__}: {exc}"
        ctx.emit("error", {"message": error, "traceback": traceback.format_exc(limit=20)})
    with db.session() as s:
        crud.finish_job(s, job_id=job_id, status=status, error=error)
    return status.value
