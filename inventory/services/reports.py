"""Re-audit reports: generate one (a dated, immutable snapshot compared with the previous report
of the same schedule), list and read past ones, and render them in any format.

The queries live here; the content is assembled by inventory.reports.data (pure) and drawn by the
renderers. Schedules are in report_schedules.py, deliveries in report_deliveries.py.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlmodel import Session

from inventory.errors import InvalidInput, NotFound
from inventory.i18n import N_
from inventory.models import (
    Asset,
    AssetAddress,
    AssetKind,
    AssetSchedule,
    AssetTag,
    Finding,
    FindingStatus,
    Report,
    ReportSchedule,
    ReportScope,
    ReportSnapshot,
)
from inventory.models.types import valid_id
from inventory.reports import data
from inventory.scheduler.windows import resolve_timezone
from inventory.services.findings import FIX_FIRST_ORDER, expire_acceptances, last_seen_column
from inventory.services.schedule import interval_expression
from inventory.settings import Settings

FORMATS = ("html", "pdf", "csv", "json")
MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}
DEFAULT_TITLE = N_("Re-audit report")


@dataclass(frozen=True)
class Scope:
    type: str = "all"
    value: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"type": self.type, "value": self.value}


def parse_scope(text: str) -> Scope:
    """`all`, or `site:NAME`, `zone:NAME`, `kind:KIND`, `tag:TAG` (config files and the CLI)."""
    from inventory.services.report_schedules import validate_scope

    kind, _, value = (text or "all").partition(":")
    return validate_scope(kind.strip().lower(), value)


def _scope_condition(scope: Scope) -> Any:
    """Live assets of the scope, as a condition on Asset."""
    condition = Asset.archived_at.is_(None)
    if scope.type in {"site", "zone"}:
        column = getattr(Asset, scope.type)
        return and_(condition, func.lower(func.trim(column)) == scope.value.strip().lower())
    if scope.type == "kind":
        return and_(condition, Asset.kind == scope.value)
    if scope.type == "tag":
        tagged = select(AssetTag.asset_id).where(AssetTag.tag == scope.value.lower())
        return and_(condition, Asset.id.in_(tagged))
    return condition


# --- reading what the report is about ---------------------------------------------------------


def _assets(session: Session, scope: Scope, settings: Settings) -> list[dict[str, Any]]:
    condition = _scope_condition(scope)
    addresses: dict[int, list[str]] = defaultdict(list)
    for asset_id, address in session.execute(
        select(AssetAddress.asset_id, AssetAddress.address)
        .join(Asset, Asset.id == AssetAddress.asset_id)
        .where(condition)
        .order_by(AssetAddress.asset_id, AssetAddress.position)
    ):
        addresses[asset_id].append(str(address))
    tags: dict[int, list[str]] = defaultdict(list)
    for asset_id, tag in session.execute(
        select(AssetTag.asset_id, AssetTag.tag)
        .join(Asset, Asset.id == AssetTag.asset_id)
        .where(condition)
        .order_by(AssetTag.asset_id, AssetTag.tag)
    ):
        tags[asset_id].append(tag)
    interval = interval_expression(settings.assets)
    rows = session.execute(
        select(
            Asset.id,
            Asset.name,
            Asset.kind,
            Asset.site,
            Asset.zone,
            Asset.owner,
            Asset.criticality,
            Asset.holds_patient_data,
            Asset.exposure,
            Asset.created_at,
            interval,
            AssetSchedule.last_success_at,
            AssetSchedule.last_audit_at,
            AssetSchedule.last_outcome,
            AssetSchedule.created_at,
        )
        .outerjoin(AssetSchedule, AssetSchedule.asset_id == Asset.id)
        .where(condition)
        .order_by(Asset.name_key, Asset.id)
    )
    return [
        {
            "id": r[0],
            "name": r[1],
            "kind": str(r[2]),
            "site": r[3],
            "zone": r[4],
            "owner": r[5],
            "criticality": str(r[6]),
            "patient_data": bool(r[7]),
            "exposure": str(r[8]),
            "created_at": data.iso(r[9]),
            "interval": int(r[10]),
            "last_success_at": data.iso(r[11]),
            "last_audit_at": data.iso(r[12]),
            "last_outcome": r[13] or "",
            "scheduled_at": data.iso(r[14] or r[9]),
            "addresses": addresses.get(r[0], []),
            "tags": tags.get(r[0], []),
        }
        for r in rows
    ]


def _findings(session: Session, scope: Scope, fixed_since: datetime | None) -> list[dict[str, Any]]:
    """Findings of the scope's assets that are still there, and those fixed since the baseline,
    in "fix this first" order."""
    status: Any = Finding.status != str(FindingStatus.fixed)
    if fixed_since is not None:
        status = or_(status, Finding.fixed_at > fixed_since)  # type: ignore[operator]
    rows = session.execute(
        select(
            Finding.id,
            Finding.asset_id,
            Finding.check_id,
            Finding.subject,
            Finding.address,
            Finding.port,
            Finding.severity,
            Finding.status,
            Finding.title,
            Finding.remediation,
            Finding.evidence,
            Finding.first_seen,
            last_seen_column(),
            Finding.fixed_at,
            Finding.accepted_reason,
            Finding.accepted_by,
            Finding.accepted_until,
        )
        .join(Asset, Asset.id == Finding.asset_id)
        .where(_scope_condition(scope), status)
        .order_by(*FIX_FIRST_ORDER)
    )
    out = []
    for r in rows:
        accepted = str(r[7]) == "accepted"
        out.append(
            {
                "id": r[0],
                "asset_id": r[1],
                "check": r[2],
                "subject": r[3],
                "address": r[4],
                "port": r[5],
                "severity": str(r[6]),
                "status": str(r[7]),
                "title": r[8],
                "remediation": r[9],
                "evidence": r[10],
                "first_seen": data.iso(r[11]),
                "last_seen": data.iso(r[12]),
                "fixed_at": data.iso(r[13]) if str(r[7]) == "fixed" else None,
                "accepted_reason": r[14] if accepted else "",
                "accepted_by": r[15] if accepted else "",
                "accepted_until": data.iso(r[16]) if accepted else None,
            }
        )
    return out


# --- snapshots --------------------------------------------------------------------------------


def encode_snapshot(snapshot: dict[str, Any]) -> bytes:
    """The canonical JSON text: the same snapshot always gives the same bytes (and digest)."""
    return json.dumps(snapshot, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def load_snapshot(*, session: Session, report_id: int) -> dict[str, Any]:
    row = session.get(ReportSnapshot, report_id)
    if row is None:
        raise NotFound(N_("No report with id %(id)s."), id=report_id)
    return json.loads(gzip.decompress(row.content))  # type: ignore[no-any-return]


def snapshot_text(*, session: Session, report_id: int) -> bytes:
    row = session.get(ReportSnapshot, report_id)
    if row is None:
        raise NotFound(N_("No report with id %(id)s."), id=report_id)
    return gzip.decompress(row.content)


def _previous(session: Session, schedule_id: int | None, scope: Scope) -> Sequence[Report]:
    """Earlier reports of the same schedule (one-off ones: of the same scope), newest first."""
    statement = select(Report)
    if schedule_id is not None:
        statement = statement.where(Report.schedule_id == schedule_id)
    else:
        statement = statement.where(
            Report.schedule_id.is_(None),
            Report.scope == scope.type,
            Report.scope_value == scope.value,
        )
    statement = statement.order_by(Report.generated_at.desc(), Report.id.desc())
    return session.scalars(statement.limit(data.TREND_POINTS)).all()


def generate_report(
    *,
    session: Session,
    settings: Settings,
    now: datetime,
    trigger: str,
    actor: str,
    schedule: ReportSchedule | None = None,
    scope: Scope | None = None,
    language: str | None = None,
    formats: Sequence[str] | None = None,
) -> Report:
    """Build and store a report now; its baseline is the previous report of the same schedule.
    Commits. Expired risk acceptances are reopened first, as everywhere."""
    if schedule is not None:
        scope = Scope(str(schedule.scope), schedule.scope_value)
        language = schedule.language
        formats = list(schedule.formats)
    scope = scope or Scope()
    language = language or settings.reports.language
    if language not in settings.web.languages:
        raise InvalidInput(N_("%(value)s is not one of the languages offered."), value=language)
    expire_acceptances(session=session, now=now)
    previous = _previous(session, schedule.id if schedule else None, scope)
    baseline_row = previous[0] if previous else None
    baseline = (
        load_snapshot(session=session, report_id=baseline_row.id or 0) if baseline_row else None
    )
    tz = resolve_timezone(settings.general.timezone)
    meta = {
        "title": schedule.name if schedule else DEFAULT_TITLE,
        "language": language,
        "timezone": str(tz),
        "scope": scope.as_dict(),
        "schedule": {"id": schedule.id, "name": schedule.name} if schedule else None,
        "baseline": {
            "report_id": baseline_row.id,
            "generated_at": data.iso(baseline_row.generated_at),
        }
        if baseline_row
        else None,
    }
    trend = [
        {"at": data.iso(r.generated_at), "open_by_severity": r.totals.get("open_by_severity", {})}
        for r in reversed(previous)
    ]
    snapshot = data.build_snapshot(
        meta=meta,
        assets=_assets(session, scope, settings),
        findings=_findings(session, scope, baseline_row.generated_at if baseline_row else None),
        baseline=baseline,
        trend=trend,
        now=now,
    )
    text = encode_snapshot(snapshot)
    try:
        report = Report(
            schedule_id=schedule.id if schedule else None,
            baseline_id=baseline_row.id if baseline_row else None,
            generated_at=now,
            trigger=trigger,
            actor=actor[:64],
            scope=ReportScope(scope.type),
            scope_value=scope.value,
            language=language,
            formats=list(formats or FORMATS),
            totals=snapshot["totals"],
            sha256=hashlib.sha256(text).hexdigest(),
        )
        session.add(report)
        session.flush()
        session.add(
            ReportSnapshot(report_id=report.id or 0, content=gzip.compress(text, 6), size=len(text))
        )
        session.commit()
    except Exception:
        session.rollback()
        raise
    return report


# --- reading past reports ---------------------------------------------------------------------


def get_report(*, session: Session, report_id: int) -> Report:
    report = session.get(Report, report_id) if valid_id(report_id) else None
    if report is None:
        raise NotFound(N_("No report with id %(id)s."), id=report_id)
    return report


def list_reports(
    *,
    session: Session,
    schedule_id: int | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Report]:
    statement = select(Report)
    if schedule_id is not None:
        statement = statement.where(Report.schedule_id == schedule_id)
    statement = statement.order_by(Report.generated_at.desc(), Report.id.desc()).offset(offset)
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.scalars(statement).all())


def count_reports(*, session: Session, schedule_id: int | None = None) -> int:
    statement = select(func.count()).select_from(Report)
    if schedule_id is not None:
        statement = statement.where(Report.schedule_id == schedule_id)
    return int(session.scalar(statement) or 0)


def schedule_names(*, session: Session, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(
        session.execute(
            select(ReportSchedule.id, ReportSchedule.name).where(ReportSchedule.id.in_(ids))
        ).all()
    )


def render(
    snapshot: dict[str, Any], fmt: str, *, report_id: int | None = None, sha256: str = ""
) -> bytes:
    """One format of a stored snapshot; the same snapshot always gives the same content."""
    if fmt == "json":
        return encode_snapshot(snapshot)
    if fmt == "csv":
        from inventory.reports.render_csv import render_csv

        return render_csv(snapshot)
    if fmt == "html":
        from inventory.reports.render_html import render_html

        return render_html(snapshot, report_id=report_id, sha256=sha256)
    if fmt == "pdf":
        from inventory.reports.render_pdf import render_pdf

        return render_pdf(snapshot, report_id=report_id, sha256=sha256)
    raise InvalidInput(N_("%(value)s is not a report format (html, pdf, csv, json)."), value=fmt)


def render_report(*, session: Session, report: Report, fmt: str) -> bytes:
    snapshot = load_snapshot(session=session, report_id=report.id or 0)
    return render(snapshot, fmt, report_id=report.id, sha256=report.sha256)


def file_name(report: Report, fmt: str, title: str = "") -> str:
    """e.g. vigie-report-12-2026-12-07.pdf (ASCII, no user text: safe in any header or disk)."""
    return f"vigie-report-{report.id}-{report.generated_at:%Y-%m-%d}.{fmt}"


# Only KINDS is used by the schedule checks; kept here so both modules agree.
KINDS = tuple(k.value for k in AssetKind)
