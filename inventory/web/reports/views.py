"""The Reports pages: report schedules (administrators change them; auditors run them now),
past reports to read and download, and each report's deliveries with their status and a retry."""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from inventory.db import get_session
from inventory.errors import InvalidInput
from inventory.models import ReportSchedule, Role
from inventory.models.types import utcnow
from inventory.reports.cron import describe
from inventory.services import report_deliveries as delivery_service
from inventory.services import report_schedules as schedule_service
from inventory.services import reports as report_service
from inventory.web.helpers import actor, can, place_errors, role_required, settings, translate
from inventory.web.reports.forms import ScheduleForm

bp = Blueprint("reports", __name__, url_prefix="/reports")
PER_PAGE = 25
# The report page served by Vigie: its own inline styles and SVG, nothing else, no script.
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def _timing(cron: str) -> str:
    return describe(cron, _)


@bp.get("")
@role_required(Role.viewer)
def list_reports() -> Any:
    db = get_session()
    now = utcnow()
    try:
        schedule_service.sync_config_schedules(session=db, settings=settings(), now=now)
    except Exception:  # noqa: BLE001 - the page still shows what is there
        db.rollback()
    schedules = schedule_service.list_schedules(session=db)
    latest = schedule_service.last_reports(
        session=db, schedule_ids=[s.id for s in schedules if s.id]
    )
    total = report_service.count_reports(session=db)
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
    rows = report_service.list_reports(session=db, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    names = report_service.schedule_names(
        session=db, ids=sorted({r.schedule_id for r in rows if r.schedule_id})
    )
    counts = delivery_service.delivery_counts(session=db, report_ids=[r.id for r in rows if r.id])
    return render_template(
        "reports/index.html",
        schedules=schedules,
        latest=latest,
        timing=_timing,
        reports=rows,
        names=names,
        counts=counts,
        page={"page": page, "pages": pages, "total": total},
        can_edit=can(Role.admin),
        can_run=can(Role.auditor),
    )


def _form_data(form: ScheduleForm) -> dict[str, Any]:
    return {
        "name": form.name.data,
        "scope": form.scope.data,
        "scope_value": form.scope_value.data,
        "cron": form.cron.data,
        "formats": request.form.getlist("formats"),
        "language": form.language.data,
        "recipients": form.recipients.data,
        "folder": form.folder.data,
        "enabled": form.enabled.data,
    }


def _edit(schedule: ReportSchedule | None) -> Any:
    db = get_session()
    config = settings()
    form = ScheduleForm()
    from inventory.web import LANGUAGE_NAMES

    form.language.choices = [
        (code, LANGUAGE_NAMES.get(code, code)) for code in config.web.languages
    ]
    if request.method == "GET":
        if schedule is not None:
            form.name.data, form.scope.data = schedule.name, str(schedule.scope)
            form.scope_value.data, form.cron.data = schedule.scope_value, schedule.cron
            form.formats.data, form.language.data = list(schedule.formats), schedule.language
            form.recipients.data = "\n".join(schedule.recipients)
            form.folder.data, form.enabled.data = schedule.folder, schedule.enabled
        else:
            form.scope.data, form.cron.data = "all", "0 7 * * mon"
            form.formats.data = ["pdf", "csv"]
            form.language.data = config.reports.language
    if form.validate_on_submit():
        try:
            data = schedule_service.validate_schedule(
                _form_data(form), languages=config.web.languages
            )
            if schedule is None:
                schedule_service.create_schedule(
                    session=db, data=data, actor=actor(), settings=config
                )
                flash(_("The report schedule was added."), "success")
            else:
                schedule_service.update_schedule(
                    session=db,
                    schedule_id=schedule.id or 0,
                    data=data,
                    actor=actor(),
                    settings=config,
                )
                flash(_("The report schedule was changed."), "success")
        except InvalidInput as exc:
            db.rollback()
            place_errors(form, exc)
        else:
            return redirect(url_for("reports.list_reports"))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "reports/schedule_form.html", form=form, schedule=schedule, timing=_timing
    ), status


