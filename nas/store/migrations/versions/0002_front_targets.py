"""Fronts per named target: several latency budgets or profiles in one job share its measurements.

Revision ID: 0002_front_targets
Revises: 0001_initial
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_front_targets"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL is the job's own front (its constraints only), as every front stored before this revision.
    with op.batch_alter_table("pareto_fronts") as batch:
        batch.add_column(sa.Column("target", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pareto_fronts") as batch:
        batch.drop_column("target")
