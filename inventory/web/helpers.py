"""Small view helpers shared by the blueprints: roles, the current actor, translated errors."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, current_app, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from markupsafe import Markup, escape

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
    """A service message in the user's language; a clash links to the other asset."""
    shown = {k: val for k, val in params.items() if k != "asset_id"}
    text = escape(gettext(message, **shown) if shown else gettext(message))
    if "asset_id" in params:
        link = url_for("assets.show_asset", asset_id=params["asset_id"])
        text += Markup(' <a href="{}">{}</a>').format(link, gettext("Open it"))
    return Markup(text)
