"""Findings pages: the "fix this first" list with filters, one finding with its history, and the
accepted-risk form. Audits are started from the asset page (assets blueprint)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from inventory.db import get_session
from inventory.errors import InvalidInput
from inventory.models import AssetKind, FindingStatus, Role, Severity
from inventory.services import assets as asset_service
from inventory.services import findings as finding_service
from inventory.services.assets import Page
from inventory.services.vuln_findings import vulnerabilities_of
from inventory.web.findings.forms import AcceptRiskForm
from inventory.web.helpers import actor, can, role_required, settings, translate

bp = Blueprint("findings", __name__, url_prefix="/findings")

STATUS_FILTERS = ("open", "reopened", "accepted", "fixed", "all")


def _arg(name: str, limit: int = 100) -> str:
    return "".join(ch for ch in request.args.get(name, "") if ch.isprintable())[:limit]


def _query_from_args() -> finding_service.FindingQuery:
    severity = _arg("severity")
    kind = _arg("kind")
    status = _arg("status") or "open"
    return finding_service.FindingQuery(
        severity=severity if severity in {s.value for s in Severity} else "",
        check=_arg("check", 64),
        status="" if status not in STATUS_FILTERS or status == "all" else status,
        site=_arg("site"),
        zone=_arg("zone"),
        kind=kind if kind in {k.value for k in AssetKind} else "",
    )


@bp.get("")
@role_required(Role.viewer)
def list_findings() -> Any:
    db = get_session()
    finding_service.expire_acceptances(session=db)
    query = _query_from_args()
    status = _arg("status") or "open"
    try:
        wanted_page = max(1, min(int(request.args.get("page", "1")), 1_000_000))
    except ValueError:
        wanted_page = 1
    per_page = settings().web.page_size
    total = finding_service.count_findings(session=db, query=query)
    page = Page(items=[], total=total, page=1, per_page=per_page)
    page.page = min(wanted_page, page.pages)
    rows = finding_service.list_findings(
        session=db, query=query, limit=per_page, offset=(page.page - 1) * per_page
    )
    return render_template(
        "findings/list.html",
        rows=rows,
        page=page,
        query=query,
        status=status if status in STATUS_FILTERS else "open",
        checks=finding_service.check_ids(session=db),
        sites=asset_service.distinct_values(session=db, column="site"),
        zones=asset_service.distinct_values(session=db, column="zone"),
        can_accept=can(Role.auditor),
    )


@bp.get("/<int:finding_id>")
@role_required(Role.viewer)
def show_finding(finding_id: int) -> Any:
    db = get_session()
    finding_service.expire_acceptances(session=db)
    finding = finding_service.get_finding(session=db, finding_id=finding_id)
    return render_template(
        "findings/detail.html",
        finding=finding,
        vulnerability=vulnerabilities_of(session=db, findings=[finding]).get(finding_id),
        asset=asset_service.get_asset(session=db, asset_id=finding.asset_id),
        events=finding_service.finding_events(session=db, finding_id=finding_id),
        can_accept=can(Role.auditor) and finding.status in finding_service.ACCEPTABLE,
    )


@bp.route("/<int:finding_id>/accept", methods=["GET", "POST"])
@role_required(Role.auditor)
def accept_risk(finding_id: int) -> Any:
    db = get_session()
    finding = finding_service.get_finding(session=db, finding_id=finding_id)
    asset = asset_service.get_asset(session=db, asset_id=finding.asset_id)
    form = AcceptRiskForm()
    if request.method == "GET" and finding.status == FindingStatus.accepted:
        form.reason.data = finding.accepted_reason
        if finding.accepted_until:
            form.until.data = finding.accepted_until.date().isoformat()
    # The service judges the reason and the date together (all problems at once), unless the
    # CSRF token is wrong; a date the form could not read reaches it as missing.
    form_ok = form.validate_on_submit()
    if request.method == "POST" and (form_ok or "csrf_token" not in form.errors):
        try:
            finding_service.accept_risk(
                session=db,
                finding_id=finding_id,
                actor=actor(),
                reason=form.reason.data or "",
                until=form.until_date if form_ok else None,
            )
        except InvalidInput as exc:
            db.rollback()
            if exc.fields:
                form.add_service_errors(exc)
            else:
                form.form_errors.append(translate(exc.message, exc.params))
        else:
            flash(
                _("The risk is accepted; the finding leaves the open list until then."), "success"
            )
            return redirect(url_for("findings.show_finding", finding_id=finding_id))
    status = 400 if request.method == "POST" else 200
    return render_template("findings/accept.html", form=form, finding=finding, asset=asset), status
