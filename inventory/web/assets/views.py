"""Asset pages: list and search, the form, the asset page with history, archive, import, export."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _

from inventory.db import get_session
from inventory.errors import ImportRejected, InvalidInput
from inventory.models import AssetKind, AuditOutcome, Criticality, Role
from inventory.models.types import utcnow
from inventory.services import assets as asset_service
from inventory.services import findings as finding_service
from inventory.services import transfer
from inventory.services import vulns as vuln_service
from inventory.services.audits import audit_asset
from inventory.web.assets.forms import AssetForm, ImportForm
from inventory.web.helpers import actor, can, role_required, settings, translate

bp = Blueprint("assets", __name__, url_prefix="/assets")


def _text_arg(name: str, limit: int) -> str:
    """A free-text query argument, without control characters (PostgreSQL refuses NUL)."""
    return "".join(ch for ch in request.args.get(name, "") if ch.isprintable())[:limit]


def _query_from_args() -> asset_service.AssetQuery:
    args = request.args
    patient = args.get("patient", "")
    try:
        page = int(args.get("page", "1"))
    except ValueError:
        page = 1
    kind = args.get("kind", "")
    criticality = args.get("criticality", "")
    return asset_service.AssetQuery(
        text=_text_arg("q", 200),
        kind=kind if kind in {k.value for k in AssetKind} else "",
        zone=_text_arg("zone", 100),
        site=_text_arg("site", 100),
        criticality=criticality if criticality in {c.value for c in Criticality} else "",
        patient_data={"yes": True, "no": False}.get(patient),
        tag=_text_arg("tag", 40),
        archived=args.get("archived") == "1",
        sort=args.get("sort", "name") if args.get("sort") in asset_service.SORT_KEYS else "name",
        descending=args.get("dir") == "desc",
        page=max(1, min(page, 1_000_000)),
        per_page=settings().web.page_size,
    )


@bp.get("")
@role_required(Role.viewer)
def list_assets() -> Any:
    db = get_session()
    query = _query_from_args()
    page = asset_service.list_assets(session=db, query=query)
    return render_template(
        "assets/list.html",
        page=page,
        query=query,
        sites=asset_service.distinct_values(session=db, column="site"),
        zones=asset_service.distinct_values(session=db, column="zone"),
        can_edit=can(Role.admin),
    )


def _form_page(form: AssetForm, *, asset: Any = None, status: int = 200) -> Any:
    db = get_session()
    return render_template(
        "assets/form.html",
        form=form,
        asset=asset,
        sites=asset_service.distinct_values(session=db, column="site"),
        zones=asset_service.distinct_values(session=db, column="zone"),
    ), status


@bp.route("/new", methods=["GET", "POST"])
@role_required(Role.admin)
def new_asset() -> Any:
    form = AssetForm()
    if request.method == "GET":
        form.criticality.data = form.criticality.data or "medium"
        form.exposure.data = form.exposure.data or "internal"
        form.kind.data = request.args.get("kind") or "other"
    if form.validate_on_submit() and form.data_out is not None:
        try:
            asset = asset_service.create_asset(
                session=get_session(), data=form.data_out, actor=actor()
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            _rematch([asset.id])  # type: ignore[list-item]
            flash(_("%(name)s was added to the inventory.", name=asset.name), "success")
            return redirect(url_for("assets.show_asset", asset_id=asset.id))
    return _form_page(form, status=400 if request.method == "POST" else 200)


@bp.get("/<int:asset_id>")
@role_required(Role.viewer)
def show_asset(asset_id: int) -> Any:
    db = get_session()
    asset = asset_service.get_asset(session=db, asset_id=asset_id)
    history = asset_service.asset_history(session=db, asset_id=asset_id)
    finding_service.expire_acceptances(session=db)
    return render_template(
        "assets/detail.html",
        asset=asset,
        data=asset_service.asset_to_data(asset),
        history=history,
        services=finding_service.observed_services(session=db, asset_id=asset_id),
        findings=finding_service.findings_of(session=db, asset_id=asset_id),
        audits=finding_service.latest_audits(session=db, asset_id=asset_id),
        candidates=vuln_service.candidates_of(session=db, asset_id=asset_id),
        auto_confirm=vuln_service.options_from(settings()).auto_confirm_confidence,
        can_edit=can(Role.admin),
        can_audit=can(Role.auditor) and not asset.is_archived,
        default_interval=asset_service.default_interval(
            criticality=asset.criticality, defaults=settings().assets
        ),
    )


@bp.post("/<int:asset_id>/audit")
@role_required(Role.auditor)
def audit_now(asset_id: int) -> Any:
    """Audit the asset now, synchronously: a clinic's asset takes seconds."""
    db = get_session()
    asset = asset_service.get_asset(session=db, asset_id=asset_id)
    if asset.is_archived:
        flash(_("This asset is archived; restore it before auditing it."), "error")
        return redirect(url_for("assets.show_asset", asset_id=asset_id))
    audit = audit_asset(
        session=db,
        asset_id=asset_id,
        settings=settings().audit,
        actor=actor(),
        trigger="user",
        vulns=vuln_service.options_from(settings()),
    )
    ports = len(finding_service.observed_services(session=db, asset_id=asset_id))
    open_findings = sum(
        1
        for f in finding_service.findings_of(session=db, asset_id=asset_id)
        if f.status in finding_service.OPEN_STATUSES
    )
    if audit.outcome == AuditOutcome.completed:
        flash(
            _(
                "Audit done: %(name)s answered. Open ports: %(ports)d. Open findings: "
                "%(findings)d.",
                name=asset.name,
                ports=ports,
                findings=open_findings,
            ),
            "success",
        )
    else:
        flash(
            _(
                "Audit done: %(name)s did not answer on any port (switched off, or filtered). "
                "Its findings were left as they were. Open findings: %(findings)d.",
                name=asset.name,
                findings=open_findings,
            ),
            "info",
        )
    # No anchor: the confirmation above the page must stay in view; findings follow just below.
    return redirect(url_for("assets.show_asset", asset_id=asset_id))


