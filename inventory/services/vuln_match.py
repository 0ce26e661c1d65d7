"""Re-matching assets against the stored vulnerability records, and the findings it keeps.

Matching reads, for the (vendor, product) pairs the assets run, only their vulnerable criteria
(the indexed `vuln_cpe_match` table), narrows each asset CPE name to the records that have a
criterion for it, and evaluates just those records' configurations in full
(inventory.vulns.matching). Findings follow the audit lifecycle (inventory.services.audits);
each finding's evidence carries a digest of what it was built from, so a re-match with nothing
new only moves last-seen dates, in bulk, without rebuilding or comparing evidence.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select, tuple_, update
from sqlmodel import Session

from inventory.i18n import N_
from inventory.models import (
    Asset,
    AssetAddress,
    CandidateStatus,
    Finding,
    FindingEvent,
    FindingStatus,
    KevEntry,
    ObservedService,
    Severity,
    SoftwareCandidate,
    VulnCpeMatch,
    Vulnerability,
)
from inventory.models.types import utcnow
from inventory.vulns import detect
from inventory.vulns.cpe import Cpe, CpeError, aliases_of, parse, unescape
from inventory.vulns.matching import Configuration, Criterion, Match, applies, criterion_matches
from inventory.vulns.matching import parse_configurations as _parse_configurations
from inventory.vulns.versions import version_key

__all__ = ["CVE_CHECK", "KEV_CHECK", "RematchResult", "VulnOptions", "rematch", "severity_for"]

CVE_CHECK = "vuln.cve"
KEV_CHECK = "vuln.kev"
ACTIVE = (FindingStatus.open, FindingStatus.reopened, FindingStatus.accepted)
CVE_REMEDIATION = N_(
    "Update this software to a version its vendor lists as fixed (see the references). Until "
    "then, let only the systems that need it reach it, through the firewall or the VPN."
)
KEV_REMEDIATION = N_(
    "Attackers are exploiting this vulnerability now: update this software first, before the "
    "due date CISA set, or take the system off the network until it is updated."
)
MAX_REFERENCES = 20


@dataclass(frozen=True)
class VulnOptions:
    """[vulns] settings: the confidence from which a detected candidate is used without a
    confirmation, and whether vendor aliases (inventory.vulns.cpe.VENDOR_ALIASES) are tried."""

    auto_confirm_confidence: float = 0.9
    vendor_aliases: bool = True


def severity_for(score: float | None) -> Severity:
    """CVSS qualitative ratings (the same bands in v2, v3 and v4); no score: medium."""
    if score is None:
        return Severity.medium
    if score >= 9.0:
        return Severity.critical
    if score >= 7.0:
        return Severity.high
    if score >= 4.0:
        return Severity.medium
    return Severity.low if score > 0 else Severity.info


@dataclass
class RematchResult:
    assets: int = 0
    opened: int = 0
    reopened: int = 0
    fixed: int = 0
    still: int = 0


@dataclass
class _Software:
    """One CPE name an asset runs, and where Vigie knows it from."""

    cpe: Cpe
    source: str  # "declared" or "detected"
    port: int | None = None


@dataclass
class _Asset:
    id: int
    address: str = ""
    software: list[_Software] = field(default_factory=list)


def _chunks(items: Sequence[Any], size: int = 900) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- detected software ----------------------------------------------------------------------


def refresh_candidates(session: Session, asset_ids: Sequence[int], now: datetime) -> None:
    """Candidates follow what the last audits saw: new sightings are added, gone ones removed.

    A new version of a product inherits the decision taken on the previous one (an Orthanc the
    user confirmed stays confirmed after an upgrade), so a decision is asked for only once.
    """
    observed: dict[int, list[ObservedService]] = defaultdict(list)
    stored: dict[int, list[SoftwareCandidate]] = defaultdict(list)
    for chunk in _chunks(asset_ids):
        for seen in session.scalars(
            select(ObservedService).where(ObservedService.asset_id.in_(chunk))
        ):
            observed[seen.asset_id].append(seen)
        for cand in session.scalars(
            select(SoftwareCandidate).where(SoftwareCandidate.asset_id.in_(chunk))
        ):
            stored[cand.asset_id].append(cand)
    for asset_id in set(observed) | set(stored):
        fresh = {c.cpe: c for c in detect.candidates(observed.get(asset_id, []))}
        rows = {r.cpe: r for r in stored.get(asset_id, [])}
        gone = [r for cpe, r in rows.items() if cpe not in fresh]
        for cpe, found in fresh.items():
            row: SoftwareCandidate | None = rows.get(cpe)
            if row is None:
                row = SoftwareCandidate(asset_id=asset_id, cpe=cpe, first_seen=now)
                key = parse(cpe).key
                earlier = next(
                    (
                        g
                        for g in gone
                        if g.status != CandidateStatus.pending and parse(g.cpe).key == key
                    ),
                    None,
                )
                if earlier is not None:
                    row.status, row.decided_by = earlier.status, earlier.decided_by
                    row.decided_at = earlier.decided_at
            row.confidence, row.source, row.seen = found.confidence, found.source, found.seen
            row.address, row.port, row.last_seen = found.address, found.port, now
            session.add(row)
        for old in gone:
            session.delete(old)
    session.flush()


# --- matching -------------------------------------------------------------------------------


def _load_assets(
    session: Session, asset_ids: Sequence[int] | None, options: VulnOptions
) -> dict[int, _Asset]:
    statement = select(Asset.id, Asset.software).where(Asset.archived_at.is_(None))
    rows = []
    if asset_ids is None:
        rows = list(session.execute(statement))
    else:
        for chunk in _chunks(list(asset_ids)):
            rows += list(session.execute(statement.where(Asset.id.in_(chunk))))
    assets = {asset_id: _Asset(asset_id) for asset_id, _ in rows}
    for asset_id, software in rows:
        for name in software or []:
            try:
                assets[asset_id].software.append(_Software(parse(name), "declared"))
            except CpeError:
                continue  # validated on the way in; an old or hand-edited row is skipped
    ids = list(assets)
    for chunk in _chunks(ids):
        for asset_id, address in session.execute(
            select(AssetAddress.asset_id, AssetAddress.address)
            .where(AssetAddress.asset_id.in_(chunk))
            .order_by(AssetAddress.asset_id, AssetAddress.position.desc())
        ):
            assets[asset_id].address = str(address)  # the last one written is position 0
    refresh_candidates(session, ids, utcnow())
    used = or_(
        SoftwareCandidate.status == CandidateStatus.confirmed,
        (SoftwareCandidate.status == CandidateStatus.pending)
        & (SoftwareCandidate.confidence >= options.auto_confirm_confidence),
    )
    for chunk in _chunks(ids):
        for cand in session.scalars(
            select(SoftwareCandidate).where(SoftwareCandidate.asset_id.in_(chunk), used)
        ):
            asset = assets[cand.asset_id]
            if all(str(s.cpe) != cand.cpe for s in asset.software):
                asset.software.append(_Software(parse(cand.cpe), "detected", cand.port))
    return assets


class _ProductIndex:
    """One product's vulnerable criteria, arranged so that a version finds its few candidates
    without testing every criterion: exact versions by key, ranges by their upper bound."""

    def __init__(self) -> None:
        self.exact: dict[Any, list[tuple[int, Criterion]]] = defaultdict(list)
        self.ranged: list[tuple[Any, int, Criterion]] = []  # sorted by upper bound
        self.other: list[tuple[int, Criterion]] = []  # every version, "-", wildcards
        self._sorted = True

    def add(self, vid: int, criterion: Criterion) -> None:
        version = criterion.cpe.version
        if criterion.has_range:
            top = version_key(criterion.end) if criterion.end else _NO_END
            self.ranged.append((top, vid, criterion))
            self._sorted = False
        elif version in {"*", "-"} or "*" in version or "?" in version:
            self.other.append((vid, criterion))
        else:
            self.exact[version_key(unescape(version))].append((vid, criterion))

    def hits(self, cpe: Cpe) -> set[int]:
        if not self._sorted:
            self.ranged.sort(key=lambda row: row[0])
            self._sorted = True
        found = {vid for vid, c in self.other if criterion_matches(c, cpe)}
        if cpe.version in {"*", "-"}:
            return found
        key = version_key(unescape(cpe.version))
        found |= {vid for vid, c in self.exact.get(key, ()) if criterion_matches(c, cpe)}
        # Ranges whose upper bound is below the version cannot hold it: skip them at once.
        start = bisect_left(self.ranged, key, key=lambda row: row[0])
        found |= {vid for _, vid, c in self.ranged[start:] if criterion_matches(c, cpe)}
        return found


_NO_END = (1 << 62, ())


def _criteria_index(
    session: Session, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], _ProductIndex]:
    """The vulnerable criteria of these (vendor, product) pairs, from the indexed table."""
    index: dict[tuple[str, str], _ProductIndex] = defaultdict(_ProductIndex)
    ordered = sorted(keys)
    for chunk in _chunks(ordered, 400):
        rows = session.execute(
            select(
                VulnCpeMatch.vulnerability_id,
                VulnCpeMatch.criteria,
                VulnCpeMatch.version_start,
                VulnCpeMatch.start_including,
                VulnCpeMatch.version_end,
                VulnCpeMatch.end_including,
            ).where(
                VulnCpeMatch.vulnerable.is_(True),
                tuple_(VulnCpeMatch.vendor, VulnCpeMatch.product).in_(list(chunk)),
            )
        )
        for vid, criteria, start, start_inc, end, end_inc in rows:
            try:
                cpe = parse(criteria)
            except CpeError:
                continue
            index[cpe.key].add(vid, Criterion(criteria, cpe, True, start, start_inc, end, end_inc))
    return index


def _variants(cpe: Cpe, aliases: bool) -> list[Cpe]:
    names = [cpe]
    if aliases:
        names += [cpe.with_vendor(v) for v in aliases_of(cpe.vendor, cpe.product)]
    return names


@dataclass
class _Light:
    """What a record's findings are built from, short of its text."""

    cve_id: str
    last_modified: datetime
    score: float | None
    configurations: tuple[Configuration, ...]


