"""The CRUD contract, run over every backend."""

from __future__ import annotations

from datetime import UTC

import pytest
from sqlalchemy import select

from nas.schemas import JobStatus
from nas.store import ApiToken, Database, crud

ARCH = {"family": "ofa-mbv3", "resolution": 28, "stages": []}


def test_token_is_stored_only_as_its_hash(db: Database, owner_id: int) -> None:
    with db.session() as s:
        token = crud.create_token(s, user_id=owner_id)
    with db.session() as s:
        user = crud.user_for_token(s, token=token)
        assert user is not None and user.id == owner_id
        assert crud.user_for_token(s, token=token + "x") is None
        stored = s.scalars(select(ApiToken)).all()
        assert [t.token_hash for t in stored] == [crud.hash_token(token)]
        assert token not in stored[0].token_hash
        assert stored[0].last_used_at is not None
    with db.session() as s:
        assert crud.revoke_token(s, token=token)
    with db.session() as s:
        assert crud.user_for_token(s, token=token) is None


def test_jobs_are_owner_scoped_and_newest_first(db: Database, owner_id: int) -> None:
    with db.session() as s:
        other = crud.create_user(s, name="mallory").id
        first = crud.create_job(s, owner_id=owner_id, name="a", spec={"k": [1, 2]}).id
        second = crud.create_job(s, owner_id=owner_id, name="b", spec={}).id
        crud.create_job(s, owner_id=other, name="c", spec={})
    with db.session() as s:
        assert [j.id for j in crud.list_jobs(s, owner_id=owner_id)] == [second, first]
        assert crud.count_jobs(s, owner_id=owner_id) == 2
        assert crud.get_job(s, job_id=first, owner_id=other) is None
        job = crud.get_job(s, job_id=first, owner_id=owner_id)
        assert job is not None and job.spec == {"k": [1, 2]} and job.status == JobStatus.queued
        assert job.created_at.tzinfo is not None


def test_job_lifecycle_stamps_times_and_events(db: Database, job_id: str) -> None:
    with db.session() as s:
        crud.update_job(s, job_id=job_id, status=JobStatus.running, stage="train", progress=0.5)
    with db.session() as s:
        assert crud.unfinished_job_ids(s) == [job_id]
        crud.finish_job(s, job_id=job_id, status=JobStatus.succeeded)
    with db.session() as s:
        job = crud.get_job(s, job_id=job_id)
        assert job is not None and job.status == JobStatus.succeeded and job.progress == 1.0
        assert job.started_at is not None and job.finished_at is not None
        assert job.finished_at >= job.started_at and job.finished_at.tzinfo == UTC
        assert crud.unfinished_job_ids(s) == []
        assert [e.payload["status"] for e in crud.list_events(s, job_id=job_id)] == ["succeeded"]


def test_update_job_rejects_bad_values(db: Database, job_id: str) -> None:
    with pytest.raises(ValueError, match="progress"), db.session() as s:
        crud.update_job(s, job_id=job_id, progress=1.5)
    with pytest.raises(ValueError, match="final status"), db.session() as s:
        crud.finish_job(s, job_id=job_id, status=JobStatus.running)
    with pytest.raises(LookupError), db.session() as s:
        crud.update_job(s, job_id="missing", stage="x")


def test_request_cancel_flags_unfinished_jobs_only(db: Database, owner_id: int, job_id: str) -> None:
    with db.session() as s:
        assert crud.request_cancel(s, job_id=job_id, owner_id=owner_id + 1) is None
        job = crud.request_cancel(s, job_id=job_id, owner_id=owner_id)
        assert job is not None and job.cancel_requested
        done = crud.create_job(s, owner_id=owner_id, name="done", spec={}).id
        crud.finish_job(s, job_id=done, status=JobStatus.failed, error="x")
        finished = crud.request_cancel(s, job_id=done)
        assert finished is not None and not finished.cancel_requested


