"""The measure stage's initial sample is FLOPs-stratified by default: stored jobs keep the uniform one.

``search.initial_sample`` is new, and its default (``flops-stratified``) draws another initial sample
than the uniform draws every job stored before this revision made. A queued job, or one resumed
after a crash, would then measure subnets its earlier attempt never chose. Specs stored without the
field get ``uniform``, what they were (or are being) run with; specs that name it are untouched.

Revision ID: 0005_initial_sample
Revises: 0004_schedule_samplers
Create Date: 2026-12-03
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005_initial_sample"
down_revision = "0004_schedule_samplers"
branch_labels = None
depends_on = None

BEFORE = "uniform"  # what every job stored before this revision drew


def upgrade() -> None:
    jobs = sa.table("jobs", sa.column("id", sa.String), sa.column("spec", sa.JSON))
    bind = op.get_bind()
    for job_id, spec in bind.execute(sa.select(jobs.c.id, jobs.c.spec)).all():
        doc: Any = json.loads(spec) if isinstance(spec, str) else spec
        if not isinstance(doc, dict):
            continue
        search = doc.get("search")
        if search is None:
            search = doc["search"] = {}
        if not isinstance(search, dict) or "initial_sample" in search:
            continue
        search["initial_sample"] = BEFORE
        bind.execute(sa.update(jobs).where(jobs.c.id == job_id).values(spec=doc))


def downgrade() -> None:
    """The field removed again: code before this revision refuses unknown keys in a spec. (A spec
    naming ``dataset.val_fraction``, new with it too, still cannot run on that code.)"""
    jobs = sa.table("jobs", sa.column("id", sa.String), sa.column("spec", sa.JSON))
    bind = op.get_bind()
    for job_id, spec in bind.execute(sa.select(jobs.c.id, jobs.c.spec)).all():
        doc: Any = json.loads(spec) if isinstance(spec, str) else spec
        search = doc.get("search") if isinstance(doc, dict) else None
        if isinstance(search, dict) and search.pop("initial_sample", None) is not None:
            bind.execute(sa.update(jobs).where(jobs.c.id == job_id).values(spec=doc))
