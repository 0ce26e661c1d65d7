"""Log in and out; failed attempts are throttled by the users service."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from inventory.db import get_session
from inventory.errors import LoginThrottled
from inventory.services import users as user_service
from inventory.web.auth.forms import LoginForm
from inventory.web.helpers import login_policy, settings

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site paths: a login link must not bounce the user to another site."""
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("assets.list_assets")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        username = form.username.data or ""
        try:
            # No account name holds control characters (and PostgreSQL refuses NUL in a query).
            user = (
                user_service.authenticate(
                    session=get_session(),
                    username=username,
                    password=form.password.data or "",
                    client=request.remote_addr or "",
                    policy=login_policy(),
                )
                if username.isprintable()
                else None
            )
        except LoginThrottled as exc:
            flash(_(exc.message, **exc.params), "error")
            status = 429
        else:
            if user is None:
                flash(_("Wrong user name or password."), "error")
                status = 401
            else:
                lang = session.get("lang")  # the language chosen on the login page stays
                session.clear()  # a fresh session on login (no fixation)
                if lang:
                    session["lang"] = lang
                login_user(user)
                return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout() -> Any:
    logout_user()
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/language")
def choose_language() -> Any:
    """Language for visitors not logged in (logged-in users choose theirs on their account page)."""
    lang = request.form.get("lang", "")
    if lang in settings().web.languages:
        session["lang"] = lang
    return redirect(_safe_next(request.form.get("next")))
