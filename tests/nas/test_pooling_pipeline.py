"""A pooling-mixture job run in-process: the mixture trains, every configuration is measured in its
assigned member, a crash resumes without redoing work, and the assignment is stored per epoch."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path

import pytest
import torch

from nas.artifacts import ArtifactStore
from nas.assignment import latest_assignment
from nas.pipeline import run_job
from nas.schemas import JobStatus
from nas.settings import Settings
from nas.store import Database, crud
from nas.store.models import utcnow
from supernets import Arch, make_space
from tests.nas.conftest import make_job_db
from tests.nas.test_pipeline import SPEC, Crash, LocalMeasurer

POOL_SPEC = copy.deepcopy(SPEC) | {
    "name": "pooling-pipeline",
    "search_space": {
        "family": "pooling-mixture-resnet",
        "blocks": 4,
        "pools": 2,
        "widths": [4, 8],
        "mixture": {"supernets": 2},
    },
    "training": {"schedule": "balanced-mixture", "epochs": 2, "batch_size": 25, "lr": 0.05},
}


@pytest.fixture()
def job(tmp_path: Path, fashion_mnist_dir: Path) -> tuple[Settings, Database, str]:
    jobs = make_job_db(tmp_path, fashion_mnist_dir)
    return jobs.settings, jobs.db, jobs.create_job(POOL_SPEC, name="p")


def test_mixture_job_measures_every_config_and_resumes(job: tuple[Settings, Database, str]) -> None:
    settings, db, job_id = job
    first = LocalMeasurer(crash_after=2)
    with pytest.raises(Crash):
        run_job(job_id, settings=settings, measure_latency=first, owner="w1")
    with db.session() as s:  # the reaper finds the dead worker's lease expired and requeues the job
        later = utcnow() + timedelta(seconds=settings.lease_s + 1)
        assert crud.reap_expired(s, max_attempts=settings.max_attempts, now=later).requeued == [job_id]
    second = LocalMeasurer()
    assert run_job(job_id, settings=settings, measure_latency=second, owner="w2") == "succeeded"
    space = make_space(POOL_SPEC["search_space"], in_channels=1, num_classes=10, image_size=28)
    store = ArtifactStore(settings.artifact_root)
    with db.session() as s:
        assert crud.get_job(s, job_id=job_id).status == JobStatus.succeeded  # type: ignore[union-attr]
        assert [a.meta["epoch"] for a in crud.list_artifacts(s, job_id=job_id, kind="assignment")] == [1, 2]
        subnets = crud.list_subnets(s, job_id=job_id)
        measured = {Arch.from_dict(r.arch).arch_hash for r in subnets}
        assert measured == {a.arch_hash for a in space.enumerate_archs()}  # exhaustive
        assert first.count + second.count == len(subnets) == 6  # nothing measured twice
        epochs = [e.payload for e in crud.list_events(s, job_id=job_id) if e.kind == "epoch"]
        assert [e["epoch"] for e in epochs] == [1, 2]
        assert epochs[-1]["temperature"] == pytest.approx(100.0)
        ckpt = max(crud.list_artifacts(s, job_id=job_id, kind="checkpoint"), key=lambda a: a.meta["epoch"])
        ckpt_uri = ckpt.uri
    assignment = latest_assignment(db, store, job_id)
    assert assignment is not None and assignment["epoch"] == 2
    state = store.get_torch(ckpt_uri)
    assert isinstance(state, dict)
    assert assignment["assignment"] == state["model"]["assignment"].tolist()
    assert torch.allclose(
        torch.tensor(assignment["weights"], dtype=torch.float64), state["model"]["mixture_weights"], atol=1e-5
    )
