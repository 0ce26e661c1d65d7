"""Small view helpers shared by the blueprints: roles, the current actor, translated errors."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, current_app, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from markupsafe import Markup, escape

from inventory.errors import InvalidInput
from inventory.models import Role
from inventory.services.users import LoginPolicy
from inventory.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def settings() -> Settings:
    return current_app.extensions["inventory.settings"]  # type: ignore[no-any-return]


def login_policy() -> LoginPolicy:
    from datetime import timedelta

    auth = settings().auth
    return LoginPolicy(
        max_failures=auth.max_failed_logins,
        window=timedelta(minutes=auth.throttle_minutes),
        min_password_length=auth.min_password_length,
    )


def role_required(role: Role) -> Callable[[F], F]:
    """Log in first, then need at least `role` (viewer < auditor < admin)."""

    def decorator(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not Role(current_user.role).allows(role):
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def can(role: Role) -> bool:
    return bool(current_user.is_authenticated and Role(current_user.role).allows(role))


def actor() -> str:
    return str(current_user.username)


def translate(message: str, params: dict[str, Any]) -> Markup:
    """A service message in the user's language; a clash links to the other asset. A `field`
    parameter names a part of the input (e.g. a cron field) and is a msgid itself."""
    shown = {k: val for k, val in params.items() if k != "asset_id"}
    if isinstance(shown.get("field"), str):
        shown["field"] = gettext(shown["field"])
    text = escape(gettext(message, **shown) if shown else gettext(message))
    if "asset_id" in params:
        link = url_for("assets.show_asset", asset_id=params["asset_id"])
        text += Markup(' <a href="{}">{}</a>').format(link, gettext("Open it"))
    return Markup(text)


def place_errors(form: Any, exc: InvalidInput, *, keep_form_checks: bool = False) -> None:
    """A service's refusal shown on the form: each field's messages next to that field, the
    others (and a refusal naming no field) at the top. With `keep_form_checks`, a field the form
    itself already found wrong keeps only the form's message."""
    for name, messages in exc.fields.items():
        target = getattr(form, name, None)
        if keep_form_checks and target is not None and target.errors:
            continue
        rendered = [translate(message, params) for message, params in messages]
        if target is None:
            form.form_errors.extend(rendered)
        else:
            target.errors = [*target.errors, *rendered]
    if not exc.fields:
        form.form_errors.append(translate(exc.message, exc.params))
