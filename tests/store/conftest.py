"""Store fixtures: a migrated database per test, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from nas.store import Database, crud

PG_ENV = "NAS_TEST_POSTGRES_URL"


def _postgres_database() -> Iterator[Database]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    # A fresh schema per test keeps runs repeatable and parallel sessions apart.
    schema = f"nas_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    db = Database(f"{base}{sep}options=-csearch_path%3D{schema}")
    try:
        yield db
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database with no tables yet."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'nas.db'}")
        yield db
        db.dispose()
    else:
        yield from _postgres_database()


@pytest.fixture
def db(empty_db: Database) -> Database:
    """A database migrated to the latest schema."""
    empty_db.upgrade()
    return empty_db


@pytest.fixture
def owner_id(db: Database) -> int:
    with db.session() as s:
        return crud.create_user(s, name="alice").id


@pytest.fixture
def job_id(db: Database, owner_id: int) -> str:
    with db.session() as s:
        return crud.create_job(s, owner_id=owner_id, name="tiny", spec={"name": "tiny"}).id