def _matches(
    session: Session, assets: dict[int, _Asset], options: VulnOptions
) -> tuple[dict[int, dict[int, Match]], dict[int, _Light]]:
    """For each asset, the records that apply to it ({vulnerability id: Match})."""
    keys = {
        v.key
        for asset in assets.values()
        for s in asset.software
        for v in _variants(s.cpe, options.vendor_aliases)
    }
    index = _criteria_index(session, keys) if keys else {}
    hits: dict[str, set[int]] = {}  # one asset CPE name -> records with a vulnerable hit
    per_asset: dict[int, set[int]] = {}
    for asset in assets.values():
        wanted: set[int] = set()
        for s in asset.software:
            name = str(s.cpe)
            if name not in hits:
                found: set[int] = set()
                for variant in _variants(s.cpe, options.vendor_aliases):
                    if variant.key in index:
                        found |= index[variant.key].hits(variant)
                hits[name] = found
            wanted |= hits[name]
        if wanted:
            per_asset[asset.id] = wanted
    needed = sorted(set().union(*per_asset.values())) if per_asset else []
    records: dict[int, _Light] = {}
    columns = (
        Vulnerability.id,
        Vulnerability.cve_id,
        Vulnerability.last_modified,
        Vulnerability.cvss_score,
        Vulnerability.configurations,
    )
    for chunk in _chunks(needed):
        for vid, cve, modified, score, raw in session.execute(
            select(*columns).where(Vulnerability.id.in_(chunk))
        ):
            records[vid] = _Light(cve, modified, score, _parse_configurations(raw))
    # Assets with the same software (one workstation image, one modality model) share the answer.
    result: dict[int, dict[int, Match]] = {}
    by_profile: dict[tuple[str, ...], dict[int, Match]] = {}
    for asset_id, wanted in per_asset.items():
        names = [s.cpe for s in assets[asset_id].software]
        profile = tuple(sorted(str(name) for name in names))
        applying = by_profile.get(profile)
        if applying is None:
            applying = {}
            for vid in wanted:
                match = applies(records[vid].configurations, names, aliases=options.vendor_aliases)
                if match is not None:
                    applying[vid] = match
            by_profile[profile] = applying
        if applying:
            result[asset_id] = applying
    return result, records


