"""Alembic environment: runs on the connection that ``Database.upgrade()`` hands in."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine

from nas.store.models import Base
from nas.store.session import VERSION_TABLE

target_metadata = Base.metadata
config = context.config


def _own_tables(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    # Optuna keeps its studies in the same database (its own tables and version table): not ours to manage.
    return not (type_ == "table" and reflected and compare_to is None)


def _options() -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        "render_as_batch": True,
        "version_table": VERSION_TABLE,
        "include_object": _own_tables,
    }


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        # Called from the alembic command line: open our own connection.
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as conn:
            context.configure(connection=conn, **_options())
            context.run_migrations()
        return
    context.configure(connection=connection, **_options())
    context.run_migrations()


run_migrations()
