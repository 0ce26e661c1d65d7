"""Known vulnerabilities on assets: re-matching every asset's software against the imported feeds,
`vuln.cve` and `vuln.kev` findings, and the detected-software candidates a user confirms or rejects.

The software of an asset is its declared CPE names plus the detected candidates that a user
confirmed or whose confidence reaches the configured threshold (never the rejected ones).

Findings follow the audit lifecycle (inventory.services.audits): one per (asset, check, CVE);
new ones open; still matching ones move their last-seen date; ones that no longer match (the
version was updated in the form, a record was corrected) are fixed; ones that match again are
reopened; accepted risks stay accepted until their date. Matching needs no probe: a feed import
re-matches every asset at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session

from inventory.errors import InvalidInput, NotFound
from inventory.i18n import N_
from inventory.models import CandidateStatus, FeedImport, FeedKind, SoftwareCandidate, VulnProduct
from inventory.models.types import utcnow, valid_id
from inventory.services.vuln_import import FeedError, ImportResult, feed_counts, import_files
from inventory.services.vuln_match import (
    CVE_CHECK,
    KEV_CHECK,
    RematchResult,
    VulnOptions,
    refresh_candidates,
    rematch,
    severity_for,
)

__all__ = [
    "CVE_CHECK",
    "KEV_CHECK",
    "FeedError",
    "ImportResult",
    "RematchResult",
    "VulnOptions",
    "candidates_of",
    "decide_candidate",
    "feed_status",
    "import_and_rematch",
    "import_files",
    "last_api_update",
    "options_from",
    "rematch",
    "search_products",
    "severity_for",
]


def options_from(settings: Any) -> VulnOptions:
    """VulnOptions from the application settings' [vulns] section, defaults when it has none."""
    section = getattr(settings, "vulns", None)
    if section is None:
        return VulnOptions()
    return VulnOptions(
        auto_confirm_confidence=float(getattr(section, "auto_confirm_confidence", 0.9)),
        vendor_aliases=bool(getattr(section, "vendor_aliases", True)),
    )


# --- detected software ----------------------------------------------------------------------


def candidates_of(*, session: Session, asset_id: int) -> list[SoftwareCandidate]:
    """One asset's detected software, refreshed from its observed services, most confident
    first."""
    refresh_candidates(session, [asset_id], utcnow())
    session.commit()
    return list(
        session.scalars(
            select(SoftwareCandidate)
            .where(SoftwareCandidate.asset_id == asset_id)
            .order_by(SoftwareCandidate.confidence.desc(), SoftwareCandidate.cpe)
        )
    )


def decide_candidate(
    *,
    session: Session,
    asset_id: int,
    candidate_id: int,
    decision: str,
    actor: str,
    options: VulnOptions | None = None,
) -> SoftwareCandidate:
    """Confirm or reject a detected CPE name, then re-match the asset."""
    if decision not in {CandidateStatus.confirmed, CandidateStatus.rejected}:
        raise InvalidInput(N_("Choose confirm or reject."))
    candidate = session.get(SoftwareCandidate, candidate_id) if valid_id(candidate_id) else None
    if candidate is None or candidate.asset_id != asset_id:
        raise NotFound(N_("No detected software with id %(id)s on this asset."), id=candidate_id)
    try:
        candidate.status = CandidateStatus(decision)
        candidate.decided_by = actor[:64]
        candidate.decided_at = utcnow()
        session.add(candidate)
        session.commit()
    except Exception:
        session.rollback()
        raise
    rematch(session=session, asset_ids=[asset_id], options=options, actor=actor)
    return candidate


def import_and_rematch(
    *,
    session: Session,
    files: Sequence[tuple[Any, str]],
    actor: str,
    source: str = "file",
    options: VulnOptions | None = None,
) -> tuple[list[ImportResult], RematchResult]:
    """Import feed files (all or nothing), then re-match every asset against them."""
    results = import_files(session=session, files=files, actor=actor, source=source)
    return results, rematch(session=session, options=options, actor=actor)


# --- pages ----------------------------------------------------------------------------------


def search_products(*, session: Session, text: str, limit: int = 20) -> list[VulnProduct]:
    """Vendor and product names from the imported records containing `text` ("orth" finds
    orthanc-server:orthanc), the most often affected first."""
    words = text.strip().lower().replace(" ", "_")
    words = "".join(ch for ch in words if ch.isprintable())[:100]
    if len(words) < 2:
        return []
    pattern = "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    vendor, _, product = words.partition(":")
    conditions = [
        VulnProduct.product.like(pattern, escape="\\"),
        VulnProduct.vendor.like(pattern, escape="\\"),
    ]
    if product:
        conditions.append(
            (VulnProduct.vendor == vendor)
            & VulnProduct.product.startswith(product, autoescape=True)
        )
    return list(
        session.scalars(
            select(VulnProduct)
            .where(or_(*conditions))
            .order_by(VulnProduct.records.desc(), VulnProduct.vendor, VulnProduct.product)
            .limit(limit)
        )
    )


def last_api_update(*, session: Session) -> datetime | None:
    """The NVD's own time of the last `feeds update` download: the next one starts there."""
    return session.scalars(
        select(FeedImport.feed_date)
        .where(
            FeedImport.feed == FeedKind.nvd,
            FeedImport.source == "api",
            FeedImport.feed_date.is_not(None),
        )
        .order_by(FeedImport.feed_date.desc())
        .limit(1)
    ).first()


@dataclass
class FeedState:
    feed: str
    records: int
    feed_date: datetime | None
    last_import: FeedImport | None


def feed_status(*, session: Session) -> list[FeedState]:
    """Each feed's record count, its own date (the newest imported) and its last import."""
    counts = feed_counts(session=session)
    states = []
    for kind in FeedKind:
        last = session.scalars(
            select(FeedImport)
            .where(FeedImport.feed == kind)
            .order_by(FeedImport.finished_at.desc(), FeedImport.id.desc())
            .limit(1)
        ).first()
        newest = session.scalars(
            select(FeedImport.feed_date)
            .where(FeedImport.feed == kind, FeedImport.feed_date.is_not(None))
            .order_by(FeedImport.feed_date.desc())
            .limit(1)
        ).first()
        states.append(FeedState(str(kind), counts[str(kind)], newest, last))
    return states