# --- findings -------------------------------------------------------------------------------


@dataclass
class _Wanted:
    """A finding the match calls for; its evidence is built only when it is new or changed."""

    asset_id: int
    check: str
    vid: int
    subject: str
    address: str
    port: int | None
    severity: Severity
    software: str
    sources: str
    match: Match
    kev: KevEntry | None
    digest: str


def _digest(light: _Light, match: Match, kev: KevEntry | None, sources: str, port: Any) -> str:
    facts = [
        light.last_modified.isoformat(),
        str(light.score),
        " ".join(match.cpes),
        " ".join(match.criteria[:10]),
        match.platform,
        match.alias,
        sources,
        str(port),
        f"{kev.date_added} {kev.due_date} {kev.ransomware} {kev.name}" if kev else "-",
    ]
    return hashlib.sha1("|".join(facts).encode()).hexdigest()[:20]


def _wanted(
    assets: dict[int, _Asset],
    matches: dict[int, dict[int, Match]],
    records: dict[int, _Light],
    kev: dict[str, KevEntry],
) -> dict[tuple[int, str, str], _Wanted]:
    wanted: dict[tuple[int, str, str], _Wanted] = {}
    # (software with sources and ports, record) -> what its findings are made of, worked out once
    done: dict[tuple[Any, int], tuple[str, str, int | None, str]] = {}
    for asset_id, found in matches.items():
        asset = assets[asset_id]
        profile = tuple(sorted((str(s.cpe), s.source, s.port or 0) for s in asset.software))
        by_name: dict[str, _Software] | None = None
        for vid, match in found.items():
            light = records[vid]
            entry = kev.get(light.cve_id)
            facts = done.get((profile, vid))
            if facts is None:
                by_name = by_name or {str(s.cpe): s for s in asset.software}
                used = [by_name[c] for c in match.cpes if c in by_name]
                port = next((s.port for s in used if s.port), None)
                sources = "+".join(sorted({s.source for s in used})) or "declared"
                software = parse(match.cpes[0]).label()
                facts = (software, sources, port, _digest(light, match, entry, sources, port))
                done[(profile, vid)] = facts
            software, sources, port, digest = facts
            wanted[(asset_id, CVE_CHECK, light.cve_id)] = _Wanted(
                asset_id,
                CVE_CHECK,
                vid,
                light.cve_id,
                asset.address,
                port,
                severity_for(light.score),
                software,
                sources,
                match,
                entry,
                digest,
            )
            if entry is not None:
                wanted[(asset_id, KEV_CHECK, light.cve_id)] = _Wanted(
                    asset_id,
                    KEV_CHECK,
                    vid,
                    light.cve_id,
                    asset.address,
                    port,
                    Severity.critical,
                    software,
                    sources,
                    match,
                    entry,
                    digest,
                )
    return wanted


