"""Importing feed files (NVD API 2.0 CVE records, CISA KEV catalog) into the database.

All the files of one import are written in one transaction: a file that is not JSON, not a
feed, cut short, or with one bad record anywhere leaves the database as it was. Records are read
as a stream and written in batches, so a 300,000-record NVD file never sits in memory whole.

Re-importing updates in place: an NVD record replaces the stored one only when its
`lastModified` is newer (an older file never undoes a newer one); a KEV catalog replaces the
stored catalog unless it is older than the one imported last.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from inventory.i18n import N_
from inventory.models import (
    FeedImport,
    FeedKind,
    KevEntry,
    VulnCpeMatch,
    Vulnerability,
    VulnProduct,
)
from inventory.models.types import utcnow
from inventory.vulns.feeds import FeedError, FeedHeader, open_feed
from inventory.vulns.index import version_sort
from inventory.vulns.kev import KevRecord, read_kev
from inventory.vulns.matching import Configuration, needs_full_check
from inventory.vulns.nvd import CveRecord, RecordError, read_cve

__all__ = ["FeedError", "ImportResult", "import_files"]

BATCH = 2000
MAX_KEV_ENTRIES = 100_000  # CISA's catalog holds about 1,500; it is read whole
_VULNERABILITY = Vulnerability.__table__  # type: ignore[attr-defined]


@dataclass
class ImportResult:
    """What one file did: its feed, its own date, and how many records were new or changed."""

    filename: str
    feed: str
    feed_date: datetime | None
    records: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    older: bool = False  # a KEV catalog older than the one already imported: nothing changed
    # What changed, for re-matching only that: CVE ids of new or updated NVD records, of KEV
    # entries added, changed or removed.
    changed: set[str] = field(default_factory=set)


def _batches(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _checked(items: Iterator[Any], reader: Any, name: str) -> Iterator[Any]:
    for number, item in enumerate(items, 1):
        try:
            yield reader(item)
        except RecordError as exc:
            cve = ""
            if isinstance(item, dict):
                inner = item.get("cve")
                cve = str(
                    (inner or {}).get("id", "")
                    if isinstance(inner, dict)
                    else item.get("cveID", "")
                )
            raise FeedError(
                N_("%(file)s, record %(number)d %(cve)s: %(detail)s; nothing was imported."),
                file=name,
                number=number,
                cve=f"({cve[:40]})" if cve else "",
                detail=str(exc),
            ) from None


# --- NVD ------------------------------------------------------------------------------------


def _vuln_row(record: CveRecord) -> dict[str, Any]:
    return {
        "cve_id": record.cve_id,
        "published": record.published,
        "last_modified": record.last_modified,
        "status": record.status,
        "description": record.description,
        "cvss_version": record.cvss_version,
        "cvss_score": record.cvss_score,
        "cvss_vector": record.cvss_vector,
        "cvss_severity": record.cvss_severity,
        "references": record.references,
        "configurations": record.configurations,
        "cisa_exploit_add": record.cisa_exploit_add,
        "needs_full_check": needs_full_check(record.parsed),
    }


MATCH_COLUMNS = (
    "vulnerability_id",
    "part",
    "vendor",
    "product",
    "criteria",
    "vulnerable",
    "version_start",
    "start_including",
    "version_end",
    "end_including",
    "version_sort",
    "in_complex",
)


def match_rows(vuln_id: int, configurations: Sequence[Configuration]) -> list[tuple[Any, ...]]:
    """A record's criteria as `vuln_cpe_match` rows (tuples in MATCH_COLUMNS order); a
    criterion listed in several configurations is one row, `in_complex` when one of them is.
    (Migration 0008 fills `in_complex` for older rows with it too.)"""
    rows: list[list[Any]] = []
    seen: dict[tuple[Any, ...], list[Any]] = {}
    for conf in configurations:
        in_complex = not conf.simple
        for node in conf.nodes:
            for c in node.criteria:
                key = (c.criteria, c.vulnerable, c.start, c.start_including, c.end, c.end_including)
                row = seen.get(key)
                if row is not None:
                    row[-1] = row[-1] or in_complex
                    continue
                cpe = c.cpe
                criteria, start, end = c.criteria[:512], c.start, c.end
                if start is not None:
                    start = start[:64]
                if end is not None:
                    end = end[:64]
                row = seen[key] = [
                    vuln_id,
                    cpe.part[:1],
                    cpe.vendor[:128],
                    cpe.product[:128],
                    criteria,
                    c.vulnerable,
                    start,
                    c.start_including,
                    end,
                    c.end_including,
                    version_sort(criteria, start, end) if c.vulnerable else None,
                    in_complex,
                ]
                rows.append(row)
    return [tuple(row) for row in rows]


def _insert_matches(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """One executemany straight to the driver: millions of plain values, nothing for SQLAlchemy
    to convert (its per-row processing cost more than the database's work)."""
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    columns = ", ".join(MATCH_COLUMNS)
    values = ", ".join([mark] * len(MATCH_COLUMNS))
    connection.exec_driver_sql(f"INSERT INTO vuln_cpe_match ({columns}) VALUES ({values})", rows)


def _import_nvd(session: Session, records: Iterator[CveRecord], result: ImportResult) -> None:
    for batch in _batches(records, BATCH):
        latest: dict[str, CveRecord] = {}
        for record in batch:  # the same CVE twice in a file: the newer copy counts
            result.records += 1
            kept = latest.get(record.cve_id)
            if kept is None or record.last_modified > kept.last_modified:
                latest[record.cve_id] = record
            else:
                result.unchanged += 1
        stored = {
            cve: (vid, modified)
            for vid, cve, modified in session.execute(
                select(Vulnerability.id, Vulnerability.cve_id, Vulnerability.last_modified).where(
                    Vulnerability.cve_id.in_(list(latest))
                )
            )
        }
        new = [r for cve, r in latest.items() if cve not in stored]
        changed = [
            r for cve, r in latest.items() if cve in stored and r.last_modified > stored[cve][1]
        ]
        result.unchanged += len(latest) - len(new) - len(changed)
        matches: list[tuple[Any, ...]] = []
        if new:
            # Core statements: a plain executemany (the ORM's bulk insert fetches keys back in
            # small batches, which costs more than the insert itself at this size).
            session.execute(_VULNERABILITY.insert(), [_vuln_row(r) for r in new])
            ids: dict[str, int] = {
                cve: vid
                for cve, vid in session.execute(
                    select(Vulnerability.cve_id, Vulnerability.id).where(
                        Vulnerability.cve_id.in_([r.cve_id for r in new])
                    )
                )
            }
            for record in new:
                matches += match_rows(ids[record.cve_id], record.parsed)
            result.created += len(new)
            result.changed.update(r.cve_id for r in new)
        if changed:
            session.execute(
                update(Vulnerability),
                [{"id": stored[r.cve_id][0], **_vuln_row(r)} for r in changed],
            )
            ids_changed = [stored[r.cve_id][0] for r in changed]
            session.execute(
                delete(VulnCpeMatch).where(VulnCpeMatch.vulnerability_id.in_(ids_changed))
            )
            for record in changed:
                matches += match_rows(stored[record.cve_id][0], record.parsed)
            result.updated += len(changed)
            result.changed.update(r.cve_id for r in changed)
        if matches:
            _insert_matches(session, matches)


def _refresh_products(session: Session) -> None:
    """The search list of vendor and product names, rebuilt from the criteria."""
    session.execute(delete(VulnProduct))
    records = func.count(
        func.distinct(case((VulnCpeMatch.vulnerable, VulnCpeMatch.vulnerability_id), else_=None))
    )
    session.execute(
        insert(VulnProduct).from_select(
            ["part", "vendor", "product", "records"],
            select(VulnCpeMatch.part, VulnCpeMatch.vendor, VulnCpeMatch.product, records).group_by(
                VulnCpeMatch.part, VulnCpeMatch.vendor, VulnCpeMatch.product
            ),
        )
    )


# --- KEV ------------------------------------------------------------------------------------


def _kev_row(record: KevRecord) -> dict[str, Any]:
    return {
        "cve_id": record.cve_id,
        "vendor_project": record.vendor_project,
        "product": record.product,
        "name": record.name,
        "date_added": record.date_added,
        "due_date": record.due_date,
        "ransomware": record.ransomware,
        "required_action": record.required_action,
        "short_description": record.short_description,
    }


def _import_kev(
    session: Session, header: FeedHeader, records: Iterator[KevRecord], result: ImportResult
) -> None:
    incoming = {}
    for record in records:  # the catalog is small (about 1,500 entries): read it whole
        result.records += 1
        if result.records > MAX_KEV_ENTRIES:
            raise FeedError(
                N_(
                    "%(file)s has more than %(max)d entries, far more than CISA's catalog; "
                    "nothing was imported."
                ),
                file=result.filename,
                max=MAX_KEV_ENTRIES,
            )
        incoming[record.cve_id] = _kev_row(record)
    last = session.scalars(
        select(FeedImport.feed_date)
        .where(FeedImport.feed == FeedKind.kev, FeedImport.feed_date.is_not(None))
        .order_by(FeedImport.feed_date.desc())
        .limit(1)
    ).first()
    if header.timestamp and last and header.timestamp < last:
        result.older = True
        result.unchanged = result.records
        return
    stored = {row.cve_id: row for row in session.scalars(select(KevEntry))}
    fields = list(next(iter(incoming.values()), {}))
    new = [row for cve, row in incoming.items() if cve not in stored]
    changed = [
        {"id": stored[cve].id, **row}
        for cve, row in incoming.items()
        if cve in stored and any(getattr(stored[cve], f) != row[f] for f in fields)
    ]
    gone = [row.id for cve, row in stored.items() if cve not in incoming]
    if new:
        session.execute(insert(KevEntry), new)
    if changed:
        session.execute(update(KevEntry), changed)
    if gone:  # CISA removed them from the catalog
        session.execute(delete(KevEntry).where(KevEntry.id.in_(gone)))
    result.created, result.updated = len(new), len(changed)
    result.changed = {row["cve_id"] for row in new} | {row["cve_id"] for row in changed}
    result.changed |= {cve for cve in stored if cve not in incoming}
    result.unchanged = len(incoming) - len(new) - len(changed)


# --- entry point ----------------------------------------------------------------------------


def import_files(
    *,
    session: Session,
    files: Sequence[tuple[Path, str]],
    actor: str,
    source: str = "file",
) -> list[ImportResult]:
    """Import feed files, given as (path, name shown in messages), all or nothing.

    Raises FeedError (an InvalidInput) naming the file and record when any of them is bad.
    """
    results: list[ImportResult] = []
    try:
        nvd_changed = False
        for path, name in files:
            started = utcnow()
            header, items = open_feed(path, name)
            result = ImportResult(filename=name, feed=header.kind, feed_date=header.timestamp)
            if header.kind == "nvd":
                _import_nvd(session, _checked(items, read_cve, name), result)
                nvd_changed = nvd_changed or bool(result.created or result.updated)
            else:
                _import_kev(session, header, _checked(items, read_kev, name), result)
            session.add(
                FeedImport(
                    feed=FeedKind(header.kind),
                    source=source[:8],
                    filename=name[:255],
                    actor=actor[:64],
                    started_at=started,
                    finished_at=utcnow(),
                    feed_date=header.timestamp,
                    feed_version=header.version,
                    records=result.records,
                    created=result.created,
                    updated=result.updated,
                    unchanged=result.unchanged,
                )
            )
            results.append(result)
        if nvd_changed:
            _refresh_products(session)
        session.commit()
    except (IntegrityError, OperationalError) as exc:
        session.rollback()
        if isinstance(exc, OperationalError) and "locked" not in str(exc).lower():
            raise
        # Another import wrote the same records first (PostgreSQL), or held the database
        # longer than the lock timeout (SQLite).
        raise FeedError(
            N_(
                "Another import ran at the same time; nothing was imported. Import the files "
                "again once it is done."
            )
        ) from None
    except Exception:
        session.rollback()
        raise
    return results


def feed_counts(*, session: Session) -> dict[str, int]:
    """How many records each feed has in the database now."""
    return {
        "nvd": session.scalar(select(func.count()).select_from(Vulnerability)) or 0,
        "kev": session.scalar(select(func.count()).select_from(KevEntry)) or 0,
    }