@bp.route("/<int:asset_id>/edit", methods=["GET", "POST"])
@role_required(Role.admin)
def edit_asset(asset_id: int) -> Any:
    db = get_session()
    asset = asset_service.get_asset(session=db, asset_id=asset_id)
    if asset.is_archived:
        flash(_("This asset is archived; restore it before editing."), "error")
        return redirect(url_for("assets.show_asset", asset_id=asset_id))
    form = (
        AssetForm()
        if request.method == "POST"
        else AssetForm.from_data(asset_service.asset_to_data(asset))
    )
    if form.validate_on_submit() and form.data_out is not None:
        try:
            asset_service.update_asset(
                session=db, asset_id=asset_id, data=form.data_out, actor=actor()
            )
        except InvalidInput as exc:
            db.rollback()
            form.add_service_errors(exc)
        else:
            _rematch([asset_id])
            flash(_("Changes to %(name)s were saved.", name=form.data_out.name), "success")
            return redirect(url_for("assets.show_asset", asset_id=asset_id))
    return _form_page(form, asset=asset, status=400 if request.method == "POST" else 200)


@bp.route("/<int:asset_id>/archive", methods=["GET", "POST"])
@role_required(Role.admin)
def archive_asset(asset_id: int) -> Any:
    """GET asks for confirmation; POST archives (the history is kept)."""
    db = get_session()
    asset = asset_service.get_asset(session=db, asset_id=asset_id)
    if request.method == "POST":
        asset_service.archive_asset(session=db, asset_id=asset_id, actor=actor())
        flash(_("%(name)s was archived. Its history is kept.", name=asset.name), "success")
        return redirect(url_for("assets.list_assets"))
    return render_template("assets/archive.html", asset=asset)


@bp.post("/<int:asset_id>/restore")
@role_required(Role.admin)
def restore_asset(asset_id: int) -> Any:
    db = get_session()
    try:
        asset = asset_service.restore_asset(session=db, asset_id=asset_id, actor=actor())
    except InvalidInput as exc:
        db.rollback()
        flash(translate(exc.message, exc.params), "error")
        for messages in exc.fields.values():
            for message, params in messages:
                flash(translate(message, params), "error")
    else:
        _rematch([asset_id])
        flash(_("%(name)s is back in the inventory.", name=asset.name), "success")
    return redirect(url_for("assets.show_asset", asset_id=asset_id))


# --- known vulnerabilities -----------------------------------------------------------------


def _rematch(asset_ids: list[int] | None = None, since: datetime | None = None) -> None:
    """Match assets whose software may have changed against the imported feeds at once."""
    vuln_service.rematch_edited(
        session=get_session(),
        asset_ids=[i for i in asset_ids or [] if i is not None],
        since=since,
        options=vuln_service.options_from(settings()),
        actor=actor(),
    )


