"""The job pipeline run in-process on a real SQLite file with real training and measurement."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from torch import nn

from nas.artifacts import ArtifactStore
from nas.pipeline import STAGES, JobContext, run_job
from nas.pipeline.state import JobState
from nas.pipeline.train import run_train
from nas.schemas import JobSpec, JobStatus
from nas.settings import Settings
from nas.store import Database, crud
from nas.store.models import Measurement, utcnow
from predictors import LatencyStats, get_profile, measure_latency
from supernets import make_space
from tests.nas.conftest import SMALL_SPACE, make_job_db

SPEC = {
    "name": "pipeline-test",
    "dataset": {"kind": "builtin", "name": "fashion-mnist", "limit": 200},
    "search_space": SMALL_SPACE,
    "training": {
        "schedule": "sandwich",
        "epochs": 2,
        "batch_size": 50,
        "lr": 0.05,
        "bn_calibration_images": 100,
    },
    "hardware": ["cpu-fp32"],
    "objectives": [
        {"metric": "accuracy", "goal": "max"},
        {"metric": "latency_ms", "hardware": "cpu-fp32", "goal": "min"},
    ],
    "search": {
        "algorithm": "nsga2",
        "measure_budget": 10,
        "initial_measurements": 7,  # of the 10; the search round measures the other 3 at most
        "rounds": 1,
        "population": 8,
        "generations": 2,
    },
    "seed": 0,
}


def small_params_bound() -> float:
    """Half way between the smallest and largest subnet's parameters: a target only some subnets meet."""
    space = make_space(SPEC["search_space"], in_channels=1, num_classes=10, image_size=28)
    small, large = (space.total_cost(a).params for a in (space.smallest(), space.largest()))
    return (small + large) / 2


def spec_with_target() -> dict[str, Any]:
    target = {"name": "small", "constraints": [{"metric": "params", "max": small_params_bound()}]}
    return {**SPEC, "targets": [target]}


class Crash(BaseException):
    """Stands for the worker process dying: not an Exception, so the pipeline cannot record it."""


class LocalMeasurer:
    """Times models in this process with the real protocol; counts what it measured."""

    def __init__(self, crash_after: int | None = None) -> None:
        self.count = 0
        self.crash_after = crash_after

    def __call__(self, items: list[tuple[nn.Module, tuple[int, ...]]], profile: str) -> list[LatencyStats]:
        out = []
        for model, shape in items:
            if self.crash_after is not None and self.count >= self.crash_after:
                raise Crash()
            out.append(
                measure_latency(model, input_shape=shape, profile=get_profile(profile), warmup=2, repeats=5)
            )
            self.count += 1
        return out


@pytest.fixture()
def setup(tmp_path: Path, fashion_mnist_dir: Path) -> tuple[Settings, Database, str]:
    jobs = make_job_db(tmp_path, fashion_mnist_dir)
    return jobs.settings, jobs.db, jobs.create_job(spec_with_target())


