"""Known vulnerabilities on assets, as the web pages, the API, the CLI and the audits use them:
feed imports followed by a re-match of every asset, re-matching one asset after an audit or an
edit of its software, the detected-software candidates a user confirms or rejects, the product
search of the asset form and the state of the feeds.

Matching needs no probe: a feed import re-matches every asset at once, from what is stored
(inventory.services.vuln_match for the matching, inventory.services.vuln_findings for what it
means for findings).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from inventory.collector import young_collections_only
from inventory.errors import InvalidInput, NotFound
from inventory.i18n import N_
from inventory.models import (
    AssetChange,
    CandidateStatus,
    ChangeAction,
    FeedImport,
    FeedKind,
    SoftwareCandidate,
    Vulnerability,
    VulnProduct,
)
from inventory.models.types import utcnow, valid_id
from inventory.services.vuln_findings import (
    CVE_CHECK,
    KEV_CHECK,
    VULN_CHECKS,
    PlanCache,
    VulnerabilityFacts,
    plan_findings,
    save_states,
    severity_for,
    stored_digests,
    sync_findings,
    unchanged_assets,
    vulnerability_facts,
    wanted_findings,
)
from inventory.services.vuln_import import FeedError, ImportResult, feed_counts, import_files
from inventory.services.vuln_match import (
    RematchResult,
    VulnOptions,
    chunks,
    find_matches,
    kev_entries,
    load_assets,
    refresh_candidates,
)

__all__ = [
    "CVE_CHECK",
    "KEV_CHECK",
    "VULN_CHECKS",
    "FeedError",
    "ImportResult",
    "RematchResult",
    "VulnOptions",
    "VulnerabilityFacts",
    "after_audit",
    "candidates_of",
    "decide_candidate",
    "feed_status",
    "import_and_rematch",
    "import_files",
    "last_api_update",
    "options_from",
    "rematch",
    "rematch_edited",
    "search_products",
    "severity_for",
    "vulnerability_facts",
]

log = logging.getLogger(__name__)
BY_CVE = 20_000  # re-matching fewer changed CVEs than this finds their findings by CVE


def options_from(settings: Any) -> VulnOptions:
    """VulnOptions from the application settings' [vulns] section."""
    section = settings.vulns
    return VulnOptions(
        auto_confirm_confidence=section.auto_confirm_confidence,
        vendor_aliases=section.vendor_aliases,
    )


# --- matching -------------------------------------------------------------------------------


@young_collections_only()
def rematch(
    *,
    session: Session,
    asset_ids: Sequence[int] | None = None,
    cves: Iterable[str] | None = None,
    options: VulnOptions | None = None,
    actor: str = "system",
    now: datetime | None = None,
) -> RematchResult:
    """Match live assets (all, or `asset_ids`) against the stored records (all, or only the
    CVEs `cves`: what a feed import changed) and bring their `vuln.cve` / `vuln.kev` findings up
    to date; one transaction. Findings of other CVEs are left as they are.

    The findings are written a thousand assets at a time, so that a first match of a large
    inventory (millions of findings) never holds them all in memory.

    Two re-matches of the same asset at once (an audit finishing during a feed import) can both
    try to open the same finding: the one that loses starts again, once or twice.
    """
    options = options or VulnOptions()
    scope = None if cves is None else set(cves)
    for attempt in range(3):
        result = RematchResult()
        moment = now or utcnow()
        try:
            assets = load_assets(session, asset_ids, options)
            result.assets = len(assets)
            if scope is not None and not scope:
                break  # nothing changed
            matches, records = find_matches(session, assets, options, scope)
            # Every record read may have matched (a few more than did, never fewer).
            kev = kev_entries(session, (record.cve_id for record in records.values()))
            # A few changed CVEs: their findings are found by CVE, across every asset, at once.
            # Otherwise a thousand assets at a time, their findings found by asset.
            by_cve = scope is not None and len(scope) <= BY_CVE
            batches = [sorted(assets)] if by_cve else chunks(sorted(assets), 1000)
            cache = PlanCache()
            who = f"vulnerability match by {actor}"[:64]
            for batch in batches:
                plans = plan_findings({i: assets[i] for i in batch}, matches, records, kev, cache)
                stored = stored_digests(session, batch)
                to_sync = set(batch)
                if scope is None:
                    # Matched against every record: an asset whose findings are already what
                    # the match calls for (same digest) is not read nor written again.
                    same = unchanged_assets(session, plans, stored, moment)
                    to_sync -= same
                    result.still += sum(plans[i].count for i in same)
                touched = set()
                if to_sync:
                    touched = sync_findings(
                        session,
                        asset_ids=to_sync,
                        cves=scope,
                        by_cve=by_cve,
                        wanted=wanted_findings(assets, plans, to_sync),
                        who=who,
                        now=moment,
                        result=result,
                    )
                if scope is None:
                    digests = {i: plans[i].digest for i in batch}
                else:
                    digests = {i: "" if i in touched else stored.get(i, "") for i in batch}
                save_states(session, digests, moment)
            session.commit()
        except (IntegrityError, OperationalError) as exc:
            session.rollback()
            if attempt == 2 or (
                isinstance(exc, OperationalError) and "locked" not in str(exc).lower()
            ):
                raise
            log.info("re-match clashed with another one; trying again (%s)", type(exc).__name__)
            continue
        except Exception:
            session.rollback()
            raise
        break
    session.expire_all()  # rows changed by bulk statements must not show their old values
    return result


