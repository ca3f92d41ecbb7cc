"""Durable artifacts in a real pipeline run: a corrupt checkpoint falls back an epoch; bundles are built
once, deterministically, and rebuilt to the same bytes when the stored one is corrupt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nas.artifacts import ArtifactStore
from nas.export import export_subnet
from nas.pipeline import run_job
from nas.pipeline.context import JobContext
from nas.pipeline.state import JobState
from nas.schemas import JobSpec
from nas.store import crud
from tests.nas.conftest import JobDb
from tests.nas.test_pipeline import SPEC, Crash, LocalMeasurer

pytestmark = pytest.mark.slow

# No search rounds: the test is about what training and export store, not about the search.
QUICK: dict[str, Any] = {**SPEC, "search": {**SPEC["search"], "measure_budget": 4, "rounds": 0}}


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _checkpoints(jobs: JobDb, job_id: str) -> dict[int, str]:
    with jobs.db.read() as s:
        return {a.meta["epoch"]: a.sha256 for a in crud.list_artifacts(s, job_id=job_id, kind="checkpoint")}


def test_corrupt_checkpoint_falls_back_and_bundles_are_built_once(job_db: JobDb) -> None:
    settings = job_db.settings
    job_id = job_db.create_job(QUICK)
    with pytest.raises(Crash):  # dies at its first measurement: training is done, two checkpoints stored
        run_job(job_id, settings=settings, measure_latency=LocalMeasurer(crash_after=0), owner="w1")
    before = _checkpoints(job_db, job_id)
    assert sorted(before) == [1, 2]
    newest = Path(settings.artifact_root) / f"jobs/{job_id}/checkpoints/epoch-0002.pt"
    _flip_a_byte(newest)

    job_db.expire_and_reap(job_id)
    assert run_job(job_id, settings=settings, measure_latency=LocalMeasurer(), owner="w2") == "succeeded"
    with job_db.db.read() as s:
        events = crud.list_events(s, job_id=job_id)
    fallbacks = [e.payload for e in events if e.kind == "log" and "checkpoint_epoch" in e.payload]
    assert [f["checkpoint_epoch"] for f in fallbacks] == [2]
    assert "corrupt" in fallbacks[0]["message"]
    logs = [e.payload.get("message") for e in events if e.kind == "log"]
    assert "resumed training after epoch 1" in logs
    assert [e.payload["epoch"] for e in events if e.kind == "epoch"] == [1, 2, 2]  # epoch 2 redone once
    after = _checkpoints(job_db, job_id)
    # Redone from epoch 1's checkpoint, epoch 2 came out bit for bit as the first time.
    assert after == before

    # A missing newest checkpoint falls back the same way.
    newest.unlink()
    ctx = JobContext(
        job_id=job_id, spec=JobSpec.model_validate(QUICK), settings=settings, db=job_db.db,
        store=ArtifactStore(settings.artifact_root), measure_latency=LocalMeasurer(),
    )  # fmt: skip
    loaded = JobState(ctx).load_checkpoint()
    assert loaded is not None and loaded[0].meta["epoch"] == 1 and "model" in loaded[1]

    # Export: built once; a second request returns the stored bundle.
    store = ArtifactStore(settings.artifact_root)
    with job_db.db.read() as s:
        front = crud.latest_front(s, job_id=job_id, final_only=True)
        assert front is not None
        subnet_id = crud.front_points(s, front_id=front.id)[0][1].id
    first = export_subnet(db=job_db.db, store=store, job_id=job_id, subnet_id=subnet_id, settings=settings)
    again = export_subnet(db=job_db.db, store=store, job_id=job_id, subnet_id=subnet_id, settings=settings)
    assert again.id == first.id and again.sha256 == first.sha256
    # A corrupt stored bundle is not handed out: it is rebuilt, to the very same bytes.
    _flip_a_byte(Path(first.uri))
    rebuilt = export_subnet(db=job_db.db, store=store, job_id=job_id, subnet_id=subnet_id, settings=settings)
    assert rebuilt.id != first.id and rebuilt.sha256 == first.sha256
    store.verify(rebuilt.uri, rebuilt.sha256)
    with job_db.db.read() as s:
        bundles = crud.list_artifacts(s, job_id=job_id, kind="bundle")
        assert [b.id for b in bundles] == [rebuilt.id]
