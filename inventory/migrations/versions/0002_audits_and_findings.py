"""audits and findings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:09:31.740379
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import inventory.models.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("started_at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("probes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["asset.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_asset_id"), ["asset_id"], unique=False)

    op.create_table(
        "finding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("check_id", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("address", sa.String(length=45), nullable=False),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("remediation", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("first_seen", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fixed_at", inventory.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("accepted_reason", sa.Text(), nullable=False),
        sa.Column(
            "accepted_until", inventory.models.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("accepted_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["asset.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("asset_id", "check_id", "subject", name="uq_finding_subject"),
    )
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_finding_asset_id"), ["asset_id"], unique=False)
        batch_op.create_index("ix_finding_status_severity", ["status", "severity"], unique=False)

    op.create_table(
        "observed_service",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=45), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("protocol", sa.String(length=8), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("banner", sa.String(length=255), nullable=False),
        sa.Column("product", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("first_seen", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["asset.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("asset_id", "address", "port", "protocol", name="uq_observed_service"),
    )
    with op.batch_alter_table("observed_service", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_observed_service_asset_id"), ["asset_id"], unique=False
        )

    op.create_table(
        "finding_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("finding_id", sa.Integer(), nullable=False),
        sa.Column("at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("old_status", sa.String(length=16), nullable=True),
        sa.Column("new_status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["finding_id"], ["finding.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("finding_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_finding_event_finding_id"), ["finding_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("finding_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_finding_event_finding_id"))

    op.drop_table("finding_event")
    with op.batch_alter_table("observed_service", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_observed_service_asset_id"))

    op.drop_table("observed_service")
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.drop_index("ix_finding_status_severity")
        batch_op.drop_index(batch_op.f("ix_finding_asset_id"))

    op.drop_table("finding")
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_asset_id"))

    op.drop_table("audit")