def _evidence(item: _Wanted, vuln: Vulnerability) -> dict[str, Any]:
    match, kev = item.match, item.kev
    evidence: dict[str, Any] = {
        "cve": vuln.cve_id,
        "software": item.software,
        "cpes": match.cpes,
        "criteria": match.criteria[:10],
        "source": item.sources,
        "description": vuln.description[:4000],
        "references": vuln.references[:MAX_REFERENCES],
        "nvd_status": vuln.status,
        "last_modified": vuln.last_modified.date().isoformat() if vuln.last_modified else "",
        "kev": kev is not None,
        "digest": item.digest,
    }
    if vuln.cvss_score is not None:
        evidence["cvss_score"] = vuln.cvss_score
        evidence["cvss_version"] = vuln.cvss_version
        evidence["cvss_vector"] = vuln.cvss_vector
    if match.platform:
        evidence["platform"] = match.platform
    if match.alias:
        evidence["vendor_alias"] = match.alias
    if kev is not None:
        evidence["kev_added"] = kev.date_added.isoformat()
        evidence["kev_due"] = kev.due_date.isoformat() if kev.due_date else ""
        evidence["kev_ransomware"] = kev.ransomware
        evidence["kev_name"] = kev.name
    return evidence


def _title(item: _Wanted) -> str:
    """The stored English title (the pages rebuild it in the reader's language)."""
    if item.check == KEV_CHECK and item.kev is not None:
        return (
            f"{item.subject} in {item.software} is being exploited by attackers "
            f"(CISA KEV since {item.kev.date_added.isoformat()})"
        )[:255]
    return f"Known vulnerability {item.subject} in {item.software}"[:255]


def _full_rows(session: Session, items: Iterable[_Wanted]) -> dict[int, Vulnerability]:
    ids = sorted({item.vid for item in items})
    rows: dict[int, Vulnerability] = {}
    for chunk in _chunks(ids):
        for vuln in session.scalars(select(Vulnerability).where(Vulnerability.id.in_(chunk))):
            rows[vuln.id] = vuln  # type: ignore[index]
    return rows


def _event(
    finding_id: int, who: str, old: str | None, new: str, now: datetime, note: str
) -> dict[str, Any]:
    return {
        "finding_id": finding_id,
        "at": now,
        "actor": who,
        "old_status": old,
        "new_status": new,
        "note": note,
    }


