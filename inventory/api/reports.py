"""/api/v1/reports: past reports (their headline numbers and deliveries), each report's content
in any format, and running a report schedule now."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app

from inventory.api.base import actor, bp, int_arg, iso, paging_fields, requires
from inventory.db import get_session
from inventory.errors import NotFound
from inventory.i18n import N_
from inventory.models import Report, ReportDelivery, Role
from inventory.models.types import utcnow
from inventory.services import report_deliveries as delivery_service
from inventory.services import report_schedules as schedule_service
from inventory.services import reports as report_service


def _report_public(report: Report, schedule_name: str | None) -> dict[str, Any]:
    return {
        "id": report.id,
        "generated_at": iso(report.generated_at),
        "schedule": {"id": report.schedule_id, "name": schedule_name}
        if report.schedule_id
        else None,
        "baseline_id": report.baseline_id,
        "scope": {"type": str(report.scope), "value": report.scope_value},
        "language": report.language,
        "trigger": report.trigger,
        "actor": report.actor,
        "totals": report.totals,
        "sha256": report.sha256,
        "formats": {fmt: f"/api/v1/reports/{report.id}/{fmt}" for fmt in report_service.FORMATS},
    }


def _delivery_public(delivery: ReportDelivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "channel": str(delivery.channel),
        "target": delivery.target,
        "status": str(delivery.status),
        "attempts": delivery.attempts,
        "last_attempt_at": iso(delivery.last_attempt_at),
        "next_attempt_at": iso(delivery.next_attempt_at),
        "delivered_at": iso(delivery.delivered_at),
        "last_error": delivery.last_error,
    }


@bp.get("/reports")
@requires(Role.viewer)
def list_reports() -> Any:
    page = int_arg("page", 1, 1, 10_000_000)
    per_page = int_arg("per_page", 50, 1, 500)
    db = get_session()
    paging = paging_fields(report_service.count_reports(session=db), page, per_page)
    rows = report_service.list_reports(
        session=db, limit=per_page, offset=(paging["page"] - 1) * per_page
    )
    names = report_service.schedule_names(
        session=db, ids=sorted({r.schedule_id for r in rows if r.schedule_id})
    )
    return {
        **paging,
        "items": [_report_public(r, names.get(r.schedule_id or 0)) for r in rows],
    }


@bp.get("/reports/<int:report_id>")
@requires(Role.viewer)
def get_report(report_id: int) -> Any:
    db = get_session()
    report = report_service.get_report(session=db, report_id=report_id)
    names = report_service.schedule_names(
        session=db, ids=[report.schedule_id] if report.schedule_id else []
    )
    return {
        **_report_public(report, names.get(report.schedule_id or 0)),
        "deliveries": [
            _delivery_public(d)
            for d in delivery_service.list_deliveries(session=db, report_id=report_id)
        ],
    }


@bp.get("/reports/<int:report_id>/<fmt>")
@requires(Role.viewer)
def report_content(report_id: int, fmt: str) -> Any:
    db = get_session()
    report = report_service.get_report(session=db, report_id=report_id)
    if fmt not in report_service.FORMATS:
        raise NotFound(N_("%(value)s is not a report format (html, pdf, csv, json)."), value=fmt)
    content = report_service.render_report(session=db, report=report, fmt=fmt)
    response = Response(content, mimetype=report_service.MEDIA_TYPES[fmt])
    name = report_service.file_name(report, fmt)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.post("/report-schedules/<int:schedule_id>/run")
@requires(Role.auditor)
def run_schedule(schedule_id: int) -> Any:
    db = get_session()
    schedule = schedule_service.get_schedule(session=db, schedule_id=schedule_id)
    report = delivery_service.run_schedule(
        session=db,
        settings=_settings(),
        schedule=schedule,
        now=utcnow(),
        trigger="api",
        actor=actor(),
    )
    return get_report(report.id or 0), 201


def _settings() -> Any:
    return current_app.extensions["inventory.settings"]
