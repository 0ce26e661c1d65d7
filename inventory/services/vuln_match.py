"""Re-matching assets against the stored vulnerability records.

Matching reads, for the (vendor, product) pairs the assets run, only their vulnerable criteria
(the indexed `vuln_cpe_match` table) and finds, for each CPE name an asset runs, the records with
a criterion for it. Matched against every record, the database returns only the criteria some
asset's version can meet (`version_sort`: ranges not ending before the oldest version run,
exact versions run). Most records (a single OR node: `Vulnerability.needs_full_check` false)
apply exactly when such a criterion matches, so the index answers for them; so too for a record
whose hit criteria are all in single-node ORs (`in_complex` false). Only the others have the
configurations about the products hit read and evaluated in full (inventory.vulns.matching).
Assets with the same software (one workstation image, one modality model) share the answer. What
the matches mean for findings is inventory.services.vuln_findings.

The software of an asset is its declared CPE names plus the detected candidates that a user
confirmed or whose confidence reaches the configured threshold (never the rejected ones). The
candidates follow the audits (refresh_candidates, called when an audit is recorded).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session

from inventory.models import (
    Asset,
    AssetAddress,
    CandidateStatus,
    KevEntry,
    ObservedService,
    SoftwareCandidate,
    VulnCpeMatch,
    Vulnerability,
)
from inventory.vulns import detect
from inventory.vulns.cpe import Cpe, CpeError, aliases_of, parse, unescape
from inventory.vulns.index import EXACT, RANGE_END, Configurations, Hits, ProductIndex
from inventory.vulns.matching import Match, applies
from inventory.vulns.versions import sort_text

__all__ = [
    "AssetSoftware",
    "Record",
    "RematchResult",
    "Software",
    "VulnOptions",
    "chunks",
    "find_matches",
    "kev_entries",
    "load_assets",
    "refresh_candidates",
]


@dataclass(frozen=True)
class VulnOptions:
    """[vulns] settings that matching needs: the confidence from which a detected candidate is
    used without a confirmation, and whether vendor aliases (inventory.vulns.cpe.VENDOR_ALIASES)
    are tried."""

    auto_confirm_confidence: float = 0.9
    vendor_aliases: bool = True


@dataclass
class RematchResult:
    assets: int = 0
    opened: int = 0
    reopened: int = 0
    fixed: int = 0
    still: int = 0


@dataclass
class Software:
    """One CPE name an asset runs, and where Vigie knows it from."""

    cpe: Cpe
    source: str  # "declared" or "detected"
    port: int | None = None


@dataclass
class AssetSoftware:
    id: int
    address: str = ""
    software: list[Software] = field(default_factory=list)


@dataclass
class Record:
    """What a record's findings are built from, short of its text."""

    cve_id: str
    last_modified: datetime
    score: float | None
    full: bool  # needs_full_check
    configurations: Configurations | None = None  # read only when `full`