def after_audit(
    *,
    session: Session,
    asset_id: int,
    options: VulnOptions | None,
    actor: str,
    now: datetime | None = None,
) -> RematchResult | None:
    """Once an audit that reached the asset is recorded: its detected software follows what the
    audit saw, and when the software used for matching changed (a new version, a new product, a
    port), the asset is matched again; an audit that saw the same software as the last one costs
    no matching. Commits; a failure here is logged and leaves the recorded audit as it is (the
    next audit or feed import matches again). Returns the re-match, None when there was none."""
    now = now or utcnow()
    options = options or VulnOptions()
    try:
        before = _used_software(session, asset_id, options)
        refresh_candidates(session, [asset_id], now)
        session.commit()
        if _used_software(session, asset_id, options) == before:
            return None
        return rematch(session=session, asset_ids=[asset_id], options=options, actor=actor, now=now)
    except Exception:
        session.rollback()
        log.exception("matching asset %s against known vulnerabilities failed", asset_id)
        return None


def _used_software(session: Session, asset_id: int, options: VulnOptions) -> set[Any]:
    """The detected software of an asset that matching uses, with the ports it was seen on."""
    used = or_(
        SoftwareCandidate.status == CandidateStatus.confirmed,
        (SoftwareCandidate.status == CandidateStatus.pending)
        & (SoftwareCandidate.confidence >= options.auto_confirm_confidence),
    )
    rows = session.execute(
        select(SoftwareCandidate.cpe, SoftwareCandidate.port).where(
            SoftwareCandidate.asset_id == asset_id, used
        )
    )
    return {(cpe, port) for cpe, port in rows}


def rematch_edited(
    *,
    session: Session,
    options: VulnOptions | None,
    actor: str,
    asset_ids: Sequence[int] = (),
    since: datetime | None = None,
) -> RematchResult | None:
    """After assets were created, edited or restored (form, API, import): match again `asset_ids`
    and the assets whose declared software changed since `since` (from their change history),
    so that a version updated in the form closes its findings at once. Nothing to do before a
    feed is imported. Commits; a failure is logged and leaves the edit as it is (the next feed
    import or audit matches again)."""
    try:
        if session.scalar(select(Vulnerability.id).limit(1)) is None:
            return None
        ids = set(asset_ids)
        if since is not None:
            ids.update(
                session.scalars(
                    select(AssetChange.asset_id)
                    .where(
                        AssetChange.at >= since,
                        or_(
                            AssetChange.action != ChangeAction.updated,
                            AssetChange.changes["software"].as_string().is_not(None),
                        ),
                    )
                    .distinct()
                )
            )
        if not ids:
            return None
        return rematch(session=session, asset_ids=sorted(ids), options=options, actor=actor)
    except Exception:
        session.rollback()
        log.exception("matching edited assets against known vulnerabilities failed")
        return None


# --- detected software ----------------------------------------------------------------------


def candidates_of(*, session: Session, asset_id: int) -> list[SoftwareCandidate]:
    """One asset's detected software, most confident first."""
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
    session.refresh(candidate)
    return candidate


def import_and_rematch(
    *,
    session: Session,
    files: Sequence[tuple[Any, str]],
    actor: str,
    source: str = "file",
    options: VulnOptions | None = None,
) -> tuple[list[ImportResult], RematchResult]:
    """Import feed files (all or nothing), then re-match every asset against what they changed
    (new and updated records, KEV entries added, changed or removed)."""
    results = import_files(session=session, files=files, actor=actor, source=source)
    changed = set().union(*(r.changed for r in results)) if results else set()
    return results, rematch(session=session, cves=changed, options=options, actor=actor)


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