@bp.route("/schedules/new", methods=["GET", "POST"])
@role_required(Role.admin)
def new_schedule() -> Any:
    return _edit(None)


@bp.route("/schedules/<int:schedule_id>", methods=["GET", "POST"])
@role_required(Role.admin)
def edit_schedule(schedule_id: int) -> Any:
    schedule = schedule_service.get_schedule(session=get_session(), schedule_id=schedule_id)
    if schedule.source == "config":
        flash(_("This schedule is written in the configuration file; change it there."), "error")
        return redirect(url_for("reports.list_reports"))
    return _edit(schedule)


@bp.post("/schedules/<int:schedule_id>/delete")
@role_required(Role.admin)
def delete_schedule(schedule_id: int) -> Any:
    try:
        schedule_service.delete_schedule(
            session=get_session(), schedule_id=schedule_id, actor=actor()
        )
    except InvalidInput as exc:
        flash(translate(exc.message, exc.params), "error")
    else:
        flash(_("The report schedule was removed; its past reports are kept."), "success")
    return redirect(url_for("reports.list_reports"))


@bp.post("/schedules/<int:schedule_id>/run")
@role_required(Role.auditor)
def run_schedule(schedule_id: int) -> Any:
    db = get_session()
    schedule = schedule_service.get_schedule(session=db, schedule_id=schedule_id)
    report = delivery_service.run_schedule(
        session=db,
        settings=settings(),
        schedule=schedule,
        now=utcnow(),
        trigger="web",
        actor=actor(),
    )
    failed = [
        d
        for d in delivery_service.list_deliveries(session=db, report_id=report.id or 0)
        if d.status != "sent"
    ]
    if failed:
        flash(
            _("The report was made, but some deliveries failed; they will be tried again."),
            "error",
        )
    else:
        flash(_("The report was made."), "success")
    return redirect(url_for("reports.show_report", report_id=report.id))


@bp.get("/<int:report_id>")
@role_required(Role.viewer)
def show_report(report_id: int) -> Any:
    db = get_session()
    report = report_service.get_report(session=db, report_id=report_id)
    schedule = db.get(ReportSchedule, report.schedule_id) if report.schedule_id else None
    return render_template(
        "reports/detail.html",
        report=report,
        schedule=schedule,
        deliveries=delivery_service.list_deliveries(session=db, report_id=report_id),
        formats=report_service.FORMATS,
        can_run=can(Role.auditor),
    )


@bp.get("/<int:report_id>/report.<fmt>")
@role_required(Role.viewer)
def download(report_id: int, fmt: str) -> Any:
    db = get_session()
    report = report_service.get_report(session=db, report_id=report_id)
    if fmt not in report_service.FORMATS:
        abort(404)
    content = report_service.render_report(session=db, report=report, fmt=fmt)
    response = Response(content, mimetype=report_service.MEDIA_TYPES[fmt])
    inline = fmt == "html" and request.args.get("inline") == "1"
    disposition = "inline" if inline else "attachment"
    name = report_service.file_name(report, fmt)
    response.headers["Content-Disposition"] = f'{disposition}; filename="{name}"'
    response.headers["Content-Security-Policy"] = REPORT_CSP
    return response


@bp.post("/deliveries/<int:delivery_id>/retry")
@role_required(Role.auditor)
def retry_delivery(delivery_id: int) -> Any:
    db = get_session()
    try:
        delivery = delivery_service.retry_delivery(
            session=db, settings=settings(), delivery_id=delivery_id, now=utcnow()
        )
    except InvalidInput as exc:
        flash(translate(exc.message, exc.params), "error")
        delivery = delivery_service.get_delivery(session=db, delivery_id=delivery_id)
    else:
        if delivery.status == "sent":
            flash(_("Delivered."), "success")
        else:
            flash(_("The delivery failed again: %(error)s", error=delivery.last_error), "error")
    return redirect(url_for("reports.show_report", report_id=delivery.report_id) + "#deliveries")