def test_crashed_job_resumes_without_redoing_work(setup: tuple[Settings, Database, str]) -> None:
    settings, db, job_id = setup
    first = LocalMeasurer(crash_after=3)
    with pytest.raises(Crash):
        run_job(job_id, settings=settings, measure_latency=first, owner="w1")
    with db.session() as s:
        assert crud.get_job(s, job_id=job_id).status == JobStatus.running  # type: ignore[union-attr]
        checkpoints = crud.list_artifacts(s, job_id=job_id, kind="checkpoint")
        assert [a.meta["epoch"] for a in checkpoints] == [1, 2]

    # The dead worker's lease is still live: another worker leaves the job alone...
    second = LocalMeasurer()
    assert run_job(job_id, settings=settings, measure_latency=second, owner="w2") == "running"
    assert second.count == 0
    # ...until the reaper finds the lease expired and requeues it.
    with db.session() as s:
        later = utcnow() + timedelta(seconds=settings.lease_s + 1)
        assert crud.reap_expired(s, max_attempts=settings.max_attempts, now=later).requeued == [job_id]
    assert run_job(job_id, settings=settings, measure_latency=second, owner="w2") == "succeeded"
    with db.session() as s:
        # Training was not repeated, and nothing measured before the crash was measured again.
        assert len(crud.list_artifacts(s, job_id=job_id, kind="checkpoint")) == 2
        subnets = crud.list_subnets(s, job_id=job_id)
        assert first.count + second.count == len(subnets) <= SPEC["search"]["measure_budget"]
        assert sum(sub.source == "sample" for sub in subnets) == SPEC["search"]["initial_measurements"]
        front = crud.latest_front(s, job_id=job_id, final_only=True)
        assert front is not None and front.hypervolume is not None and front.hypervolume > 0
        points = crud.front_points(s, front_id=front.id)
        assert points and all(sub.accuracy_test is not None for _, sub in points)
        # The target's front comes from the same measurements, under its own bound, verified too.
        small = crud.latest_front(s, job_id=job_id, final_only=True, target="small")
        assert small is not None and crud.front_targets(s, job_id=job_id) == ["small"]
        small_points = crud.front_points(s, front_id=small.id)
        assert small_points and all(sub.accuracy_test is not None for _, sub in small_points)
        assert all(sub.params <= small_params_bound() for _, sub in small_points)
        assert len(subnets) <= SPEC["search"]["measure_budget"]
        events = crud.list_events(s, job_id=job_id)
        epochs = [e.payload for e in events if e.kind == "epoch"]
        assert [e["epoch"] for e in epochs] == [1, 2]
        assert all(0.0 <= e["val_acc_largest"] <= 1.0 for e in epochs)
        assert crud.list_predictors(s)  # the predict stage stored its fitted predictors with quality


def test_cancel_stops_the_job(setup: tuple[Settings, Database, str]) -> None:
    settings, db, job_id = setup
    with db.session() as s:
        crud.request_cancel(s, job_id=job_id)
    assert run_job(job_id, settings=settings, measure_latency=LocalMeasurer()) == "cancelled"
    with db.session() as s:
        assert crud.list_subnets(s, job_id=job_id) == []


class TakeoverMeasurer(LocalMeasurer):
    """Before its first measurement, the job's lease expires and another worker claims the job."""

    def __init__(self, db: Database, settings: Settings, job_id: str) -> None:
        super().__init__()
        self.db, self.settings, self.job_id = db, settings, job_id

    def __call__(self, items: list[tuple[nn.Module, tuple[int, ...]]], profile: str) -> list[LatencyStats]:
        if self.count == 0:
            later = utcnow() + timedelta(seconds=self.settings.lease_s + 1)
            with self.db.session() as s:
                assert crud.reap_expired(s, max_attempts=3, now=later).requeued == [self.job_id]
                lease = crud.claim_job(
                    s,
                    job_id=self.job_id,
                    owner="w2",
                    lease_s=self.settings.lease_s,
                    max_attempts=3,
                    now=later,
                )
                assert lease is not None and lease.attempt == 2
        return super().__call__(items, profile)


def test_a_worker_that_lost_its_lease_stops_and_writes_nothing(setup: tuple[Settings, Database, str]) -> None:
    settings, db, job_id = setup
    measurer = TakeoverMeasurer(db, settings, job_id)
    assert run_job(job_id, settings=settings, measure_latency=measurer, owner="w1") == "lease_lost"
    assert measurer.count == 1  # it measured once, then its first write was refused and it stopped
    with db.read() as s:
        job = crud.get_job(s, job_id=job_id)
        assert job is not None and job.status == JobStatus.running and job.lease_owner == "w2"
        assert job.attempt == 2
        assert crud.list_subnets(s, job_id=job_id) == []
        assert s.scalars(select(Measurement)).all() == []


