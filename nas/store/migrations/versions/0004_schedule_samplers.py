"""Samplers per schedule: jobs stored before samplers had kinds keep a sampler their schedule can use.

Before this revision every spec was stored with ``training.sampler: uniform`` (the one default), and
the balanced-mixture schedule ignored it and drew with its own member draw. That draw is now the
registered ``balanced-mixture`` sampler and a schedule refuses a sampler of another kind, so a queued
or resumed pooling job from before would fail at its trainer. Such specs get ``balanced-mixture``, the
sampler they were in fact trained with; no other spec changes.

Revision ID: 0004_schedule_samplers
Revises: 0003_leases
Create Date: 2026-12-02
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004_schedule_samplers"
down_revision = "0003_leases"
branch_labels = None
depends_on = None

MIXTURE = "balanced-mixture"  # the schedule and its sampler share the name


def upgrade() -> None:
    jobs = sa.table("jobs", sa.column("id", sa.String), sa.column("spec", sa.JSON))
    bind = op.get_bind()
    for job_id, spec in bind.execute(sa.select(jobs.c.id, jobs.c.spec)).all():
        doc: Any = json.loads(spec) if isinstance(spec, str) else spec
        training = doc.get("training") if isinstance(doc, dict) else None
        if not isinstance(training, dict) or training.get("schedule") != MIXTURE:
            continue
        if training.get("sampler") in (None, MIXTURE):
            continue
        training["sampler"] = MIXTURE
        bind.execute(sa.update(jobs).where(jobs.c.id == job_id).values(spec=doc))


def downgrade() -> None:
    """Nothing to undo: ``balanced-mixture`` is what the old schedule drew with whatever it stored."""
