"""/api/v1: assets as JSON, authenticated by `Authorization: Bearer <token>`.

Tokens act with their owner's role. Errors answer {"code", "message", "fields"}; messages are
in English (machines read `code` and `fields`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, g, request
from werkzeug.exceptions import HTTPException

from inventory.db import get_session
from inventory.errors import InvalidInput, NotFound
from inventory.i18n import render
from inventory.models import Asset, Role
from inventory.services import assets as asset_service
from inventory.services.tokens import user_for_token

bp = Blueprint("api", __name__, url_prefix="/api/v1")
F = TypeVar("F", bound=Callable[..., Any])
MAX_PER_PAGE = 500


def _error(status: int, code: str, message: str, fields: dict[str, list[str]] | None = None) -> Any:
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
        body, status = _error(
            401, "unauthorized", "A valid API token is required (Authorization: Bearer <token>)."
        )
        return body, status, {"WWW-Authenticate": 'Bearer realm="vigie"'}
    g.api_user = user
    return None


def requires(role: Role) -> Callable[[F], F]:
    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not Role(g.api_user.role).allows(role):
                return _error(403, "forbidden", f"This needs the {role} role.")
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


@bp.errorhandler(InvalidInput)
def _invalid(exc: InvalidInput) -> Any:
    fields = {
        name: [render(m, {k: v for k, v in p.items() if k != "asset_id"}) for m, p in messages]
        for name, messages in exc.fields.items()
    }
    return _error(
        409 if exc.__class__.__name__ == "Conflict" else 422,
        "invalid",
        render(exc.message, exc.params),
        fields,
    )


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> Any:
    return _error(404, "not_found", render(exc.message, exc.params))


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException) -> Any:
    return _error(
        exc.code or 500, str(exc.name).lower().replace(" ", "_"), exc.description or str(exc.name)
    )


def _public(asset: Asset) -> dict[str, Any]:
    return {
        "id": asset.id,
        **asset_service.data_to_record(asset_service.asset_to_data(asset)),
        "archived": asset.is_archived,
        "created_at": asset.created_at.isoformat(),
        "updated_at": asset.updated_at.isoformat(),
    }


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput(
            "Send a JSON object with the asset's fields (Content-Type: application/json)."
        )
    return body


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(request.args.get(name, default))))
    except ValueError:
        raise InvalidInput("%(name)s must be a whole number.", name=name) from None


@bp.get("/assets")
@requires(Role.viewer)
def list_assets() -> Any:
    args = request.args
    patient = args.get("patient_data", "")
    query = asset_service.AssetQuery(
        text=args.get("q", "")[:200],
        kind=args.get("kind", ""),
        zone=args.get("zone", ""),
        site=args.get("site", ""),
        criticality=args.get("criticality", ""),
        patient_data={"true": True, "yes": True, "false": False, "no": False}.get(patient.lower()),
        tag=args.get("tag", "")[:40],
        archived=args.get("archived", "").lower() in {"1", "true", "yes"},
        sort=args.get("sort", "name")
        if args.get("sort", "name") in asset_service.SORT_KEYS
        else "name",
        descending=args.get("order") == "desc",
        page=_int_arg("page", 1, 1, 10_000_000),
        per_page=_int_arg("per_page", 50, 1, MAX_PER_PAGE),
    )
    page = asset_service.list_assets(session=get_session(), query=query)
    return {
        "items": [_public(a) for a in page.items],
        "total": page.total,
        "page": page.page,
        "pages": page.pages,
        "per_page": page.per_page,
    }


@bp.get("/assets/<int:asset_id>")
@requires(Role.viewer)
def get_asset(asset_id: int) -> Any:
    return _public(asset_service.get_asset(session=get_session(), asset_id=asset_id))


@bp.post("/assets")
@requires(Role.admin)
def create_asset() -> Any:
    data = asset_service.validate_asset(_body())
    asset = asset_service.create_asset(
        session=get_session(), data=data, actor=g.api_user.username, source="api"
    )
    return _public(asset), 201, {"Location": f"/api/v1/assets/{asset.id}"}


@bp.put("/assets/<int:asset_id>")
@requires(Role.admin)
def replace_asset(asset_id: int) -> Any:
    """Full replacement: fields left out take their default (like a form submitted empty)."""
    db = get_session()
    data = asset_service.validate_asset(_body())
    asset = asset_service.update_asset(
        session=db, asset_id=asset_id, data=data, actor=g.api_user.username, source="api"
    )
    return _public(asset)


@bp.patch("/assets/<int:asset_id>")
@requires(Role.admin)
def patch_asset(asset_id: int) -> Any:
    """Partial update: only the fields sent change."""
    db = get_session()
    current = asset_service.data_to_record(
        asset_service.asset_to_data(asset_service.get_asset(session=db, asset_id=asset_id))
    )
    data = asset_service.validate_asset({**current, **_body()})
    asset = asset_service.update_asset(
        session=db, asset_id=asset_id, data=data, actor=g.api_user.username, source="api"
    )
    return _public(asset)


@bp.delete("/assets/<int:asset_id>")
@requires(Role.admin)
def archive_asset(asset_id: int) -> Any:
    """Archives (never erases): the history is kept."""
    asset = asset_service.archive_asset(
        session=get_session(), asset_id=asset_id, actor=g.api_user.username, source="api"
    )
    return _public(asset)
