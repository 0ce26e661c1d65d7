"""Known vulnerabilities: NVD records with their CPE criteria, the CISA KEV catalog, feed imports,
and software detected on assets (CPE candidates).

A record's configurations are kept whole (JSON) for the exact applicability check; each of its CPE
criteria also has a row in `vuln_cpe_match`, indexed by vendor and product, so that matching an
asset reads only the records about the products it runs.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlmodel import Field, SQLModel

from inventory.models.finding import Finding
from inventory.models.types import UTCDateTime, utcnow


class Vulnerability(SQLModel, table=True):
    """One CVE as the NVD describes it (the latest imported version of its record)."""

    __tablename__ = "vulnerability"

    id: int | None = Field(default=None, primary_key=True)
    cve_id: str = Field(max_length=32, unique=True, index=True)
    published: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_modified: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default="", max_length=32)  # NVD vulnStatus: Analyzed, Received, ...
    description: str = Field(default="", sa_type=Text)
    cvss_version: str = Field(default="", max_length=8)  # "4.0", "3.1", "3.0", "2.0" or ""
    cvss_score: float | None = Field(default=None, sa_type=Float)
    cvss_vector: str = Field(default="", max_length=200)
    cvss_severity: str = Field(default="", max_length=16)
    references: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    configurations: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # The NVD's copy of CISA's date added, when the record carries it.
    cisa_exploit_add: date | None = Field(default=None, sa_type=Date)
    # Its configurations need a full evaluation (AND, negate, several nodes); the others apply
    # exactly when one of their vulnerable criteria (vuln_cpe_match) matches.
    needs_full_check: bool = Field(default=False, sa_type=Boolean)


# Compared byte by byte: the "C" collation on PostgreSQL (SQLite's default is already binary).
VERSION_SORT = String(200).with_variant(String(200, collation="C"), "postgresql")


class VulnCpeMatch(SQLModel, table=True):
    """One CPE criterion of a record, for lookup by vendor and product."""

    __tablename__ = "vuln_cpe_match"
    __table_args__ = (
        Index("ix_vuln_cpe_match_product", "vendor", "product", "vulnerable", "version_sort"),
    )

    id: int | None = Field(default=None, primary_key=True)
    vulnerability_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("vulnerability.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    part: str = Field(max_length=1)
    vendor: str = Field(max_length=128)
    product: str = Field(max_length=128)
    criteria: str = Field(max_length=512)
    vulnerable: bool = Field(default=True, sa_type=Boolean)
    version_start: str | None = Field(default=None, max_length=64)
    start_including: bool = Field(default=True, sa_type=Boolean)
    version_end: str | None = Field(default=None, max_length=64)
    end_including: bool = Field(default=False, sa_type=Boolean)
    # For a vulnerable criterion, where its versions stop (vulns.index.version_sort): "r" and
    # the range's end, or "e" and the exact version, as versions.sort_text; None when there is
    # no such bound (every version, "-", a pattern, a range without an end) or it cannot be
    # written so. The database seeks the criteria an asset's version can fall in by it (in
    # ix_vuln_cpe_match_product); None rows are always read.
    version_sort: str | None = Field(default=None, sa_column=Column(VERSION_SORT, nullable=True))
    # It is listed in a configuration that needs a full evaluation (Vulnerability.
    # needs_full_check): a record whose names hit only criteria of single-node ORs applies
    # because of them, without its configurations being read. True for criteria imported
    # before the column was (what a full evaluation costs, never a wrong answer).
    in_complex: bool = Field(
        default=True, sa_column=Column(Boolean, nullable=False, server_default=true())
    )


class VulnProduct(SQLModel, table=True):
    """Vendor and product names found in the imported records, for the software search."""

    __tablename__ = "vuln_product"
    __table_args__ = (UniqueConstraint("part", "vendor", "product", name="uq_vuln_product"),)

    id: int | None = Field(default=None, primary_key=True)
    part: str = Field(max_length=1)
    vendor: str = Field(max_length=128, index=True)
    product: str = Field(max_length=128, index=True)
    records: int = 0  # how many records name it as vulnerable


class KevEntry(SQLModel, table=True):
    """One entry of CISA's Known Exploited Vulnerabilities catalog."""

    __tablename__ = "kev_entry"

    id: int | None = Field(default=None, primary_key=True)
    cve_id: str = Field(max_length=32, unique=True, index=True)
    vendor_project: str = Field(default="", max_length=200)
    product: str = Field(default="", max_length=200)
    name: str = Field(default="", max_length=300)
    date_added: date = Field(sa_type=Date)
    due_date: date | None = Field(default=None, sa_type=Date)
    ransomware: str = Field(default="", max_length=16)  # knownRansomwareCampaignUse
    required_action: str = Field(default="", sa_type=Text)
    short_description: str = Field(default="", sa_type=Text)


class FeedKind(StrEnum):
    nvd = "nvd"
    kev = "kev"


class FeedImport(SQLModel, table=True):
    """One import of a feed file (or of an `inventory feeds update` download)."""

    __tablename__ = "feed_import"

    id: int | None = Field(default=None, primary_key=True)
    feed: FeedKind = Field(sa_type=String(8))
    source: str = Field(default="file", max_length=8)  # file, upload, api
    filename: str = Field(default="", max_length=255)
    actor: str = Field(default="", max_length=64)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The feed's own date: NVD `timestamp`, KEV `dateReleased`.
    feed_date: datetime | None = Field(default=None, sa_type=UTCDateTime)
    feed_version: str = Field(default="", max_length=32)  # KEV catalogVersion
    records: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0


class CandidateStatus(StrEnum):
    pending = "pending"
    confirmed = "confirmed"
    rejected = "rejected"


class SoftwareCandidate(SQLModel, table=True):
    """Software a probe saw on an asset, as a CPE name with a confidence; used for matching once
    confirmed, or at once when its confidence reaches the configured threshold."""

    __tablename__ = "software_candidate"
    __table_args__ = (UniqueConstraint("asset_id", "cpe", name="uq_software_candidate"),)

    id: int | None = Field(default=None, primary_key=True)
    asset_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("asset.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    cpe: str = Field(max_length=512)
    confidence: float = Field(default=0.0, sa_type=Float)
    source: str = Field(default="", max_length=32)  # the probe: dicom, http, ssh, ftp, ...
    seen: str = Field(default="", max_length=255)  # what it was read from (header, banner)
    address: str = Field(default="", max_length=45)
    port: int | None = None
    status: CandidateStatus = Field(default=CandidateStatus.pending, sa_type=String(16))
    decided_by: str = Field(default="", max_length=64)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class VulnMatchState(SQLModel, table=True):
    """When an asset was last matched against every record, and a digest of the findings that
    match called for: a full re-match that finds the same digest leaves the asset's findings as
    they are (a million rows are not read and rewritten to learn that nothing changed), and
    `matched_at` is the date its still-matching findings were last seen."""

    __tablename__ = "vuln_match_state"

    asset_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("asset.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        )
    )
    digest: str = Field(default="", max_length=40)  # "" when only a scoped re-match ran since
    matched_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# Findings of one CVE across every asset: what a feed import re-matches when it changed a few
# records. Declared here, with the vulnerability tables, and created by their migration (0005).
Index(
    "ix_finding_check_subject",
    Finding.__table__.c.check_id,  # type: ignore[attr-defined]
    Finding.__table__.c.subject,  # type: ignore[attr-defined]
)
