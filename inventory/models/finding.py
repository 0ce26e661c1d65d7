"""Audits, the services they observed, and findings with their lifecycle (PRODUCT.md)."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from inventory.models.types import UTCDateTime, utcnow


class Severity(StrEnum):
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class FindingStatus(StrEnum):
    open = "open"
    fixed = "fixed"
    reopened = "reopened"
    accepted = "accepted"  # accepted risk, with a reason and an expiry


class AuditOutcome(StrEnum):
    completed = "completed"
    unreachable = "unreachable"  # no address answered: no finding changed
    failed = "failed"
    interrupted = "interrupted"


def _asset_fk() -> Any:
    return Column(Integer, ForeignKey("asset.id", ondelete="CASCADE"), nullable=False, index=True)


class Audit(SQLModel, table=True):
    """One re-check of one asset."""

    __tablename__ = "audit"

    id: int | None = Field(default=None, primary_key=True)
    asset_id: int = Field(sa_column=_asset_fk())
    trigger: str = Field(max_length=16)  # user, cli, scheduler, sensor
    actor: str = Field(max_length=64)
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    duration: float = 0.0
    outcome: AuditOutcome = Field(sa_type=String(16))
    # [{"probe", "outcome", "reason", "duration"}] for each probe that was considered.
    probes: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )


class ObservedService(SQLModel, table=True):
    """An open port as the latest audit that reached the asset saw it."""

    __tablename__ = "observed_service"
    __table_args__ = (
        UniqueConstraint("asset_id", "address", "port", "protocol", name="uq_observed_service"),
    )

    id: int | None = Field(default=None, primary_key=True)
    asset_id: int = Field(sa_column=_asset_fk())
    address: str = Field(max_length=45)
    port: int
    protocol: str = Field(default="tcp", max_length=8)
    service: str = Field(default="", max_length=64)
    banner: str = Field(default="", max_length=255)
    product: str = Field(default="", max_length=128)
    version: str = Field(default="", max_length=64)
    first_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Finding(SQLModel, table=True):
    """A weakness on an asset; one row per (asset, check, subject), never duplicates."""

    __tablename__ = "finding"
    __table_args__ = (
        UniqueConstraint("asset_id", "check_id", "subject", name="uq_finding_subject"),
        Index("ix_finding_status_severity", "status", "severity"),
    )

    id: int | None = Field(default=None, primary_key=True)
    asset_id: int = Field(sa_column=_asset_fk())
    check_id: str = Field(max_length=64)  # stable check id, e.g. dicom.open-association
    subject: str = Field(max_length=128)  # address, or address:port
    address: str = Field(max_length=45)
    port: int | None = None
    severity: Severity = Field(sa_type=String(16))
    title: str = Field(max_length=255)
    remediation: str = Field(default="", sa_type=Text)
    # Counts and attribute names only, never patient values (PRODUCT.md privacy rule).
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: FindingStatus = Field(sa_type=String(16))
    first_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    fixed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    accepted_reason: str = Field(default="", sa_type=Text)
    accepted_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    accepted_by: str = Field(default="", max_length=64)


class FindingEvent(SQLModel, table=True):
    """Every status change of a finding: who (or which audit), when, from what to what."""

    __tablename__ = "finding_event"

    id: int | None = Field(default=None, primary_key=True)
    finding_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("finding.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = Field(max_length=64)
    old_status: str | None = Field(default=None, max_length=16)
    new_status: str = Field(max_length=16)
    note: str = Field(default="", sa_type=Text)
