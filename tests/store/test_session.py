"""Database sessions, SQLite settings and migrations, over every backend."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, select, text

from nas.store import Base, ConstraintError, Database, StoreError, User, crud
from nas.store.session import VERSION_TABLE
from tests.store.revisions import HEAD_REVISION


def _schema_diff(db: Database, metadata: MetaData) -> list[object]:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": VERSION_TABLE})
        return list(compare_metadata(ctx, metadata))


def test_upgrade_on_empty_database_matches_models(empty_db: Database) -> None:
    empty_db.upgrade()
    assert empty_db.current_revision() == HEAD_REVISION
    assert _schema_diff(empty_db, Base.metadata) == []


def test_a_0001_database_upgrades_and_keeps_its_fronts(empty_db: Database) -> None:
    empty_db.upgrade("0001_initial")
    with empty_db.engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, name, created_at) VALUES (1, 'old', CURRENT_TIMESTAMP)"))
        conn.execute(
            text(
                "INSERT INTO jobs (id, owner_id, name, spec, status, progress, cancel_requested, "
                "created_at, updated_at) VALUES ('j1', 1, 'old job', '{}', 'succeeded', 1.0, false, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO pareto_fronts (job_id, hardware, round, objectives, hypervolume, final, "
                "created_at) VALUES ('j1', 'cpu-fp32', 3, '[]', 0.5, true, CURRENT_TIMESTAMP)"
            )
        )
    empty_db.upgrade()
    assert empty_db.current_revision() == HEAD_REVISION
    assert _schema_diff(empty_db, Base.metadata) == []
    with empty_db.session() as s:
        front = crud.latest_front(s, job_id="j1")  # a front stored before targets is the job's own
        assert front is not None and front.target is None and front.hypervolume == 0.5
        assert crud.front_targets(s, job_id="j1") == []


def test_schema_comparison_detects_a_missing_column(db: Database) -> None:
    extended = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(extended)
    Table("jobs", extended, Column("priority", Integer), extend_existing=True)
    diff = _schema_diff(db, extended)
    assert any(d[0] == "add_column" and d[3].name == "priority" for d in diff if isinstance(d, tuple))


def test_upgrade_twice_is_a_no_op(db: Database) -> None:
    with db.session() as s:
        crud.create_user(s, name="bob")
    db.upgrade()
    with db.session() as s:
        assert crud.get_user(s, name="bob") is not None


def test_session_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"), db.session() as s:
        crud.create_user(s, name="carol")
        raise RuntimeError("boom")
    with db.session() as s:
        assert crud.get_user(s, name="carol") is None


def test_unique_violation_becomes_duplicate_error(db: Database) -> None:
    with db.session() as s:
        crud.create_user(s, name="dave")
    with pytest.raises(ConstraintError), db.session() as s:
        crud.create_user(s, name="dave")


def test_driver_error_becomes_store_error(db: Database) -> None:
    with pytest.raises(StoreError, match="database error"), db.session() as s:
        s.execute(text("SELECT * FROM no_such_table"))


def test_bad_url_is_rejected_with_a_hint() -> None:
    with pytest.raises(ValueError, match="NAS_DATABASE_URL"):
        Database("")
    with pytest.raises(ValueError, match="not a database URL"):
        Database("not a url")


def test_sqlite_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'sub' / 'nas.db'}")
    db.upgrade()
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) >= 1000
    with pytest.raises(ConstraintError), db.session() as s:
        crud.add_event(s, job_id="no-such-job", kind="log", payload={})
    db.dispose()


def test_concurrent_writers_on_sqlite_all_commit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    setup = Database(url)
    setup.upgrade()
    with setup.session() as s:
        owner = crud.create_user(s, name="eve").id
        job = crud.create_job(s, owner_id=owner, name="j", spec={}).id
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        db = Database(url)  # its own engine, as a separate process would have
        try:
            for i in range(20):
                with db.session() as s:
                    crud.add_event(s, job_id=job, kind="log", payload={"worker": worker, "i": i})
                    crud.update_job(s, job_id=job, progress=i / 20)
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with setup.session() as s:
        assert len(crud.list_events(s, job_id=job)) == 60
    setup.dispose()


def test_readers_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    # The dashboard and API read while workers write: a held write lock must not stall a read.
    path = tmp_path / "nas.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    with db.session() as s:
        crud.create_user(s, name="alice")
    writer = sqlite3.connect(path, isolation_level=None, timeout=0)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO users (name, created_at) VALUES ('bob', '2026-01-01 00:00:00')")
    try:
        with db.read() as s:
            names = [u.name for u in s.scalars(select(User))]
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert names == ["alice"]  # the committed state, not the writer's uncommitted row
    db.dispose()


def test_read_sessions_refuse_writes_and_keep_loaded_rows(db: Database) -> None:
    with db.session() as s:
        crud.create_user(s, name="alice")
    with pytest.raises(StoreError, match="read-only"), db.read() as s:
        s.add(User(name="mallory"))
        s.flush()
    with db.read() as s:
        alice = crud.get_user(s, name="alice")
        assert crud.get_user(s, name="mallory") is None
    assert alice is not None and alice.name == "alice"  # still readable after the block


def test_more_sessions_at_once_than_the_pool_keeps_never_wait_for_a_connection(empty_db: Database) -> None:
    """The pool has no ceiling: a ceiling (it was 5 + 10) let the API's threadpool deadlock under load,
    every thread waiting for a connection held by a request that waited for a thread."""
    from contextlib import ExitStack

    from nas.store.session import POOL_SIZE

    empty_db.upgrade()
    with ExitStack() as stack:
        sessions = [stack.enter_context(empty_db.read()) for _ in range(POOL_SIZE + 30)]
        # Each session holds its own connection (an open read transaction) until the block ends.
        assert [s.execute(text("SELECT 1")).scalar_one() for s in sessions] == [1] * len(sessions)
        assert empty_db.engine.pool.checkedout() == len(sessions)  # type: ignore[attr-defined]
    assert empty_db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
