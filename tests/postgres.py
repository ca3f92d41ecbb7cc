"""The test PostgreSQL server (``NAS_TEST_POSTGRES_URL``): a fresh schema per test, or a skip."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

PG_ENV = "NAS_TEST_POSTGRES_URL"


@contextmanager
def fresh_schema(base: str) -> Iterator[str]:
    """``base`` (a PostgreSQL URL) with its tables in a fresh schema, dropped afterwards: runs stay
    repeatable (no rows left by an earlier run) and parallel sessions apart."""
    schema = f"nas_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """A database URL on the test PostgreSQL (``NAS_TEST_POSTGRES_URL``) whose tables live in a fresh
    schema, dropped afterwards; skips the test when no server is configured."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    with fresh_schema(base) as url:
        yield url
