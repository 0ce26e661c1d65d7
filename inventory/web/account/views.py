"""The user's own account: interface language and password."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user

from inventory.db import get_session
from inventory.errors import InvalidInput, LoginThrottled
from inventory.models import Role
from inventory.services import users as user_service
from inventory.web import LANGUAGE_NAMES
from inventory.web.account.forms import LanguageForm, PasswordForm, TokenForm
from inventory.web.helpers import login_policy, role_required, settings, translate

bp = Blueprint("account", __name__, url_prefix="/account")


def _language_form() -> LanguageForm:
    form = LanguageForm(prefix="lang")
    form.locale.choices = [("", str(_l("Same as my browser")))] + [
        (code, LANGUAGE_NAMES.get(code, code)) for code in settings().web.languages
    ]
    return form


@bp.get("")
@role_required(Role.viewer)
def profile() -> Any:
    language = _language_form()
    language.locale.data = current_user.locale or ""
    return render_template(
        "account/profile.html", language=language, password=PasswordForm(prefix="pw")
    )


@bp.post("/language")
@role_required(Role.viewer)
def set_language() -> Any:
    form = _language_form()
    if form.validate_on_submit():
        user_service.update_user(
            session=get_session(), user_id=current_user.id, locale=form.locale.data or None
        )
        flash(_("Language saved."), "success")
    return redirect(url_for("account.profile"))


@bp.post("/password")
@role_required(Role.viewer)
def change_password() -> Any:
    form = PasswordForm(prefix="pw")
    db = get_session()
    if form.validate_on_submit():
        try:
            ok = user_service.authenticate(
                session=db,
                username=current_user.username,
                password=form.current.data or "",
                client=request.remote_addr or "",
                policy=login_policy(),
            )
        except LoginThrottled as exc:
            ok = None
            form.current.errors = [_(exc.message, **exc.params)]
        else:
            if ok is None:
                form.current.errors = [_("This is not your current password.")]
        if ok is not None:
            try:
                user = user_service.set_password(
                    session=db,
                    user_id=current_user.id,
                    password=form.password.data or "",
                    policy=login_policy(),
                )
            except InvalidInput as exc:
                form.password.errors = [
                    translate(m, p) for msgs in exc.fields.values() for m, p in msgs
                ]
            else:
                login_user(user)  # the new session token; other sessions of this account end
                flash(_("Your password was changed."), "success")
                return redirect(url_for("account.profile"))
    language = _language_form()
    language.locale.data = current_user.locale or ""
    return render_template("account/profile.html", language=language, password=form), 400


# --- API tokens -----------------------------------------------------------------------------


@bp.get("/tokens")
@role_required(Role.viewer)
def list_tokens() -> Any:
    from inventory.services.tokens import list_tokens as tokens_of

    form = TokenForm()
    return render_template(
        "account/tokens.html",
        tokens=tokens_of(session=get_session(), user_id=current_user.id),
        form=form,
        secret=None,
    )


@bp.post("/tokens")
@role_required(Role.viewer)
def create_token() -> Any:
    from inventory.services.tokens import create_token as new_token
    from inventory.services.tokens import list_tokens as tokens_of

    form = TokenForm()
    db = get_session()
    secret = None
    status = 400
    if form.validate_on_submit():
        try:
            _token, secret = new_token(
                session=db, user_id=current_user.id, name=form.name.data or ""
            )
            status = 200
        except InvalidInput as exc:
            form.name.errors = [translate(m, p) for msgs in exc.fields.values() for m, p in msgs]
    return render_template(
        "account/tokens.html",
        tokens=tokens_of(session=db, user_id=current_user.id),
        form=TokenForm(formdata=None) if secret else form,
        secret=secret,
    ), status


@bp.post("/tokens/<int:token_id>/revoke")
@role_required(Role.viewer)
def revoke_token(token_id: int) -> Any:
    from inventory.services.tokens import revoke_token as revoke

    revoke(session=get_session(), token_id=token_id, user_id=current_user.id)
    flash(_("The token was revoked; scripts using it are refused from now on."), "success")
    return redirect(url_for("account.list_tokens"))