def _sync_findings(
    session: Session,
    scope: set[int],
    wanted: dict[tuple[int, str, str], _Wanted],
    who: str,
    now: datetime,
    result: RematchResult,
) -> None:
    digest = Finding.evidence["digest"].as_string()
    columns = (
        Finding.id,
        Finding.asset_id,
        Finding.check_id,
        Finding.subject,
        Finding.status,
        Finding.accepted_until,
        digest.label("digest"),
    )
    existing: dict[tuple[int, str, str], Any] = {}
    statement = select(*columns).where(Finding.check_id.in_([CVE_CHECK, KEV_CHECK]))
    for row in session.execute(statement):
        if row.asset_id in scope:
            existing[(row.asset_id, row.check_id, row.subject)] = row
    events: list[dict[str, Any]] = []
    touched: list[int] = []
    changed: list[tuple[int, _Wanted, dict[str, Any]]] = []
    fixed: list[int] = []
    for key, row in existing.items():
        item = wanted.get(key)
        status = FindingStatus(row.status)
        if item is None:
            if status in ACTIVE:
                fixed.append(row.id)
                events.append(_event(row.id, who, status, "fixed", now, "no longer matches"))
                result.fixed += 1
            continue
        values: dict[str, Any] = {}
        if status == FindingStatus.fixed:
            values = {"status": FindingStatus.reopened, "fixed_at": None}
            events.append(_event(row.id, who, status, "reopened", now, "matches again"))
            result.reopened += 1
        elif status == FindingStatus.accepted and row.accepted_until and row.accepted_until <= now:
            values = {"status": FindingStatus.reopened}
            events.append(_event(row.id, who, status, "reopened", now, "risk acceptance expired"))
            result.reopened += 1
        else:
            result.still += 1
        if values or row.digest != item.digest:
            changed.append((row.id, item, values))
        else:
            touched.append(row.id)
    for chunk in _chunks(fixed):
        session.execute(
            update(Finding)
            .where(Finding.id.in_(chunk))
            .values(status=FindingStatus.fixed, fixed_at=now)
        )
    for chunk in _chunks(touched):
        session.execute(update(Finding).where(Finding.id.in_(chunk)).values(last_seen=now))
    new = [item for key, item in wanted.items() if key not in existing]
    full = _full_rows(session, [item for _, item, _ in changed] + new)
    if changed:
        session.execute(
            update(Finding),
            [
                {
                    "id": fid,
                    "last_seen": now,
                    "evidence": _evidence(item, full[item.vid]),
                    "severity": item.severity,
                    "title": _title(item),
                    "port": item.port,
                    **values,
                }
                for fid, item, values in changed
            ],
        )
    for chunk in _chunks(new, 2000):
        ids = session.execute(
            insert(Finding).returning(Finding.id),
            [
                {
                    "asset_id": w.asset_id,
                    "check_id": w.check,
                    "subject": w.subject,
                    "address": w.address,
                    "port": w.port,
                    "severity": w.severity,
                    "title": _title(w),
                    "remediation": KEV_REMEDIATION if w.check == KEV_CHECK else CVE_REMEDIATION,
                    "evidence": _evidence(w, full[w.vid]),
                    "status": FindingStatus.open,
                    "first_seen": now,
                    "last_seen": now,
                    "accepted_reason": "",
                    "accepted_by": "",
                }
                for w in chunk
            ],
            execution_options={"synchronize_session": False},
        ).scalars()
        events += [_event(fid, who, None, "open", now, "") for fid in ids]
        result.opened += len(chunk)
    for chunk in _chunks(events, 5000):
        session.execute(insert(FindingEvent), list(chunk))


def rematch(
    *,
    session: Session,
    asset_ids: Sequence[int] | None = None,
    options: VulnOptions | None = None,
    actor: str = "system",
    now: datetime | None = None,
) -> RematchResult:
    """Match live assets (all, or `asset_ids`) against the stored records; one transaction."""
    options = options or VulnOptions()
    now = now or utcnow()
    who = f"vulnerability match by {actor}"[:64]
    result = RematchResult()
    try:
        assets = _load_assets(session, asset_ids, options)
        result.assets = len(assets)
        matches, records = _matches(session, assets, options)
        cves = sorted({records[vid].cve_id for found in matches.values() for vid in found})
        kev: dict[str, KevEntry] = {}
        for chunk in _chunks(cves):
            kev.update(
                (e.cve_id, e)
                for e in session.scalars(select(KevEntry).where(KevEntry.cve_id.in_(chunk)))
            )
        wanted = _wanted(assets, matches, records, kev)
        _sync_findings(session, set(assets), wanted, who, now, result)
        session.commit()
    except Exception:
        session.rollback()
        raise
    session.expire_all()  # rows changed by bulk statements must not show their old values
    return result
