"""The schedule page: what runs now, what is due and overdue, the last runs, stale assets, and the
maintenance windows (administrators change them)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from inventory.db import get_session
from inventory.errors import InvalidInput
from inventory.models import MaintenanceWindow, Role
from inventory.models.types import utcnow
from inventory.services import schedule as schedule_service
from inventory.services import windows as window_service
from inventory.web.helpers import actor, can, place_errors, role_required, settings
from inventory.web.schedule.forms import DAYS, WindowForm

bp = Blueprint("schedule", __name__, url_prefix="/schedule")


@bp.get("")
@role_required(Role.viewer)
def show_schedule() -> Any:
    db = get_session()
    now = utcnow()
    page = schedule_service.overview(session=db, now=now)
    windows = window_service.load_window_set(session=db, settings=settings())
    # When each overdue asset may next be audited, if a window holds it back now.
    held = {
        row.asset_id: windows.next_allowed(asset.zone, asset.site, now)
        for row, asset in page.overdue
        if not windows.allows(asset.zone, asset.site, now)
    }
    rows = window_service.list_windows(session=db)
    local = now.astimezone(windows.tz)
    return render_template(
        "schedule/index.html",
        page=page,
        held=held,
        windows=[(w, window_service.as_window(w).is_open(local)) for w in rows],
        day_names=dict(DAYS),
        timezone=str(windows.tz),
        can_edit=can(Role.admin),
    )


def _form_data(form: WindowForm) -> dict[str, Any]:
    return {
        "name": form.name.data,
        "scope": form.scope.data,
        "value": form.value.data,
        "mode": form.mode.data,
        "days": request.form.getlist("days"),
        "start_time": form.start_time.data,
        "end_time": form.end_time.data,
    }


def _edit(window: MaintenanceWindow | None) -> Any:
    db = get_session()
    form = WindowForm()
    if request.method == "GET":
        if window is not None:
            form.name.data, form.scope.data = window.name, str(window.scope)
            form.value.data, form.mode.data = window.value, str(window.mode)
            form.days.data = [DAYS[d][0] for d in window.days]
            form.start_time.data, form.end_time.data = window.start_time, window.end_time
        else:
            form.scope.data, form.mode.data = "zone", "blackout"
            form.days.data = ["mon", "tue", "wed", "thu", "fri"]
    if form.validate_on_submit():
        try:
            data = window_service.validate_window(_form_data(form))
            if window is None:
                window_service.create_window(session=db, data=data, actor=actor())
                flash(_("The maintenance window was added."), "success")
            else:
                window_service.update_window(
                    session=db, window_id=window.id or 0, data=data, actor=actor()
                )
                flash(_("The maintenance window was changed."), "success")
        except InvalidInput as exc:
            db.rollback()
            place_errors(form, exc)
        else:
            return redirect(url_for("schedule.show_schedule") + "#windows")
    status = 400 if request.method == "POST" else 200
    return render_template("schedule/window_form.html", form=form, window=window), status


@bp.route("/windows/new", methods=["GET", "POST"])
@role_required(Role.admin)
def new_window() -> Any:
    return _edit(None)


@bp.route("/windows/<int:window_id>", methods=["GET", "POST"])
@role_required(Role.admin)
def edit_window(window_id: int) -> Any:
    window = window_service.get_window(session=get_session(), window_id=window_id)
    return _edit(window)


@bp.post("/windows/<int:window_id>/delete")
@role_required(Role.admin)
def delete_window(window_id: int) -> Any:
    window_service.delete_window(session=get_session(), window_id=window_id, actor=actor())
    flash(_("The maintenance window was removed."), "success")
    return redirect(url_for("schedule.show_schedule") + "#windows")
