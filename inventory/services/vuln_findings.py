"""`vuln.cve` and `vuln.kev` findings from the matches (inventory.services.vuln_match), and what
the pages, the API and the CLI show of them.

Findings follow the audit lifecycle (inventory.services.audits): one per (asset, check, CVE);
new ones open; still matching ones are seen again (their asset's match date, kept once per
asset in `vuln_match_state`, is their last-seen date); ones that no longer match (the version
was updated in the form, a record was corrected) are fixed; ones that match again are reopened;
accepted risks stay accepted until their date.

A finding's evidence keeps what the match was about (software, CPE names, criteria, CVSS score
and vector, KEV dates) and a digest of it, so a re-match with nothing new rebuilds no evidence;
each asset keeps a digest of all its findings, so a full re-match that finds the same one does
not even read them. The record's text (description,
references) stays in the `vulnerability` table and is read from there when shown: 200,000
findings do not each carry a copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlmodel import Session

from inventory.i18n import N_
from inventory.models import (
    Finding,
    FindingEvent,
    FindingStatus,
    KevEntry,
    Severity,
    Vulnerability,
    VulnMatchState,
)
from inventory.services.vuln_match import (
    AssetSoftware,
    Record,
    RematchResult,
    chunks,
)
from inventory.vulns.cpe import parse
from inventory.vulns.matching import Match

__all__ = [
    "CVE_CHECK",
    "KEV_CHECK",
    "VULN_CHECKS",
    "VulnerabilityFacts",
    "severity_for",
    "sync_findings",
    "vulnerability_facts",
    "wanted_findings",
]

CVE_CHECK = "vuln.cve"
KEV_CHECK = "vuln.kev"
VULN_CHECKS = (CVE_CHECK, KEV_CHECK)
ACTIVE = (FindingStatus.open, FindingStatus.reopened, FindingStatus.accepted)
CVE_REMEDIATION = N_(
    "Update this software to a version its vendor lists as fixed (see the references). Until "
    "then, let only the systems that need it reach it, through the firewall or the VPN."
)
KEV_REMEDIATION = N_(
    "Attackers are exploiting this vulnerability now: update this software first, before the "
    "due date CISA set, or take the system off the network until it is updated."
)
MAX_CRITERIA = 10


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


@dataclass(slots=True)
class Planned:
    """A finding that one software set-up calls for, whatever asset runs it."""

    check: str
    vid: int
    subject: str
    port: int | None
    severity: Severity
    software: str
    sources: str
    match: Match
    kev: KevEntry | None
    digest: str


class SetUp:
    """Every finding a software set-up (CPE names with their sources and ports) calls for, and a
    digest of what they are made of: an asset whose stored digest is this one has these
    findings already. The findings themselves are worked out only for assets that need them."""

    __slots__ = ("asset", "found", "records", "kev", "digest", "count", "_findings")

    def __init__(
        self,
        asset: AssetSoftware,
        found: dict[int, Match],
        records: dict[int, Record],
        kev: dict[str, KevEntry],
        digest: str,
        kev_vids: set[int],
    ) -> None:
        self.asset, self.found, self.records, self.kev = asset, found, records, kev
        self.digest = digest
        self.count = len(found) + len(found.keys() & kev_vids)  # a KEV record: two checks
        self._findings: list[Planned] | None = None

    @property
    def findings(self) -> list[Planned]:
        if self._findings is None:
            self._findings = _planned(self.asset, self.found, self.records, self.kev)
        return self._findings


@dataclass(slots=True)
class Wanted:
    """A finding the match calls for on one asset; its evidence is built only when it is new or
    changed."""

    asset_id: int
    address: str
    planned: Planned


def _kev_facts(kev: KevEntry | None) -> str:
    return f"{kev.date_added} {kev.due_date} {kev.ransomware} {kev.name}" if kev else "-"


def _digest(record: Record, match: Match, kev: KevEntry | None, sources: str, port: Any) -> str:
    facts = [
        record.last_modified.isoformat(),
        str(record.score),
        " ".join(match.cpes),
        " ".join(match.criteria[:MAX_CRITERIA]),
        match.platform,
        match.alias,
        sources,
        str(port),
        _kev_facts(kev),
    ]
    return hashlib.sha1("|".join(facts).encode()).hexdigest()[:20]


def _planned(
    asset: AssetSoftware,
    found: dict[int, Match],
    records: dict[int, Record],
    kev: dict[str, KevEntry],
) -> list[Planned]:
    by_name = {s.cpe.text: s for s in asset.software}
    planned: list[Planned] = []
    for vid, match in found.items():
        record = records[vid]
        entry = kev.get(record.cve_id)
        used = [by_name[c] for c in match.cpes if c in by_name]
        port = next((s.port for s in used if s.port), None)
        sources = "+".join(sorted({s.source for s in used})) or "declared"
        software = parse(match.cpes[0]).label()
        digest = _digest(record, match, entry, sources, port)
        checks = [(CVE_CHECK, severity_for(record.score))]
        if entry is not None:
            checks.append((KEV_CHECK, Severity.critical))
        for check, severity in checks:
            planned.append(
                Planned(
                    check,
                    vid,
                    record.cve_id,
                    port,
                    severity,
                    software,
                    sources,
                    match,
                    entry,
                    digest,
                )
            )
    return planned


def _set_digest(
    profile: tuple[Any, ...],
    found: dict[int, Match],
    records: dict[int, Record],
    kev: dict[str, KevEntry],
    facts: dict[int, str],
) -> str:
    """A digest of everything the set-up's findings are made of (what _digest covers for each):
    the set-up, and for each matching record its facts, KEV entry and how it matched."""
    lines = []
    for vid, match in found.items():
        fact = facts.get(vid)
        if fact is None:
            record = records[vid]
            fact = facts[vid] = (
                f"{record.cve_id}|{record.last_modified.isoformat()}|{record.score}"
                f"|{_kev_facts(kev.get(record.cve_id))}"
            )
        lines.append(
            f"{fact}|{' '.join(match.cpes)}|{' '.join(match.criteria[:MAX_CRITERIA])}"
            f"|{match.platform}|{match.alias}"
        )
    lines.sort()
    return hashlib.sha1("\n".join(["v1", repr(profile), *lines]).encode()).hexdigest()


@dataclass
class PlanCache:
    """What plan_findings worked out, kept across the batches of one re-match: set-ups by their
    software (names, sources, ports), each record's part of a set-up digest, and which records
    are in the KEV catalog."""

    set_ups: dict[tuple[Any, ...], SetUp] = field(default_factory=dict)
    facts: dict[int, str] = field(default_factory=dict)
    kev_vids: set[int] | None = None  # the records read that are in the KEV catalog


def plan_findings(
    assets: dict[int, AssetSoftware],
    matches: dict[int, dict[int, Match]],
    records: dict[int, Record],
    kev: dict[str, KevEntry],
    cache: PlanCache,
) -> dict[int, SetUp]:
    """What each asset's findings should be, worked out once per software set-up; an asset
    without a match gets an empty set-up (its findings, if any, are no longer called for)."""
    plans: dict[int, SetUp] = {}
    if cache.kev_vids is None:
        cache.kev_vids = {vid for vid, r in records.items() if r.cve_id in kev}
    for asset_id, asset in assets.items():
        profile = tuple(sorted((s.cpe.text, s.source, s.port or 0) for s in asset.software))
        plan = cache.set_ups.get(profile)
        if plan is None:
            found = matches.get(asset_id) or {}
            digest = _set_digest(profile, found, records, kev, cache.facts)
            plan = SetUp(asset, found, records, kev, digest, cache.kev_vids)
            cache.set_ups[profile] = plan
        plans[asset_id] = plan
    return plans


def wanted_findings(
    assets: dict[int, AssetSoftware], plans: dict[int, SetUp], asset_ids: set[int]
) -> dict[tuple[int, str, str], Wanted]:
    """The findings `asset_ids` should have, by (asset id, check, CVE)."""
    wanted: dict[tuple[int, str, str], Wanted] = {}
    for asset_id in asset_ids:
        address = assets[asset_id].address
        for p in plans[asset_id].findings:
            wanted[(asset_id, p.check, p.subject)] = Wanted(asset_id, address, p)
    return wanted


def _evidence(item: Planned, vuln: Vulnerability) -> dict[str, Any]:
    """Public facts only (the feeds' and the asset's own names), nothing a probed system sent
    beyond the version it announced."""
    match, kev = item.match, item.kev
    evidence: dict[str, Any] = {
        "cve": vuln.cve_id,
        "software": item.software,
        "cpes": match.cpes,
        "criteria": match.criteria[:MAX_CRITERIA],
        "source": item.sources,
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


def _title(item: Planned) -> str:
    """The stored English title (the pages rebuild it in the reader's language)."""
    if item.check == KEV_CHECK and item.kev is not None:
        return (
            f"{item.subject} in {item.software} is being exploited by attackers "
            f"(CISA KEV since {item.kev.date_added.isoformat()})"
        )[:255]
    return f"Known vulnerability {item.subject} in {item.software}"[:255]


def _full_rows(session: Session, items: list[Planned]) -> dict[int, Vulnerability]:
    ids = sorted({item.vid for item in items})
    rows: dict[int, Vulnerability] = {}
    for chunk in chunks(ids):
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


def _scoped(statement: Any, asset_ids: set[int], cves: set[str] | None, by_cve: bool) -> list[Any]:
    """`statement` (on Finding) narrowed to vulnerability findings: of `asset_ids` (of the CVEs
    `cves` only, when given), as several statements for short IN lists. `by_cve` selects by
    CVE alone (ix_finding_check_subject; the caller keeps the rows of `asset_ids`): for a few
    changed CVEs across many assets."""
    statement = statement.where(Finding.check_id.in_(VULN_CHECKS))
    if by_cve and cves is not None:
        return [statement.where(Finding.subject.in_(chunk)) for chunk in chunks(sorted(cves))]
    statements = [
        statement.where(Finding.asset_id.in_(chunk)) for chunk in chunks(sorted(asset_ids))
    ]
    if cves is not None:
        statements = [
            part.where(Finding.subject.in_(chunk))
            for part in statements
            for chunk in chunks(sorted(cves))
        ]
    return statements


def _existing(
    session: Session, asset_ids: set[int], cves: set[str] | None, by_cve: bool
) -> dict[tuple[int, str, str], Any]:
    """The stored vulnerability findings in scope (see _scoped)."""
    columns = (
        Finding.id,
        Finding.asset_id,
        Finding.check_id,
        Finding.subject,
        Finding.status,
        Finding.accepted_until,
        Finding.evidence["digest"].as_string().label("digest"),
    )
    found: dict[tuple[int, str, str], Any] = {}
    connection = session.connection()
    # Read from the driver's cursor (a million rows when everything is matched again), with the
    # one column that needs converting converted where it matters (accepted risks).
    column_type = Finding.__table__.c.accepted_until.type  # type: ignore[attr-defined]
    to_datetime = column_type.dialect_impl(connection.dialect).result_processor(
        connection.dialect, None
    )
    for part in _scoped(select(*columns), asset_ids, cves, by_cve):
        for fid, asset_id, check, subject, status, until, digest in connection.execute(
            part
        ).cursor.fetchall():
            if asset_id not in asset_ids:
                continue
            if until is not None and to_datetime is not None:
                until = to_datetime(until)
            found[(asset_id, check, subject)] = _Stored(fid, status, until, digest)
    return found


@dataclass(slots=True)
class _Stored:
    """A stored vulnerability finding, as much as the re-match compares."""

    id: int
    status: str
    accepted_until: datetime | None
    digest: str | None


def _new_row(item: Wanted, vuln: Vulnerability, now: datetime) -> dict[str, Any]:
    p = item.planned
    return {
        "asset_id": item.asset_id,
        "check_id": p.check,
        "subject": p.subject,
        "address": item.address,
        "port": p.port,
        "severity": p.severity,
        "title": _title(p),
        "remediation": KEV_REMEDIATION if p.check == KEV_CHECK else CVE_REMEDIATION,
        "evidence": _evidence(p, vuln),
        "status": FindingStatus.open,
        "first_seen": now,
        "last_seen": now,
        "accepted_reason": "",
        "accepted_by": "",
    }


def sync_findings(
    session: Session,
    *,
    asset_ids: set[int],
    wanted: dict[tuple[int, str, str], Wanted],
    who: str,
    now: datetime,
    result: RematchResult,
    cves: set[str] | None = None,
    by_cve: bool = False,
) -> set[int]:
    """Bring the vulnerability findings of `asset_ids` (of the CVEs `cves` only, when given) to
    what `wanted` says; `by_cve`: see _scoped. Does not commit. Returns the assets with a
    finding opened, fixed, reopened or rewritten."""
    existing = _existing(session, asset_ids, cves, by_cve)
    touched: set[int] = set()
    events: list[dict[str, Any]] = []
    changed: list[tuple[int, Planned, dict[str, Any]]] = []
    fixed: list[int] = []
    for key, row in existing.items():
        item = wanted.get(key)
        status = FindingStatus(row.status)
        if item is None:
            if status in ACTIVE:
                fixed.append(row.id)
                touched.add(key[0])
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
        if values or row.digest != item.planned.digest:
            changed.append((row.id, item.planned, values))
            touched.add(key[0])
        # A finding still matching is seen again: its asset's match date (save_states) says so.
    for chunk in chunks(fixed):
        session.execute(
            update(Finding)
            .where(Finding.id.in_(chunk))
            .values(status=FindingStatus.fixed, fixed_at=now),
            execution_options={"synchronize_session": False},
        )
    new = [item for key, item in wanted.items() if key not in existing]
    touched.update(item.asset_id for item in new)
    full = _full_rows(session, [item for _, item, _ in changed] + [w.planned for w in new])
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
    for chunk in chunks(new, 2000):
        ids = session.execute(
            insert(Finding).returning(Finding.id),
            [_new_row(w, full[w.planned.vid], now) for w in chunk],
            execution_options={"synchronize_session": False},
        ).scalars()
        events += [_event(fid, who, None, "open", now, "") for fid in ids]
        result.opened += len(chunk)
    for chunk in chunks(events, 5000):
        session.execute(insert(FindingEvent), list(chunk))
    return touched


# --- per-asset match state -------------------------------------------------------------------


def stored_digests(session: Session, asset_ids: Sequence[int]) -> dict[int, str]:
    """The digest of each asset's findings as its last full match left them ("" after a scoped
    re-match changed some of them)."""
    digests: dict[int, str] = {}
    for chunk in chunks(sorted(asset_ids)):
        rows = session.execute(
            select(VulnMatchState.asset_id, VulnMatchState.digest).where(
                VulnMatchState.asset_id.in_(chunk)  # type: ignore[attr-defined]
            )
        )
        digests.update((asset_id, digest) for asset_id, digest in rows)
    return digests


def unchanged_assets(
    session: Session, plans: dict[int, SetUp], stored: dict[int, str], now: datetime
) -> set[int]:
    """The assets whose findings are already what their set-up calls for (same digest as stored),
    short of those with a risk acceptance that has expired (the re-match reopens it)."""
    same = {i for i, plan in plans.items() if stored.get(i) == plan.digest}
    expired: set[int] = set()
    for chunk in chunks(sorted(same)):
        expired.update(
            session.scalars(
                select(Finding.asset_id)
                .where(
                    Finding.status == str(FindingStatus.accepted),  # type: ignore[arg-type]
                    Finding.accepted_until <= now,  # type: ignore[operator]
                    Finding.check_id.in_(VULN_CHECKS),  # type: ignore[attr-defined]
                    Finding.asset_id.in_(chunk),  # type: ignore[attr-defined]
                )
                .distinct()
            )
        )
    return same - expired


def save_states(session: Session, digests: dict[int, str], now: datetime) -> None:
    """Record that these assets were matched at `now`, with the digest of their findings ("" when
    it is not known: a scoped re-match changed some). Does not commit."""
    ids = sorted(digests)
    for chunk in chunks(ids):
        session.execute(
            delete(VulnMatchState).where(VulnMatchState.asset_id.in_(chunk)),  # type: ignore[attr-defined]
            execution_options={"synchronize_session": False},
        )
    for chunk in chunks(ids, 5000):
        session.execute(
            insert(VulnMatchState),
            [{"asset_id": i, "digest": digests[i], "matched_at": now} for i in chunk],
        )


# --- what is shown --------------------------------------------------------------------------


@dataclass
class VulnerabilityFacts:
    """What the finding pages, the API and the CLI show of a record besides the evidence."""

    cve_id: str
    description: str
    references: list[str]
    cvss_score: float | None
    cvss_version: str
    cvss_vector: str
    status: str
    published: datetime | None
    last_modified: datetime


def vulnerability_facts(*, session: Session, cve_ids: list[str]) -> dict[str, VulnerabilityFacts]:
    """The current NVD facts of these CVEs (by id), for findings shown to people or scripts."""
    facts: dict[str, VulnerabilityFacts] = {}
    columns = (
        Vulnerability.cve_id,
        Vulnerability.description,
        Vulnerability.references,
        Vulnerability.cvss_score,
        Vulnerability.cvss_version,
        Vulnerability.cvss_vector,
        Vulnerability.status,
        Vulnerability.published,
        Vulnerability.last_modified,
    )
    for chunk in chunks(sorted(set(cve_ids))):
        for row in session.execute(select(*columns).where(Vulnerability.cve_id.in_(chunk))):
            facts[row[0]] = VulnerabilityFacts(*row)
    return facts


def vulnerability_public(
    evidence: dict[str, Any] | None, facts: VulnerabilityFacts | None
) -> dict[str, Any]:
    """A `vuln.cve` / `vuln.kev` finding's vulnerability as the API and the CLI give it: public
    feed data and the asset's own software names (never anything else a probe saw)."""
    ev = evidence or {}
    kev = None
    if ev.get("kev"):
        kev = {
            "date_added": ev.get("kev_added") or None,
            "due_date": ev.get("kev_due") or None,
            "ransomware": ev.get("kev_ransomware") or None,
            "name": ev.get("kev_name") or None,
        }
    return {
        "cve": ev.get("cve") or (facts.cve_id if facts else None),
        "software": ev.get("software"),
        "cpes": list(ev.get("cpes") or []),
        "source": ev.get("source"),
        "platform": ev.get("platform") or None,
        "vendor_alias": ev.get("vendor_alias") or None,
        "cvss_score": facts.cvss_score if facts else ev.get("cvss_score"),
        "cvss_version": (facts.cvss_version if facts else ev.get("cvss_version")) or None,
        "cvss_vector": (facts.cvss_vector if facts else ev.get("cvss_vector")) or None,
        "description": facts.description if facts else None,
        "references": list(facts.references) if facts else [],
        "nvd_status": facts.status if facts else ev.get("nvd_status"),
        "kev": kev,
    }


def vulnerabilities_of(*, session: Session, findings: list[Finding]) -> dict[int, dict[str, Any]]:
    """vulnerability_public of each vulnerability finding among `findings`, by finding id."""
    vulnerable = [f for f in findings if f.check_id in VULN_CHECKS]
    facts = vulnerability_facts(session=session, cve_ids=[f.subject for f in vulnerable])
    return {
        f.id: vulnerability_public(f.evidence, facts.get(f.subject))  # type: ignore[misc]
        for f in vulnerable
    }
