"""Revision 0003_leases: a 0002 database keeps its jobs, fronts and points; start-ups race safely."""

from __future__ import annotations

import threading

from sqlalchemy import text

from nas.schemas import JobStatus
from nas.store import Database, crud
from tests.store.revisions import HEAD_REVISION


def test_a_0002_database_upgrades_keeping_jobs_fronts_and_points(empty_db: Database) -> None:
    empty_db.upgrade("0002_front_targets")
    with empty_db.engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, name, created_at) VALUES (1, 'old', CURRENT_TIMESTAMP)"))
        for job_id, status in (("j1", "succeeded"), ("j2", "running")):
            conn.execute(
                text(
                    "INSERT INTO jobs (id, owner_id, name, spec, status, progress, cancel_requested, "
                    "created_at, updated_at) VALUES (:id, 1, 'old job', '{}', :st, 1.0, false, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": job_id, "st": status},
            )
        conn.execute(
            text(
                "INSERT INTO subnets (id, job_id, arch_hash, measurement_key, arch, params, flops, source, "
                "created_at) VALUES (1000, 'j1', 'h', 'k', '{}', 1, 1, 'search', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO pareto_fronts (id, job_id, hardware, round, objectives, hypervolume, final, "
                "created_at) VALUES (1000, 'j1', 'cpu-fp32', 3, '[]', 0.5, true, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO pareto_points (front_id, subnet_id, measured) "
                "VALUES (1000, 1000, '{\"accuracy\": 0.5}')"
            )
        )
    empty_db.upgrade()
    assert empty_db.current_revision() == HEAD_REVISION
    with empty_db.session() as s:
        front = crud.latest_front(s, job_id="j1")
        assert front is not None and len(crud.front_points(s, front_id=front.id)) == 1
        old = crud.get_job(s, job_id="j2")
        assert old is not None and old.attempt == 0 and old.lease_owner is None
        # A job left running by a pre-lease version has no lease: claimable at once.
        lease = crud.claim_job(s, job_id="j2", owner="w", lease_s=60, max_attempts=3)
        assert lease is not None and lease.attempt == 1
        # Profile names longer than the old 32 characters now fit (PostgreSQL enforced the limit).
        crud.save_front(
            s, job_id="j1", hardware="x" * 64, round=4, objectives=[], reference_point=None,
            hypervolume=None, points=[], final=False,
        )  # fmt: skip
    with empty_db.read() as s:
        assert crud.get_job(s, job_id="j1").status == JobStatus.succeeded  # type: ignore[union-attr]


def test_two_processes_migrating_at_once_both_succeed(empty_db: Database) -> None:
    url = empty_db.url
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def start() -> None:
        db = Database(url)
        try:
            barrier.wait()
            db.upgrade()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert empty_db.current_revision() == HEAD_REVISION
