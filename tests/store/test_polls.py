"""The polling read path (``nas.store.polls`` on ``Database.read_connection``) against the ORM CRUD,
on every backend: the same rows, in the same order, with the same values."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from nas.schemas import EventPublic, JobPublic, JobStatus
from nas.store import Database, StoreError, crud, polls

ARCH = {"family": "ofa-mbv3", "resolution": 28, "stages": []}
STATS = {"median_ms": 1.0, "p10_ms": 0.9, "p90_ms": 1.2, "n": 30}


def _job_with_fronts(db: Database, owner_id: int) -> str:
    """A job with events, three subnets (one measured at two batches), two rounds and a target's front."""
    with db.session() as s:
        job_id = crud.create_job(s, owner_id=owner_id, name="j", spec={"hardware": ["cpu-fp32"]}).id
        for i in range(5):
            crud.add_event(s, job_id=job_id, kind="progress", stage="train", payload={"done": i, "x": 0.5})
        ids = []
        for i in range(3):
            sub = crud.upsert_subnet(
                s, job_id=job_id, arch_hash=f"a{i}", arch=ARCH, params=10 + i, flops=100 + i,
                source="sample", accuracy_val=0.5 + i / 10, predicted={"accuracy": 0.4},
                measurement_key=f"m{i}",
            )  # fmt: skip
            ids.append(sub.id)
            for batch in (8, 1):
                crud.put_measurement(
                    s, profile="cpu-fp32", arch_hash=f"m{i}", resolution=28, batch=batch,
                    stats={**STATS, "median_ms": batch + i}, env={"node": {"host": "h"}},
                )  # fmt: skip
            crud.put_measurement(
                s, profile="cpu-int8", arch_hash=f"m{i}", resolution=28, batch=1, stats=STATS
            )  # fmt: skip
        objectives = [{"metric": "accuracy", "goal": "max"}]
        for rnd, target in ((0, None), (1, None), (1, "small")):
            crud.save_front(
                s, job_id=job_id, hardware="cpu-fp32", round=rnd, objectives=objectives,
                reference_point=[0.0, 9.0], hypervolume=0.1 * (rnd + 1), target=target,
                points=[(sid, {"accuracy": 0.7}, {"accuracy": 0.6 + rnd} if k else None)
                        for k, sid in enumerate(ids[rnd:])],
            )  # fmt: skip
    return job_id


def _dump(row: Any, columns: list[str]) -> dict[str, Any]:
    return {c: getattr(row, c) for c in columns}


def test_jobs_and_events_read_as_the_orm_reads_them(db: Database, owner_id: int) -> None:
    with db.session() as s:
        other = crud.create_user(s, name="mallory").id
        crud.create_job(s, owner_id=other, name="theirs", spec={})
    job_id = _job_with_fronts(db, owner_id)
    with db.session() as s:
        crud.create_job(s, owner_id=owner_id, name="second", spec={"k": [1.5, None]})
        crud.update_job(s, job_id=job_id, status=JobStatus.running, stage="train", progress=0.25)
    with db.read() as s, db.read_connection() as conn:
        for status in (None, JobStatus.running, JobStatus.failed):
            orm = crud.list_jobs(s, owner_id=owner_id, status=status)
            polled = polls.list_jobs(conn, owner_id=owner_id, status=status)
            assert [JobPublic.model_validate(r) for r in polled] == [JobPublic.model_validate(j) for j in orm]
            assert polls.count_jobs(conn, owner_id=owner_id, status=status) == crud.count_jobs(
                s, owner_id=owner_id, status=status
            )
        assert len(polls.list_jobs(conn, owner_id=owner_id, limit=1, offset=1)) == 1
        row = polls.owned_job(conn, job_id=job_id, owner_id=owner_id)
        orm_job = crud.get_job(s, job_id=job_id)
        assert row is not None and orm_job is not None
        assert JobPublic.model_validate(row) == JobPublic.model_validate(orm_job)
        assert row.created_at.tzinfo is not None and row.status is JobStatus.running
        assert polls.owned_job(conn, job_id=job_id, owner_id=other) is None
        assert polls.job_status(conn, job_id=job_id) is JobStatus.running
        assert polls.job_status(conn, job_id="missing") is None
        for after in (0, 2):
            orm_events = crud.list_events(s, job_id=job_id, after_id=after)
            polled_events = polls.list_events(conn, job_id=job_id, after_id=after)
            assert [EventPublic.model_validate(e) for e in polled_events] == [
                EventPublic.model_validate(e) for e in orm_events
            ]
        assert len(polls.list_events(conn, job_id=job_id, limit=2)) == 2