@bp.post("/<int:asset_id>/software/<int:candidate_id>/<decision>")
@role_required(Role.admin)
def decide_software(asset_id: int, candidate_id: int, decision: str) -> Any:
    """Confirm or reject software an audit detected; the asset is matched again."""
    if decision not in {"confirmed", "rejected"}:
        abort(404)
    candidate = vuln_service.decide_candidate(
        session=get_session(),
        asset_id=asset_id,
        candidate_id=candidate_id,
        decision=decision,
        actor=actor(),
        options=vuln_service.options_from(settings()),
    )
    if decision == "confirmed":
        flash(
            _(
                "%(cpe)s is confirmed: it is matched against known vulnerabilities.",
                cpe=candidate.cpe,
            ),
            "success",
        )
    else:
        flash(_("%(cpe)s is rejected: it is no longer matched.", cpe=candidate.cpe), "success")
    return redirect(url_for("assets.show_asset", asset_id=asset_id) + "#software")


# --- import and export ----------------------------------------------------------------------


def _upload_dir() -> Path:
    path = settings().var_dir / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - 3600
    for old in path.glob("*.upload"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
    return path


@bp.route("/import", methods=["GET", "POST"])
@role_required(Role.admin)
def import_assets() -> Any:
    """Upload, then a preview listing every bad row; importing is a second, explicit step."""
    form = ImportForm()
    if not form.validate_on_submit():
        return render_template("assets/import.html", form=form), (
            400 if request.method == "POST" else 200
        )
    upload = form.file.data
    content = upload.read()
    fmt = transfer.guess_format(upload.filename or "", content)
    try:
        plan = transfer.plan_import(session=get_session(), content=content, fmt=fmt)
    except ImportRejected as exc:
        return render_template(
            "assets/import.html", form=form, problems=exc.rows, filename=upload.filename
        ), 400
    except InvalidInput as exc:
        flash(translate(exc.message, exc.params), "error")
        return render_template("assets/import.html", form=form), 400
    token = ""
    if not plan.problems:
        token = secrets.token_urlsafe(16)
        # The pending file is inventory data: readable by Vigie's own user only.
        fd = os.open(_upload_dir() / f"{token}.upload", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        session["import"] = {"token": token, "format": fmt, "filename": upload.filename or ""}
    return render_template(
        "assets/import.html",
        form=form,
        plan=plan,
        problems=plan.problems,
        preview=plan.rows[:100],
        filename=upload.filename,
        token=token,
    ), (400 if plan.problems else 200)


@bp.post("/import/confirm")
@role_required(Role.admin)
def confirm_import() -> Any:
    pending = session.get("import") or {}
    token = request.form.get("token", "")
    if not token or not secrets.compare_digest(str(pending.get("token", "")), token):
        flash(_("This import preview has expired. Upload the file again."), "error")
        return redirect(url_for("assets.import_assets"))
    path = _upload_dir() / f"{token}.upload"
    if not path.exists():
        flash(_("This import preview has expired. Upload the file again."), "error")
        return redirect(url_for("assets.import_assets"))
    content = path.read_bytes()
    db = get_session()
    started = utcnow()
    try:
        result = transfer.import_assets(
            session=db, content=content, fmt=pending["format"], actor=actor()
        )
    except ImportRejected as exc:
        # The inventory changed since the preview; show the new problems, write nothing.
        return render_template(
            "assets/import.html",
            form=ImportForm(),
            problems=exc.rows,
            filename=pending.get("filename"),
        ), 400
    finally:
        session.pop("import", None)
    path.unlink(missing_ok=True)
    _rematch(since=started)
    flash(
        _(
            "Import done: %(created)d added, %(updated)d updated, %(unchanged)d unchanged.",
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
        ),
        "success",
    )
    return redirect(url_for("assets.list_assets"))


@bp.get("/export.<fmt>")
@role_required(Role.viewer)
def export_assets(fmt: str) -> Any:
    if fmt not in {"csv", "json"}:
        abort(404)

    def chunks() -> Iterator[str]:
        # The view's session is closed when the view returns, before the body is sent: the stream
        # opens its own through get_session(), closed by the teardown when the stream ends (or
        # when the client goes away). Reusing the view's session left a transaction open.
        assets = asset_service.live_assets(session=get_session())
        yield from (transfer.export_csv(assets) if fmt == "csv" else transfer.export_json(assets))

    mimetype = "text/csv" if fmt == "csv" else "application/json"
    stamp = time.strftime("%Y%m%d")
    return Response(
        stream_with_context(chunks()),
        content_type=f"{mimetype}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="vigie-assets-{stamp}.{fmt}"'},
    )


@bp.app_template_global()
def change_value(value: Any) -> str:
    """One old or new value of a history entry, as text."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        return "; ".join(str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