def chunks(items: Sequence[Any], size: int = 900) -> Iterable[Sequence[Any]]:
    """Slices small enough for an IN (...) list on every database."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- detected software ----------------------------------------------------------------------


def refresh_candidates(session: Session, asset_ids: Sequence[int], now: datetime) -> None:
    """Candidates follow what the last audits saw: new sightings are added, gone ones removed.

    A new version of a product inherits the decision taken on the previous one (an Orthanc the
    user confirmed stays confirmed after an upgrade), so a decision is asked for only once.
    Flushes, does not commit.
    """
    observed: dict[int, list[ObservedService]] = defaultdict(list)
    stored: dict[int, list[SoftwareCandidate]] = defaultdict(list)
    for chunk in chunks(asset_ids):
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


# --- what the assets run --------------------------------------------------------------------


def load_assets(
    session: Session, asset_ids: Sequence[int] | None, options: VulnOptions
) -> dict[int, AssetSoftware]:
    statement = select(Asset.id, Asset.software).where(Asset.archived_at.is_(None))
    rows: list[Any] = []
    if asset_ids is None:
        rows = list(session.execute(statement))
    else:
        for chunk in chunks(sorted(set(asset_ids))):
            rows += list(session.execute(statement.where(Asset.id.in_(chunk))))
    assets = {asset_id: AssetSoftware(asset_id) for asset_id, _ in rows}
    for asset_id, software in rows:
        for name in software or []:
            try:
                assets[asset_id].software.append(Software(parse(name), "declared"))
            except CpeError:
                continue  # validated on the way in; an old or hand-edited row is skipped
    ids = list(assets)
    # The first address of each asset (position 0), for the finding's "where".
    address_query = select(AssetAddress.asset_id, AssetAddress.address).where(
        AssetAddress.position == 0
    )
    used = or_(
        SoftwareCandidate.status == CandidateStatus.confirmed,
        (SoftwareCandidate.status == CandidateStatus.pending)
        & (SoftwareCandidate.confidence >= options.auto_confirm_confidence),
    )
    candidate_query = select(
        SoftwareCandidate.asset_id, SoftwareCandidate.cpe, SoftwareCandidate.port
    ).where(used)
    for statement, wanted in ((address_query, "address"), (candidate_query, "candidate")):
        column = AssetAddress.asset_id if wanted == "address" else SoftwareCandidate.asset_id
        parts = (
            [statement]
            if asset_ids is None
            else [statement.where(column.in_(chunk)) for chunk in chunks(ids)]
        )
        for part in parts:
            for row in session.execute(part):
                asset = assets.get(row[0])
                if asset is None:
                    continue  # archived
                if wanted == "address":
                    asset.address = str(row[1])
                elif all(s.cpe.text != row[1] for s in asset.software):
                    try:
                        asset.software.append(Software(parse(row[1]), "detected", row[2]))
                    except CpeError:
                        continue
    return assets


# --- the criteria index ---------------------------------------------------------------------


def _criteria_index(
    session: Session, versions: dict[tuple[str, str], set[str]], cves: set[str] | None = None
) -> tuple[dict[tuple[str, str], ProductIndex], set[tuple[int, str]]]:
    """The vulnerable criteria of these (vendor, product) pairs (with the versions the assets
    run of each), from the indexed table; only those of the records `cves` when given. And, as
    (vulnerability id, criteria), those listed in a configuration that needs a full evaluation.

    Matched against every record, the database leaves out what ProductIndex would drop anyway
    (`version_sort`): ranges that end below the oldest version the assets run of the product,
    exact versions none of them runs. A popular product has thousands of old criteria."""
    keys = set(versions)
    index = {key: ProductIndex(found) for key, found in versions.items()}
    complex_hits: set[tuple[int, str]] = set()
    connection = session.connection()
    rows: list[Any] = []
    if cves is None:
        # Plain SQL straight to the driver: building and compiling these statements through
        # SQLAlchemy (thousands of conditions) cost as much as the database's own work.
        cuts = {key: _version_cut(found) for key, found in versions.items()}
        if connection.dialect.name == "postgresql":
            rows = _criteria_rows_postgresql(connection, cuts)
        else:
            rows = _criteria_rows_sqlite(connection, cuts)
    else:
        columns = (
            VulnCpeMatch.vendor,
            VulnCpeMatch.product,
            VulnCpeMatch.vulnerability_id,
            VulnCpeMatch.criteria,
            VulnCpeMatch.version_start,
            VulnCpeMatch.start_including,
            VulnCpeMatch.version_end,
            VulnCpeMatch.end_including,
            VulnCpeMatch.in_complex,
        )
        for chunk in chunks(sorted(cves)):
            statement = (
                select(*columns)
                .join(Vulnerability, Vulnerability.id == VulnCpeMatch.vulnerability_id)
                .where(VulnCpeMatch.vulnerable.is_(True), Vulnerability.cve_id.in_(chunk))
            )
            # The driver's rows: nothing for SQLAlchemy to convert (SQLite's 0/1 booleans
            # are as good here).
            rows += connection.execute(statement).cursor.fetchall()
    for vendor, product, vid, criteria, start, start_inc, end, end_inc, in_complex in rows:
        if (vendor, product) in keys:
            index[(vendor, product)].add(vid, criteria, (start, start_inc, end, end_inc))
            if in_complex:
                complex_hits.add((vid, criteria))
    return index, complex_hits


_INDEX_COLUMNS = (
    "m.vendor, m.product, m.vulnerability_id, m.criteria, m.version_start, m.start_including, "
    "m.version_end, m.end_including, m.in_complex"
)
Cut = list[str] | None  # an asset product's versions as sort texts, oldest first; None: all
_AFTER_RANGE_ENDS = chr(ord(RANGE_END) + 1)  # every "r..." text sorts before it


def _version_cut(versions: set[str]) -> Cut:
    """The sort texts (versions.sort_text) of the versions the assets run of one product, for
    the database to cut its criteria with; None when one cannot be written so (every criterion
    of the product is then read, as before there was a cut; so too for thousands of versions)."""
    texts = {sort_text(unescape(v)) for v in versions if v not in {"*", "-"}}
    if None in texts or len(texts) > 5000:  # (a statement's parameters have a limit)
        return None
    return sorted(t for t in texts if t is not None)


def _criteria_rows_sqlite(connection: Any, cuts: dict[tuple[str, str], Cut]) -> list[Any]:
    """Up to three conditions per product, OR-ed, about a hundred products a statement (within
    SQLite's 32,766 parameters): the criteria for every version, the ranges not ending before
    the oldest version, the exact versions run. Each is a seek in ix_vuln_cpe_match_product, so
    only what is returned is read."""
    rows: list[Any] = []
    same = "(m.vendor = ? AND m.product = ? AND m.vulnerable = 1"
    conditions: list[str] = []
    params: list[Any] = []
    for number, key in enumerate(sorted(cuts), 1):
        cut = cuts[key]
        if cut is None:  # a version the database cannot compare: every criterion
            conditions.append(f"{same})")
            params += key
        else:
            conditions.append(f"{same} AND m.version_sort IS NULL)")
            params += key
        if cut:
            conditions.append(f"{same} AND m.version_sort >= ? AND m.version_sort < ?)")
            params += [*key, RANGE_END + cut[0], _AFTER_RANGE_ENDS]
            conditions.append(f"{same} AND m.version_sort IN ({', '.join('?' * len(cut))}))")
            params += [*key, *(EXACT + text for text in cut)]
        if number == len(cuts) or len(conditions) >= 300 or len(params) > 30_000:
            where = " OR ".join(conditions)
            sql = f"SELECT {_INDEX_COLUMNS} FROM vuln_cpe_match AS m WHERE {where}"
            rows += connection.exec_driver_sql(sql, tuple(params)).cursor.fetchall()
            conditions, params = [], []
    return rows


def _lowest(cut: Cut) -> str | None:
    return RANGE_END + cut[0] if cut else None


def _criteria_rows_postgresql(connection: Any, cuts: dict[tuple[str, str], Cut]) -> list[Any]:
    """Every product at once, joined from arrays, in parts as for SQLite, each an index seek
    (a long OR, or an OR in the join, is checked on every row of the product there). The texts
    compare in the "C" collation of the column."""
    keys = sorted(cuts)
    every = [key for key in keys if cuts[key] is None]
    cut = [key for key in keys if cuts[key] is not None]
    ranged = [key for key in keys if cuts[key]]
    exact = [(key, EXACT + text) for key in keys for text in cuts[key] or ()]

    def part(names: str, condition: str) -> str:
        arrays = ", ".join(["%s::text[]"] * len(names.split(", ")))
        return (
            f"SELECT {_INDEX_COLUMNS} FROM unnest({arrays}) AS w({names}) "
            "JOIN vuln_cpe_match AS m ON m.vendor = w.vendor AND m.product = w.product "
            f"AND m.vulnerable{condition}"
        )

    sql = " UNION ALL ".join(
        [
            part("vendor, product", ""),
            part("vendor, product", " AND m.version_sort IS NULL"),
            part(
                "vendor, product, sort",
                ' AND m.version_sort >= w.sort COLLATE "C" AND m.version_sort < %s',
            ),
            part("vendor, product, sort", " AND m.version_sort = w.sort"),
        ]
    )
    params = (
        [vendor for vendor, _ in every],
        [product for _, product in every],
        [vendor for vendor, _ in cut],
        [product for _, product in cut],
        [vendor for vendor, _ in ranged],
        [product for _, product in ranged],
        [_lowest(cuts[key]) for key in ranged],
        _AFTER_RANGE_ENDS,
        [vendor for (vendor, _), _ in exact],
        [product for (_, product), _ in exact],
        [text for _, text in exact],
    )
    return list(connection.exec_driver_sql(sql, params).cursor.fetchall())


def _variants(cpe: Cpe, aliases: bool) -> list[tuple[Cpe, str]]:
    """The name itself, then under each other vendor name NVD uses for the product."""
    names = [(cpe, "")]
    if aliases:
        names += [(cpe.with_vendor(v), v) for v in aliases_of(cpe.vendor, cpe.product)]
    return names


# --- matching -------------------------------------------------------------------------------


@dataclass
class _NameHits:
    """One asset CPE name's hits: strict, and through each vendor alias."""

    strict: Hits
    aliased: list[tuple[str, Hits]]

    def records(self) -> set[int]:
        found = set(self.strict)
        for _, hits in self.aliased:
            found |= set(hits)
        return found


def _simple_match(vid: int, names: list[Cpe], hits: dict[str, _NameHits]) -> Match | None:
    """A single-node OR record applies exactly when a vulnerable criterion matched; strict names
    first, an alias only when no strict name matched (as matching.applies does)."""
    match = Match()
    criteria: set[str] = set()
    for name in names:
        found = hits[name.text].strict.get(vid)
        if found:
            match.cpes.append(name.text)
            criteria.update(found)
    if not match.cpes:
        for name in names:
            for vendor, aliased in hits[name.text].aliased:
                found = aliased.get(vid)
                if found:
                    match.cpes, match.alias = [name.text], vendor
                    criteria.update(found)
                    break
            if match.cpes:
                break
    if not match.cpes:
        return None
    match.criteria = sorted(criteria)
    return match


def _hit_keys(
    vid: int, names: list[Cpe], hits: dict[str, _NameHits], complex_hits: set[tuple[int, str]]
) -> tuple[set[tuple[str, str]], bool]:
    """The (vendor, product) under which the names hit a vulnerable criterion of `vid`
    (strict or through a vendor alias), and whether one of the criteria hit is listed in a
    configuration that needs a full evaluation."""
    keys = set()
    in_complex = False
    for name in names:
        found = hits[name.text]
        for vendor, by_vid in [("", found.strict), *found.aliased]:
            criteria = by_vid.get(vid)
            if criteria:
                keys.add((vendor or name.vendor, name.product))
                in_complex = in_complex or any((vid, c) in complex_hits for c in criteria)
    return keys, in_complex


def _load_records(session: Session, needed: list[int]) -> dict[int, Record]:
    records: dict[int, Record] = {}
    columns = (
        Vulnerability.id,
        Vulnerability.cve_id,
        Vulnerability.last_modified,
        Vulnerability.cvss_score,
        Vulnerability.needs_full_check,
    )
    for chunk in chunks(needed):
        for vid, cve, modified, score, full in session.execute(
            select(*columns).where(Vulnerability.id.in_(chunk))
        ):
            records[vid] = Record(cve, modified, score, bool(full))
    complex_ids = sorted(vid for vid, r in records.items() if r.full)
    texts: dict[int, list[str]] = defaultdict(list)
    connection = session.connection()
    # Each configuration as its own JSON text, split out by the database (Configurations
    # parses only those about the assets' products).
    if connection.dialect.name == "postgresql":
        sql = (
            "SELECT v.id, c.value::text FROM vulnerability AS v, "
            "json_array_elements(v.configurations) WITH ORDINALITY AS c(value, number) "
            "WHERE v.id IN ({}) ORDER BY v.id, c.number"
        )
        mark = "%s"
    else:
        sql = (
            "SELECT v.id, c.value FROM vulnerability AS v, json_each(v.configurations) AS c "
            "WHERE v.id IN ({}) ORDER BY v.id, c.key"
        )
        mark = "?"
    for chunk in chunks(complex_ids):
        query = sql.format(", ".join([mark] * len(chunk)))
        for vid, text in connection.exec_driver_sql(query, tuple(chunk)).cursor.fetchall():
            texts[vid].append(text)
    for vid in complex_ids:
        records[vid].configurations = Configurations(texts.get(vid, ()))
    return records


def find_matches(
    session: Session,
    assets: dict[int, AssetSoftware],
    options: VulnOptions,
    cves: set[str] | None = None,
) -> tuple[dict[int, dict[int, Match]], dict[int, Record]]:
    """For each asset, the records that apply to it ({vulnerability id: Match}); only among the
    records `cves` when given (what a feed import changed)."""
    versions: dict[tuple[str, str], set[str]] = defaultdict(set)
    for asset in assets.values():
        for s in asset.software:
            for variant, _ in _variants(s.cpe, options.vendor_aliases):
                versions[variant.key].add(variant.version)
    index, complex_hits = _criteria_index(session, versions, cves) if versions else ({}, set())
    hits: dict[str, _NameHits] = {}  # asset CPE name -> records with a vulnerable hit
    per_profile: dict[tuple[str, ...], set[int]] = {}
    profiles: dict[int, tuple[str, ...]] = {}
    for asset in assets.values():
        profile = tuple(sorted({s.cpe.text for s in asset.software}))
        profiles[asset.id] = profile
        if profile in per_profile:
            continue
        wanted: set[int] = set()
        for s in asset.software:
            name = s.cpe.text
            if name not in hits:
                strict: Hits = {}
                aliased: list[tuple[str, Hits]] = []
                for variant, vendor in _variants(s.cpe, options.vendor_aliases):
                    found = index[variant.key].hits(variant) if variant.key in index else {}
                    if not vendor:
                        strict = found
                    elif found:
                        aliased.append((vendor, found))
                hits[name] = _NameHits(strict, aliased)
            wanted |= hits[name].records()
        per_profile[profile] = wanted
    needed = sorted(set().union(*per_profile.values())) if per_profile else []
    records = _load_records(session, needed)
    answers: dict[tuple[str, ...], dict[int, Match]] = {}
    for profile, wanted in per_profile.items():
        names = [parse(text) for text in profile]
        applying: dict[int, Match] = {}
        for vid in wanted:
            record = records.get(vid)
            if record is None:
                continue  # deleted meanwhile
            keys, in_complex = (
                _hit_keys(vid, names, hits, complex_hits) if record.full else ((), False)
            )
            if in_complex and record.configurations:
                # Only the configurations about a product that one of the names hit can apply
                # (each needs a vulnerable criterion that matches). A record whose hits are all
                # in single-node ORs applies because of them: the other configurations, with
                # no hit, cannot apply; the simple match below says the same.
                relevant = record.configurations.about(keys)
                match = applies(relevant, names, aliases=options.vendor_aliases)
            else:
                match = _simple_match(vid, names, hits)
            if match is not None:
                applying[vid] = match
        answers[profile] = applying
    result = {
        asset_id: answers[profile] for asset_id, profile in profiles.items() if answers[profile]
    }
    return result, records


def kev_entries(session: Session, cve_ids: Iterable[str]) -> dict[str, KevEntry]:
    """The KEV entries of these CVEs (the whole catalog, a couple of thousand rows, is read at
    once when they are many)."""
    entries: dict[str, KevEntry] = {}
    wanted = set(cve_ids)
    if len(wanted) > 5000:
        return {e.cve_id: e for e in session.scalars(select(KevEntry)) if e.cve_id in wanted}
    for chunk in chunks(sorted(wanted)):
        entries.update(
            (e.cve_id, e)
            for e in session.scalars(select(KevEntry).where(KevEntry.cve_id.in_(chunk)))
        )
    return entries
