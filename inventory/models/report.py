"""Re-audit reports: schedules, the immutable snapshots they produce, and their deliveries.

A report's content lives in one compressed JSON document (report_snapshot), written once and never
changed: every format (HTML, PDF, CSV, JSON) is rendered from it, so a report downloaded a year
later says what it said on its date. The snapshot sits in a table of its own so that lists of
reports never load it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlmodel import Field, SQLModel

from inventory.models.types import UTCDateTime, utcnow


class ReportScope(StrEnum):
    """Which assets a report covers: all of them, or those of one site, zone, kind or tag."""

    all = "all"
    site = "site"
    zone = "zone"
    kind = "kind"
    tag = "tag"


class ReportFormat(StrEnum):
    html = "html"
    pdf = "pdf"
    csv = "csv"
    json = "json"


class DeliveryChannel(StrEnum):
    email = "email"
    folder = "folder"


class DeliveryStatus(StrEnum):
    pending = "pending"  # not tried yet
    sending = "sending"  # claimed by a process until next_attempt_at (then free to take again)
    sent = "sent"
    failed = "failed"  # tried, will be tried again at next_attempt_at
    abandoned = "abandoned"  # every try failed; shown until someone retries it by hand


class ReportSchedule(SQLModel, table=True):
    __tablename__ = "report_schedule"
    __table_args__ = (
        Index(
            "uq_report_schedule_live_name",
            "name_key",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    name_key: str = Field(max_length=100)
    scope: ReportScope = Field(default=ReportScope.all, sa_type=String(8))
    scope_value: str = Field(default="", max_length=100)
    # Five-field cron expression (minute hour day month weekday) in [general] timezone.
    cron: str = Field(max_length=100)
    formats: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    language: str = Field(default="en", max_length=8)
    recipients: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # A sub-folder of [reports] folder where each report is written; empty: none.
    folder: str = Field(default="", max_length=255)
    enabled: bool = True
    # "web" (made in the UI) or "config" (from [reports] schedules; read-only in the UI).
    source: str = Field(default="web", max_length=8)
    next_run_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_run_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(default="", max_length=64)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_by: str = Field(default="", max_length=64)
    # Deleted schedules stay, so that their past reports keep their name.
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Report(SQLModel, table=True):
    """One generated report: when, of what, compared with which earlier report."""

    __tablename__ = "report"

    id: int | None = Field(default=None, primary_key=True)
    schedule_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("report_schedule.id", ondelete="SET NULL"), index=True
        ),
    )
    # The previous report of the same schedule (or, for one-off reports, of the same scope):
    # what "changed since" is measured against.
    baseline_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("report.id", ondelete="SET NULL"), nullable=True),
    )
    generated_at: datetime = Field(sa_type=UTCDateTime, index=True)
    trigger: str = Field(max_length=16)  # schedule, web, cli
    actor: str = Field(max_length=64)
    scope: ReportScope = Field(default=ReportScope.all, sa_type=String(8))
    scope_value: str = Field(default="", max_length=100)
    language: str = Field(default="en", max_length=8)
    formats: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Headline counts, kept beside the snapshot for lists and trend charts.
    totals: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # SHA-256 of the snapshot's JSON text: shown in every format, so a copy can be checked.
    sha256: str = Field(max_length=64)


class ReportSnapshot(SQLModel, table=True):
    """The report's content: gzip-compressed JSON, written once."""

    __tablename__ = "report_snapshot"

    report_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("report.id", ondelete="CASCADE"), primary_key=True, nullable=False
        )
    )
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size: int = 0  # bytes of the uncompressed JSON


class ReportDelivery(SQLModel, table=True):
    """Sending one report to one e-mail address or writing it to the folder; retried on failure."""

    __tablename__ = "report_delivery"
    __table_args__ = (Index("ix_report_delivery_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("report.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    channel: DeliveryChannel = Field(sa_type=String(8))
    target: str = Field(max_length=255)
    status: DeliveryStatus = Field(default=DeliveryStatus.pending, sa_type=String(16))
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str = Field(default="", sa_type=Text)
    # What was done, e.g. "PDF attached (zip)" or "PDF too large: linked".
    detail: str = Field(default="", sa_type=Text)