def _geometry_spec(**search_space: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {**SPEC, "training": {**SPEC["training"], "epochs": 1}}
    spec["search"] = {**SPEC["search"], "measure_budget": 8, "population": 8, "generations": 1}
    spec["search_space"] = {**SPEC["search_space"], **search_space}
    return JobSpec.model_validate(spec).model_dump(mode="json")


@pytest.mark.slow
def test_jobs_of_other_families_and_geometries_share_one_database(
    setup: tuple[Settings, Database, str],
) -> None:
    settings, db, first = setup
    with db.session() as s:
        owner = crud.get_job(s, job_id=first).owner_id  # type: ignore[union-attr]
        specs = [
            _geometry_spec(family="ofa-opchoice", ops=["mbconv", "fused_mbconv"]),
            _geometry_spec(width_mults=[0.5, 1.0]),
        ]
        others = [crud.create_job(s, owner_id=owner, name=f"g{i}", spec=sp).id for i, sp in enumerate(specs)]
    for job_id in (first, *others):
        assert run_job(job_id, settings=settings, measure_latency=LocalMeasurer()) == "succeeded"
    with db.read() as s:
        for job_id in (first, *others):
            own = len(crud.list_subnets(s, job_id=job_id))
            latency = [p for p in crud.list_predictors(s) if p.job_id == job_id and p.kind == "latency"]
            # Each latency predictor saw this job's geometry only: at most its own measured subnets.
            assert latency and all(p.n_samples <= own for p in latency)


class FlakyMeasurer(LocalMeasurer):
    """The first measurement fails as a database outage would (transient) or as bad data would."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error: Exception | None = error

    def __call__(self, items: list[tuple[nn.Module, tuple[int, ...]]], profile: str) -> list[LatencyStats]:
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return super().__call__(items, profile)


@pytest.mark.slow
def test_a_transient_error_is_retried_and_a_permanent_one_fails_at_once(
    setup: tuple[Settings, Database, str],
) -> None:
    settings, db, job_id = setup
    settings = settings.model_copy(update={"retry_backoff_s": 0.0})
    outage = OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
    assert run_job(job_id, settings=settings, measure_latency=FlakyMeasurer(outage)) == "succeeded"
    with db.read() as s:
        job = crud.get_job(s, job_id=job_id)
        assert job is not None and job.attempt == 2
        # The retry resumed from storage: training was not repeated.
        assert len(crud.list_artifacts(s, job_id=job_id, kind="checkpoint")) == 2
        owner = job.owner_id
    with db.session() as s:
        # Another geometry, so that nothing it measures is already in the shared table.
        second = crud.create_job(
            s, owner_id=owner, name="bad", spec=_geometry_spec(width_mults=[0.5, 1.0])
        ).id
    bad = FlakyMeasurer(ValueError("input shape does not match the profile"))
    assert run_job(second, settings=settings, measure_latency=bad) == "failed"
    with db.read() as s:
        failed = crud.get_job(s, job_id=second)
        assert failed is not None and failed.attempt == 1
        assert failed.error == "ValueError: input shape does not match the profile"


def test_a_job_under_another_workers_live_lease_is_left_alone(setup: tuple[Settings, Database, str]) -> None:
    settings, db, job_id = setup
    with db.session() as s:
        assert crud.claim_job(s, job_id=job_id, owner="other", lease_s=settings.lease_s, max_attempts=3)
        crud.request_cancel(s, job_id=job_id)
    measurer = LocalMeasurer()
    assert run_job(job_id, settings=settings, measure_latency=measurer, owner="me") == "running"
    with db.read() as s:
        job = crud.get_job(s, job_id=job_id)
        # The cancel is for the worker holding the lease to honour; nothing here touched the job.
        assert job is not None and job.status == JobStatus.running and job.lease_owner == "other"
        assert job.attempt == 1 and crud.list_events(s, job_id=job_id)[-1].kind == "cancel"
    assert measurer.count == 0


def test_a_job_out_of_attempts_fails_with_the_reason(setup: tuple[Settings, Database, str]) -> None:
    settings, db, job_id = setup
    settings = settings.model_copy(update={"max_attempts": 1})
    long_ago = utcnow() - timedelta(seconds=2 * settings.lease_s)
    with db.session() as s:
        assert crud.claim_job(
            s, job_id=job_id, owner="dead", lease_s=settings.lease_s, max_attempts=1, now=long_ago
        )
    assert run_job(job_id, settings=settings, measure_latency=LocalMeasurer(), owner="me") == "failed"
    with db.read() as s:
        job = crud.get_job(s, job_id=job_id)
        assert job is not None and job.error is not None and "used all 1 attempts" in job.error


def test_a_stored_spec_that_no_longer_validates_fails_at_once(setup: tuple[Settings, Database, str]) -> None:
    settings, db, job_id = setup
    with db.session() as s:
        owner = crud.get_job(s, job_id=job_id).owner_id  # type: ignore[union-attr]
        bad = crud.create_job(s, owner_id=owner, name="bad", spec={"name": "bad", "seed": "not a number"}).id
    assert run_job(bad, settings=settings, measure_latency=LocalMeasurer()) == "failed"
    with db.read() as s:
        job = crud.get_job(s, job_id=bad)
        assert job is not None and job.attempt == 0
        assert job.error is not None and job.error.startswith(
            "the job's spec is invalid, resubmit it corrected"
        )


class StageWatcher(LocalMeasurer):
    """Reads the job's stage and progress from the database each time it is asked to measure."""

    def __init__(self, db: Database, job_id: str) -> None:
        super().__init__()
        self.db, self.job_id = db, job_id
        self.seen: list[tuple[str, float]] = []

    def __call__(self, items: list[tuple[nn.Module, tuple[int, ...]]], profile: str) -> list[LatencyStats]:
        with self.db.read() as s:
            job = crud.get_job(s, job_id=self.job_id)
            assert job is not None and job.stage is not None
            self.seen.append((job.stage, job.progress))
        return super().__call__(items, profile)


def test_stage_and_progress_tell_the_truth_through_every_stage(setup: tuple[Settings, Database, str]) -> None:
    settings, db, job_id = setup
    watcher = StageWatcher(db, job_id)
    assert run_job(job_id, settings=settings, measure_latency=watcher) == "succeeded"
    names = [name for name, _ in STAGES]
    with db.read() as s:
        job = crud.get_job(s, job_id=job_id)
        assert job is not None and job.stage == "verify" and job.progress == 1.0
        events = crud.list_events(s, job_id=job_id)
    started = [e.payload["stage"] for e in events if e.kind == "stage" and e.payload["status"] == "started"]
    assert started == names
    current, last = None, 0.0
    for e in events:
        if e.kind == "stage" and e.payload["status"] == "started":
            current, last = e.payload["stage"], 0.0
        # Every event of a stage is labelled with the stage running, progress included.
        assert e.stage in (None, current), (e.kind, e.stage, current, e.payload)
        if e.kind == "progress":
            assert e.payload["stage"] == current
            share = e.payload["done"] / e.payload["total"]
            assert last <= share <= 1.0, (current, last, e.payload)  # monotone within the stage
            last = share
    reporting = [s for s in names if any(e.kind == "progress" and e.stage == s for e in events)]
    assert reporting == ["train", "measure", "predict", "search", "verify"]
    # What the job row said whenever a subnet was timed: the measure stage, then the search's.
    stages = [stage for stage, _ in watcher.seen]
    assert stages == sorted(stages, key=names.index) and {"measure", "search"} <= set(stages)
    for stage in set(stages):
        shares = [p for st, p in watcher.seen if st == stage]
        assert shares == sorted(shares) and all(0.0 <= p <= 1.0 for p in shares)
    # The search's rounds stored real costs for what they measured, and nothing was timed twice.
    with db.read() as s:
        subnets = crud.list_subnets(s, job_id=job_id)
        assert subnets and all(sub.params > 0 and sub.flops > 0 for sub in subnets)
        assert any(sub.source == "search" and sub.predicted for sub in subnets)
    assert watcher.count == len(subnets)


def test_the_trained_supernet_is_handed_on_as_its_checkpoint_would_give_it(
    setup: tuple[Settings, Database, str],
) -> None:
    settings, db, job_id = setup
    with db.read() as s:
        spec = JobSpec.model_validate(crud.get_job(s, job_id=job_id).spec)  # type: ignore[union-attr]

    def state() -> JobState:
        ctx = JobContext(
            job_id=job_id,
            spec=spec,
            settings=settings,
            db=db,
            store=ArtifactStore(settings.artifact_root),
            measure_latency=LocalMeasurer(),
        )
        return JobState(ctx)

    trained = state()
    run_train(trained)
    handed = trained.trained_supernet()
    resumed = state().trained_supernet()  # what a resumed run loads from the last checkpoint
    assert handed is not resumed
    space = trained.space
    x = trained.calibration_images[:16]
    for arch in (space.largest(), space.smallest(), space.sample(np.random.default_rng(1))):
        with torch.inference_mode():
            assert torch.equal(handed.extract(arch).eval()(x), resumed.extract(arch).eval()(x))