def test_events_page_by_id(db: Database, job_id: str) -> None:
    with db.session() as s:
        ids = [
            crud.add_event(s, job_id=job_id, kind="progress", stage="train", payload={"i": i}).id
            for i in range(5)
        ]
    with db.session() as s:
        assert [e.payload["i"] for e in crud.list_events(s, job_id=job_id)] == [0, 1, 2, 3, 4]
        assert [e.id for e in crud.list_events(s, job_id=job_id, after_id=ids[2])] == ids[3:]
        assert [e.id for e in crud.list_events(s, job_id=job_id, limit=2)] == ids[:2]


def test_upsert_subnet_is_idempotent_and_fills_in(db: Database, job_id: str) -> None:
    with db.session() as s:
        a = crud.upsert_subnet(
            s, job_id=job_id, arch_hash="h1", arch=ARCH, params=10, flops=3_000_000_000, source="sample",
            accuracy_val=0.8,
        )  # fmt: skip
    with db.session() as s:
        b = crud.upsert_subnet(
            s, job_id=job_id, arch_hash="h1", arch=ARCH, params=10, flops=3_000_000_000, source="search",
            accuracy_test=0.7, measurement_key="m1",
        )  # fmt: skip
        assert b.id == a.id
    with db.session() as s:
        rows = crud.list_subnets(s, job_id=job_id)
        assert len(rows) == 1
        row = rows[0]
        assert (row.accuracy_val, row.accuracy_test, row.measurement_key) == (0.8, 0.7, "m1")
        assert row.source == "sample" and row.flops == 3_000_000_000 and row.arch == ARCH
        assert crud.get_subnet(s, job_id=job_id, subnet_id=row.id) is not None
        assert crud.get_subnet(s, job_id="other", subnet_id=row.id) is None


def test_measurements_are_shared_and_first_wins(db: Database) -> None:
    stats = {
        "median_ms": 1.5,
        "mean_ms": 1.6,
        "std_ms": 0.1,
        "p10_ms": 1.4,
        "p90_ms": 1.9,
        "min_ms": 1.3,
        "n": 50,
    }
    with db.session() as s:
        first = crud.put_measurement(
            s,
            profile="cpu-fp32",
            arch_hash="m1",
            resolution=28,
            batch=1,
            stats={**stats, "threads": 1},
            env={"a": 1},
        )
        again = crud.put_measurement(
            s, profile="cpu-fp32", arch_hash="m1", resolution=28, batch=1, stats={**stats, "median_ms": 9.0}
        )
        assert again.id == first.id and again.median_ms == 1.5
        crud.put_measurement(s, profile="cpu-fp32", arch_hash="m1", resolution=28, batch=8, stats=stats)
        node = {"hostname": "h1", "ray_node_id": "abc", "cpu": "x86", "pid": 7}
        crud.put_measurement(
            s, profile="cpu-fp32", arch_hash="m4", resolution=28, batch=1, stats={**stats, "node": node}
        )
    with db.session() as s:
        where = crud.get_measurement(s, profile="cpu-fp32", arch_hash="m4", resolution=28, batch=1)
        assert where is not None and where.env == {"node": node}  # beside the stats, not in them
        got = crud.get_measurement(s, profile="cpu-fp32", arch_hash="m1", resolution=28, batch=1)
        assert got is not None and got.p90_ms == 1.9 and got.env == {"a": 1, "stats": {"threads": 1}}
        assert crud.get_measurement(s, profile="cpu-int8", arch_hash="m1", resolution=28, batch=1) is None
        by_key = crud.latency_by_key(s, measurement_keys=["m1", "m2"])
        assert list(by_key) == ["m1"] and by_key["m1"]["cpu-fp32"].batch == 1
    with pytest.raises(ValueError, match="median_ms"), db.session() as s:
        crud.put_measurement(s, profile="cpu-fp32", arch_hash="m3", resolution=28, batch=1, stats={"n": 1})


