"""Store fixtures: a migrated database per test, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nas.store import Database, crud
from tests.postgres import postgres_schema_url


def _postgres_database() -> Iterator[Database]:
    with postgres_schema_url() as url:
        db = Database(url)
        try:
            yield db
        finally:
            db.dispose()


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
