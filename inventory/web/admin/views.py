"""User management, for administrators."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user

from inventory.db import get_session
from inventory.errors import InvalidInput
from inventory.models import Role
from inventory.services import users as user_service
from inventory.web.admin.forms import EditUserForm, NewUserForm
from inventory.web.helpers import login_policy, place_errors, role_required
from inventory.web.labels import choices

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/users")
@role_required(Role.admin)
def list_users() -> Any:
    return render_template("admin/users.html", users=user_service.list_users(session=get_session()))


@bp.route("/users/new", methods=["GET", "POST"])
@role_required(Role.admin)
def new_user() -> Any:
    form = NewUserForm()
    form.role.choices = choices("role")
    if request.method == "GET":
        form.role.data = "viewer"
    if form.validate_on_submit():
        try:
            user, generated = user_service.create_user(
                session=get_session(),
                username=form.username.data or "",
                role=Role(form.role.data),
                password=form.password.data or None,
                policy=login_policy(),
            )
        except InvalidInput as exc:
            place_errors(form, exc)
        else:
            flash(_("Account %(name)s was created.", name=user.username), "success")
            if generated:
                # Shown once, on the next page only; never stored in clear.
                return render_template("admin/password_once.html", user=user, password=generated)
            return redirect(url_for("admin.list_users"))
    return render_template("admin/user_form.html", form=form, user=None), (
        400 if request.method == "POST" else 200
    )


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@role_required(Role.admin)
def edit_user(user_id: int) -> Any:
    db = get_session()
    user = user_service.get_user(session=db, user_id=user_id)
    form = EditUserForm(
        data={"role": user.role, "active": user.active} if request.method == "GET" else None
    )
    form.role.choices = choices("role")
    if form.validate_on_submit():
        password = form.password.data or ""
        try:
            # Both changes are checked before either is written: each service call commits, and a
            # refused role change must not leave a new password behind (nor the other way round).
            if password:
                user_service.check_password(password, login_policy())
            user_service.update_user(
                session=db,
                user_id=user_id,
                role=Role(form.role.data),
                active=bool(form.active.data),
            )
            if password:
                user_service.set_password(
                    session=db, user_id=user_id, password=password, policy=login_policy()
                )
        except InvalidInput as exc:
            db.rollback()
            place_errors(form, exc)
        else:
            if user.id == current_user.id and user.active:
                login_user(user)  # an admin editing their own account keeps this session
            flash(_("Account %(name)s was updated.", name=user.username), "success")
            return redirect(url_for("admin.list_users"))
    return render_template("admin/user_form.html", form=form, user=user), (
        400 if request.method == "POST" else 200
    )