def test_fronts_latest_final_and_history(db: Database, job_id: str) -> None:
    with db.session() as s:
        sid = crud.upsert_subnet(s, job_id=job_id, arch_hash="h", arch=ARCH, params=1, flops=1, source="x").id
        objectives = [{"metric": "accuracy", "goal": "max"}]
        for rnd, hv in ((0, 0.1), (1, 0.3)):
            crud.save_front(
                s, job_id=job_id, hardware="cpu-fp32", round=rnd, objectives=objectives,
                reference_point=[0.0, 10.0], hypervolume=hv, points=[(sid, {"accuracy": 0.9}, None)],
            )  # fmt: skip
        latest = crud.latest_front(s, job_id=job_id)
        assert latest is not None and latest.round == 1
        assert crud.latest_front(s, job_id=job_id, final_only=True) is None
        crud.save_front(
            s, job_id=job_id, hardware="cpu-fp32", round=1, objectives=objectives,
            reference_point=[0.0, 10.0], hypervolume=0.35,
            points=[(sid, {"accuracy": 0.91}, {"accuracy": 0.9})], final=True,
        )  # fmt: skip
    with db.session() as s:
        final = crud.latest_front(s, job_id=job_id)
        assert final is not None and final.final and final.hypervolume == 0.35
        pts = crud.front_points(s, front_id=final.id)
        assert [(p.measured, p.predicted, sub.id) for p, sub in pts] == [
            ({"accuracy": 0.91}, {"accuracy": 0.9}, sid)
        ]
        assert [(f.round, f.hypervolume) for f in crud.front_history(s, job_id=job_id)] == [
            (0, 0.1), (1, 0.3), (1, 0.35),
        ]  # fmt: skip
    with pytest.raises(ValueError, match="upsert_subnet"), db.session() as s:
        crud.save_front(
            s, job_id=job_id, hardware=None, round=2, objectives=[], reference_point=None, hypervolume=None,
            points=[(sid + 1000, {}, None)],
        )  # fmt: skip


def test_artifacts_are_scoped_by_owner_or_job_owner(db: Database, owner_id: int, job_id: str) -> None:
    with db.session() as s:
        other = crud.create_user(s, name="oscar").id
        ckpt = crud.add_artifact(
            s,
            job_id=job_id,
            kind="checkpoint",
            uri="file:///a",
            sha256="0" * 64,
            size_bytes=5,
            meta={"epoch": 1},
        ).id
        own = crud.add_artifact(
            s, owner_id=other, kind="bundle", uri="file:///b", sha256="1" * 64, size_bytes=6
        ).id
    with db.session() as s:
        assert crud.get_artifact(s, artifact_id=ckpt, owner_id=owner_id) is not None
        assert crud.get_artifact(s, artifact_id=ckpt, owner_id=other) is None
        assert crud.get_artifact(s, artifact_id=own, owner_id=other) is not None
        assert crud.get_artifact(s, artifact_id=own, owner_id=owner_id) is None
        assert [a.id for a in crud.list_artifacts(s, job_id=job_id, kind="checkpoint")] == [ckpt]
    with pytest.raises(ValueError, match="artifact kind"), db.session() as s:
        crud.add_artifact(s, kind="zip", uri="u", sha256="", size_bytes=0)


def test_predictor_versions_count_up_per_target(db: Database, owner_id: int, job_id: str) -> None:
    with db.session() as s:
        v1 = crud.add_predictor(
            s, kind="latency", target="cpu-fp32", space_key="k", n_samples=10, metrics={"tau": 0.8}
        )
        v2 = crud.add_predictor(
            s, kind="latency", target="cpu-fp32", space_key="k", n_samples=20, metrics={}, job_id=job_id
        )
        acc = crud.add_predictor(
            s, kind="accuracy", target="accuracy", space_key="k", n_samples=5, metrics={}
        )
        assert (v1.version, v2.version, acc.version) == (1, 2, 1)
        stranger = crud.create_user(s, name="trent").id
    with db.session() as s:
        assert len(crud.list_predictors(s, kind="latency")) == 2
        assert {p.id for p in crud.list_predictors(s, owner_id=stranger)} == {v1.id, acc.id}
        assert len(crud.list_predictors(s, owner_id=owner_id)) == 3
    with pytest.raises(ValueError, match="predictor kind"), db.session() as s:
        crud.add_predictor(s, kind="energy", target="x", space_key="k", n_samples=1, metrics={})
