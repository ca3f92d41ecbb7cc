"""The newest migration revision, which every upgraded database must report, and rows as older
revisions stored them."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from nas.store import Database

HEAD_REVISION = "0005_initial_sample"


def insert_old_jobs(db: Database, specs: dict[str, dict[str, Any]]) -> None:
    """One queued job per ``specs`` entry (its id: the key), with the spec stored as given, by SQL
    (the ORM of today would fill in what an older revision did not have)."""
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, name, created_at) VALUES (1, 'old', CURRENT_TIMESTAMP)"))
        for job_id, spec in specs.items():
            conn.execute(
                text(
                    "INSERT INTO jobs (id, owner_id, name, spec, status, progress, cancel_requested, "
                    "created_at, updated_at, attempt) VALUES (:id, 1, 'old', :spec, 'queued', 0, false, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0)"
                ),
                {"id": job_id, "spec": json.dumps(spec)},
            )