@pytest.mark.parametrize("target", [None, "small"])
def test_fronts_read_as_the_orm_reads_them(db: Database, owner_id: int, target: str | None) -> None:
    job_id = _job_with_fronts(db, owner_id)
    with db.read() as s, db.read_connection() as conn:
        orm = crud.latest_front(s, job_id=job_id, target=target)
        polled = polls.latest_front(conn, job_id=job_id, target=target)
        assert orm is not None and polled is not None and polled.id == orm.id
        orm_points = crud.front_points(s, front_id=orm.id)
        points = polls.front_points(conn, front_id=polled.id)
        columns = ["id", "arch_hash", "arch", "params", "flops", "accuracy_val", "source", "predicted"]
        assert [_dump(p, columns) for p in points] == [_dump(sub, columns) for _, sub in orm_points]
        assert [p.point_predicted for p in points] == [p.predicted for p, _ in orm_points]
        assert [p.point_predicted for p in points][:2] == [None, {"accuracy": 1.6}]
        history = polls.front_history(conn, job_id=job_id, hardware="cpu-fp32", target=target)
        orm_history = crud.front_history(s, job_id=job_id, hardware="cpu-fp32", target=target)
        assert [(f.id, f.round, f.hypervolume) for f in history] == [
            (f.id, f.round, f.hypervolume) for f in orm_history
        ]
        assert polls.front_targets(conn, job_id=job_id) == crud.front_targets(s, job_id=job_id) == ["small"]
        keys = [p.measurement_key for p in points]
        for profiles in (None, ["cpu-fp32"]):
            lat = polls.latency_by_key(conn, measurement_keys=keys, profiles=profiles)
            orm_lat = crud.latency_by_key(s, measurement_keys=keys, profiles=profiles)
            assert {k: {p: m.id for p, m in v.items()} for k, v in lat.items()} == {
                k: {p: m.id for p, m in v.items()} for k, v in orm_lat.items()
            }
            assert lat[keys[0]]["cpu-fp32"].batch == 1  # the smallest batch wins
        assert polls.latency_by_key(conn, measurement_keys=[]) == {}


def test_token_owner_is_a_live_tokens_user(db: Database, owner_id: int) -> None:
    with db.session() as s:
        token = crud.create_token(s, user_id=owner_id)
    with db.read_connection() as conn:
        owner = polls.token_owner(conn, token=token)
        assert owner is not None and owner.user_id == owner_id and owner.last_used_at is None
        assert polls.token_owner(conn, token=token + "x") is None
    with db.session() as s:
        crud.user_for_token(s, token=token)  # marks it used
        assert crud.revoke_token(s, token=token)
    with db.read_connection() as conn:
        assert polls.token_owner(conn, token=token) is None


def test_a_read_connection_wraps_driver_errors(db: Database) -> None:
    with pytest.raises(StoreError, match="database error"), db.read_connection() as conn:
        conn.exec_driver_sql("SELECT * FROM no_such_table")


def test_a_poll_cut_by_a_restart_is_retried_once_on_a_fresh_connection(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("a connection PostgreSQL terminates (as a restart does); SQLite has no server")
    pid = db.poll(lambda conn: conn.execute(text("SELECT pg_backend_pid()")).scalar())
    with db.engine.connect() as admin:  # the main pool, as a restart would cut every connection
        assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    # the polling pool has no pre-ping: its pooled connection is dead, found so on use, and replaced
    new_pid = db.poll(lambda conn: conn.execute(text("SELECT pg_backend_pid()")).scalar())
    assert new_pid != pid


def test_a_poll_wraps_driver_errors_and_does_not_retry_them(db: Database) -> None:
    calls: list[int] = []

    def bad(conn: Any) -> None:
        calls.append(1)
        conn.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(StoreError, match="database error"):
        db.poll(bad)
    assert len(calls) == 1


def test_each_select_of_a_poll_reads_what_was_committed_before_it(db: Database, owner_id: int) -> None:
    # Polls run in autocommit on both backends (SQLite: no BEGIN; PostgreSQL: AUTOCOMMIT): a poll
    # holds no snapshot between its statements, so it neither sees stale rows nor keeps old WAL pages.
    with db.read_connection() as conn:
        assert polls.count_jobs(conn, owner_id=owner_id) == 0
        with db.session() as s:  # another connection commits while the poll is open
            crud.create_job(s, owner_id=owner_id, name="new", spec={})
        assert polls.count_jobs(conn, owner_id=owner_id) == 1
        if db.is_sqlite:  # the driver holds no open transaction (no BEGIN was sent)
            assert conn.connection.dbapi_connection.in_transaction is False
