"""Job leases (exactly-once runs) and a wider ParetoFront.hardware for long profile names.

Revision ID: 0003_leases
Revises: 0002_front_targets
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_leases"
down_revision = "0002_front_targets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(128), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"))
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_retype_hardware("VARCHAR(32)", "VARCHAR(64)")
    else:
        op.alter_column("pareto_fronts", "hardware", existing_type=sa.String(32), type_=sa.String(64))


def _sqlite_retype_hardware(old: str, new: str) -> None:
    """Edit the declared type in SQLite's schema in place (SQLite's documented procedure for changes
    that leave stored rows unchanged; both are TEXT affinity). Recreating the table instead, as batch
    mode would, drops it, and with foreign keys on that DROP cascades to every point of every front.
    """
    bind = op.get_bind()
    version = int(bind.exec_driver_sql("PRAGMA schema_version").scalar() or 0)
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = replace(sql, 'hardware " + old + "', 'hardware " + new + "') "
        "WHERE type = 'table' AND name = 'pareto_fronts'"
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {version + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_retype_hardware("VARCHAR(64)", "VARCHAR(32)")
    else:
        op.alter_column("pareto_fronts", "hardware", existing_type=sa.String(64), type_=sa.String(32))
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("attempt")
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")
