"""The /api/v1 blueprint and what every endpoint shares: bearer-token authentication, the role
check, JSON errors {"code", "message", "fields"}, and the small readers of query arguments and
bodies.

Tokens act with their owner's role. Messages are in English (machines read `code` and `fields`),
so they are plain strings here, not catalogue entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, g, request
from werkzeug.exceptions import HTTPException

from inventory.db import get_session
from inventory.errors import InvalidInput, NotFound
from inventory.i18n import render
from inventory.models import Role
from inventory.services.tokens import user_for_token

bp = Blueprint("api", __name__, url_prefix="/api/v1")
F = TypeVar("F", bound=Callable[..., Any])
MAX_PER_PAGE = 500
FieldErrors = dict[str, list[tuple[str, dict[str, Any]]]]


def error(status: int, code: str, message: str, fields: dict[str, list[str]] | None = None) -> Any:
    return {"code": code, "message": message, "fields": fields or {}}, status


@bp.before_request
def _authenticate() -> Any:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    user = (
        user_for_token(session=get_session(), secret=secret.strip())
        if scheme.lower() == "bearer"
        else None
    )
    if user is None:
        body, status = error(
            401, "unauthorized", "A valid API token is required (Authorization: Bearer <token>)."
        )
        return body, status, {"WWW-Authenticate": 'Bearer realm="vigie"'}
    g.api_user = user
    return None


def requires(role: Role) -> Callable[[F], F]:
    """The token's owner needs at least `role`; checked before the body is even read."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not Role(g.api_user.role).allows(role):
                return error(403, "forbidden", f"This needs the {role} role.")
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def actor() -> str:
    return str(g.api_user.username)


@bp.errorhandler(InvalidInput)
def _invalid(exc: InvalidInput) -> Any:
    # Whatever a service had started is thrown away: bad input changes nothing.
    get_session().rollback()
    fields = {
        name: [render(m, {k: v for k, v in p.items() if k != "asset_id"}) for m, p in messages]
        for name, messages in exc.fields.items()
    }
    return error(
        409 if exc.__class__.__name__ == "Conflict" else 422,
        "invalid",
        render(exc.message, exc.params),
        fields,
    )


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> Any:
    return error(404, "not_found", render(exc.message, exc.params))


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException) -> Any:
    return error(
        exc.code or 500, str(exc.name).lower().replace(" ", "_"), exc.description or str(exc.name)
    )


# --- reading requests -------------------------------------------------------------------------


def json_body(what: str = "the asset's fields") -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput(f"Send a JSON object with {what} (Content-Type: application/json).")
    return body


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """A whole-number argument, clamped to [low, high]; anything else is refused."""
    try:
        return max(low, min(high, int(request.args.get(name, default))))
    except ValueError:
        raise InvalidInput("%(name)s must be a whole number.", name=name) from None


def text_arg(name: str, limit: int = 200) -> str:
    """A free-text argument, printable characters only (PostgreSQL refuses NUL in text)."""
    return "".join(ch for ch in request.args.get(name, "") if ch.isprintable())[:limit]


def choice_arg(name: str, allowed: Iterable[str], errors: FieldErrors, default: str = "") -> str:
    """A query argument from a fixed set; an unknown value is an error on that field, not an
    empty (or complete) list a script would take for an answer."""
    value = request.args.get(name, default)
    allowed = list(allowed)
    if value and value not in allowed:
        errors[name] = [
            (
                "%(value)r is not one of: %(allowed)s.",
                {"value": value[:40], "allowed": ", ".join(allowed)},
            )
        ]
        return default
    return value


def iso(value: datetime | None) -> str | None:
    """ISO-8601 in UTC to the second (columns are aware UTC datetimes), or None."""
    return value.isoformat(timespec="seconds") if value else None


def paging_fields(total: int, page: int, per_page: int) -> dict[str, int]:
    """The paging fields of a list answer (as assets); `page` is kept within the pages."""
    pages = max(1, -(-total // per_page))
    return {"total": total, "page": min(max(1, page), pages), "pages": pages, "per_page": per_page}
