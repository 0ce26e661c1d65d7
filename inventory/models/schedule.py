"""Scheduling state: when each asset is due, who is auditing it, the scheduler's lease, the
workers' heartbeats, the maintenance windows, and the APScheduler job store.

Per-asset timing lives here, in one row per asset read by one dispatcher job (STYLE.md #10):
100,000 assets are 100,000 rows, not 100,000 APScheduler jobs.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    Unicode,
)
from sqlmodel import Field, Relationship, SQLModel

from inventory.models.asset import Asset
from inventory.models.types import UTCDateTime, utcnow


class AssetSchedule(SQLModel, table=True):
    """When an asset is next due, and the state of its current audit if one runs.

    idle (due when next_due_at has passed) -> queued by the dispatcher -> claimed by a worker
    (claim_token, renewed by heartbeats until claim_expires_at) -> idle again when the audit is
    recorded, in the same transaction; or marked interrupted when the claim expires.
    """

    __tablename__ = "asset_schedule"
    __table_args__ = (
        # The worker's claim query reads the (short) queue in due order.
        Index("ix_asset_schedule_queue", "queued_at", "next_due_at"),
    )

    asset_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey("asset.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
    )
    # NULL: not scheduled (archived asset). Jitter is already included.
    next_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    # The asset was edited while being audited: due again as soon as that audit ends.
    rerun: bool = False
    queued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=128)
    claim_token: str | None = Field(default=None, max_length=32)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claim_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    last_audit_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_outcome: str | None = Field(default=None, max_length=16)
    last_duration: float | None = None
    last_success_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When scheduling began: an asset never audited successfully is stale counted from here.
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    # Many-to-one only: a new asset's row is attached without flushing for its id.
    asset: Optional["Asset"] = Relationship()


class SchedulerLease(SQLModel, table=True):
    """Exactly one active scheduler per database: whoever holds an unexpired lease row."""

    __tablename__ = "scheduler_lease"

    name: str = Field(max_length=32, primary_key=True)
    holder: str = Field(max_length=128)
    acquired_at: datetime = Field(sa_type=UTCDateTime)
    renewed_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class WorkerState(StrEnum):
    running = "running"
    stopping = "stopping"
    stopped = "stopped"


class SchedulerWorker(SQLModel, table=True):
    """A worker process's heartbeat, for the schedule page (and the operator's peace of mind)."""

    __tablename__ = "scheduler_worker"

    id: str = Field(max_length=128, primary_key=True)
    host: str = Field(default="", max_length=128)
    pid: int = 0
    concurrency: int = 0
    running: int = 0
    state: WorkerState = Field(default=WorkerState.running, sa_type=String(16))
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class JobStatus(SQLModel, table=True):
    """The last run of each background job: start, end, outcome and error (STYLE.md #9)."""

    __tablename__ = "scheduler_job_status"

    job_id: str = Field(max_length=191, primary_key=True)
    last_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_outcome: str = Field(default="", max_length=16)
    last_error: str = Field(default="", sa_type=Text)
    runs: int = 0
    failures: int = 0


class WindowScope(StrEnum):
    all = "all"
    zone = "zone"
    site = "site"


class WindowMode(StrEnum):
    """A window either forbids audits while it is open, or is the only time they may run."""

    blackout = "blackout"
    allowed = "allowed"


class MaintenanceWindow(SQLModel, table=True):
    """A weekly time range, in the configured time zone, for the assets of a zone or site.

    `end_time` before `start_time` means the window runs past midnight into the next day.
    Removed windows are kept (deleted_at) so that who changed what stays on record.
    """

    __tablename__ = "maintenance_window"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    scope: WindowScope = Field(default=WindowScope.all, sa_type=String(8))
    value: str = Field(default="", max_length=100)  # the zone or site name, any case
    mode: WindowMode = Field(default=WindowMode.blackout, sa_type=String(16))
    # Weekdays the window starts on: 0 = Monday ... 6 = Sunday.
    days: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    start_time: str = Field(max_length=5)  # "HH:MM", local time
    end_time: str = Field(max_length=5)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(default="", max_length=64)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_by: str = Field(default="", max_length=64)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_by: str = Field(default="", max_length=64)


# APScheduler's SQLAlchemyJobStore table, declared here exactly as APScheduler 3.x declares it so
# that the migrations create it and the schema check knows it (the job store then finds it there).
APSCHEDULER_JOBS: Any = Table(
    "apscheduler_jobs",
    SQLModel.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)
