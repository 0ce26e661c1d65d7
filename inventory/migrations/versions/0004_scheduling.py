"""scheduling: asset due times and claims, scheduler lease, workers, maintenance windows, job store

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import inventory.models.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("apscheduler_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_apscheduler_jobs_next_run_time"), ["next_run_time"], unique=False
        )

    op.create_table(
        "maintenance_window",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=100), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("days", sa.JSON(), nullable=False),
        sa.Column("start_time", sa.String(length=5), nullable=False),
        sa.Column("end_time", sa.String(length=5), nullable=False),
        sa.Column("created_at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("deleted_at", inventory.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deleted_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "scheduler_job_status",
        sa.Column("job_id", sa.String(length=191), nullable=False),
        sa.Column(
            "last_started_at", inventory.models.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "last_finished_at", inventory.models.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_outcome", sa.String(length=16), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("job_id"),
    )
    op.create_table(
        "scheduler_lease",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("acquired_at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "scheduler_worker",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("host", sa.String(length=128), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("running", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "last_seen_at", inventory.models.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "asset_schedule",
        sa.Column("asset_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("next_due_at", inventory.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rerun", sa.Boolean(), nullable=False),
        sa.Column("queued_at", inventory.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("claimed_at", inventory.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "claim_expires_at", inventory.models.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "last_audit_at", inventory.models.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_outcome", sa.String(length=16), nullable=True),
        sa.Column("last_duration", sa.Float(), nullable=True),
        sa.Column(
            "last_success_at", inventory.models.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("created_at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["asset.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("asset_id"),
    )
    with op.batch_alter_table("asset_schedule", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_asset_schedule_claim_expires_at"), ["claim_expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_asset_schedule_next_due_at"), ["next_due_at"], unique=False
        )
        batch_op.create_index("ix_asset_schedule_queue", ["queued_at", "next_due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("asset_schedule", schema=None) as batch_op:
        batch_op.drop_index("ix_asset_schedule_queue")
        batch_op.drop_index(batch_op.f("ix_asset_schedule_next_due_at"))
        batch_op.drop_index(batch_op.f("ix_asset_schedule_claim_expires_at"))

    op.drop_table("asset_schedule")
    op.drop_table("scheduler_worker")
    op.drop_table("scheduler_lease")
    op.drop_table("scheduler_job_status")
    op.drop_table("maintenance_window")
    with op.batch_alter_table("apscheduler_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_apscheduler_jobs_next_run_time"))

    op.drop_table("apscheduler_jobs")
