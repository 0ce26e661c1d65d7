"""/api/v1/assets: the inventory, with the same validation as the forms and the import."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from inventory.api.base import MAX_PER_PAGE, actor, bp, int_arg, json_body, requires, text_arg
from inventory.db import get_session
from inventory.models import Asset, Role
from inventory.services import assets as asset_service
from inventory.services import vulns


def _public(asset: Asset) -> dict[str, Any]:
    return {
        "id": asset.id,
        **asset_service.data_to_record(asset_service.asset_to_data(asset)),
        "archived": asset.is_archived,
        "created_at": asset.created_at.isoformat(),
        "updated_at": asset.updated_at.isoformat(),
    }


@bp.get("/assets")
@requires(Role.viewer)
def list_assets() -> Any:
    args = request.args
    patient = args.get("patient_data", "")
    query = asset_service.AssetQuery(
        text=text_arg("q"),
        kind=text_arg("kind"),
        zone=text_arg("zone"),
        site=text_arg("site"),
        criticality=text_arg("criticality"),
        patient_data={"true": True, "yes": True, "false": False, "no": False}.get(patient.lower()),
        tag=text_arg("tag", 40),
        archived=args.get("archived", "").lower() in {"1", "true", "yes"},
        sort=args.get("sort", "name")
        if args.get("sort", "name") in asset_service.SORT_KEYS
        else "name",
        descending=args.get("order") == "desc",
        page=int_arg("page", 1, 1, 10_000_000),
        per_page=int_arg("per_page", 50, 1, MAX_PER_PAGE),
    )
    page = asset_service.list_assets(session=get_session(), query=query)
    return {
        "items": [_public(a) for a in page.items],
        "total": page.total,
        "page": page.page,
        "pages": page.pages,
        "per_page": page.per_page,
    }


def _rematch(asset_id: int) -> None:
    """A new or edited asset is matched against the imported vulnerability feeds at once."""
    vulns.rematch_edited(
        session=get_session(),
        asset_ids=[asset_id],
        options=vulns.options_from(current_app.extensions["inventory.settings"]),
        actor=actor(),
    )


@bp.get("/assets/<int:asset_id>")
@requires(Role.viewer)
def get_asset(asset_id: int) -> Any:
    return _public(asset_service.get_asset(session=get_session(), asset_id=asset_id))


@bp.post("/assets")
@requires(Role.admin)
def create_asset() -> Any:
    data = asset_service.validate_asset(json_body())
    asset = asset_service.create_asset(
        session=get_session(), data=data, actor=actor(), source="api"
    )
    _rematch(asset.id)  # type: ignore[arg-type]
    return _public(asset), 201, {"Location": f"/api/v1/assets/{asset.id}"}


@bp.put("/assets/<int:asset_id>")
@requires(Role.admin)
def replace_asset(asset_id: int) -> Any:
    """Full replacement: fields left out take their default (like a form submitted empty)."""
    db = get_session()
    data = asset_service.validate_asset(json_body())
    asset = asset_service.update_asset(
        session=db, asset_id=asset_id, data=data, actor=actor(), source="api"
    )
    _rematch(asset_id)
    return _public(asset)


@bp.patch("/assets/<int:asset_id>")
@requires(Role.admin)
def patch_asset(asset_id: int) -> Any:
    """Partial update: only the fields sent change."""
    db = get_session()
    current = asset_service.data_to_record(
        asset_service.asset_to_data(asset_service.get_asset(session=db, asset_id=asset_id))
    )
    data = asset_service.validate_asset({**current, **json_body()})
    asset = asset_service.update_asset(
        session=db, asset_id=asset_id, data=data, actor=actor(), source="api"
    )
    _rematch(asset_id)
    return _public(asset)


@bp.delete("/assets/<int:asset_id>")
@requires(Role.admin)
def archive_asset(asset_id: int) -> Any:
    """Archives (never erases): the history is kept."""
    asset = asset_service.archive_asset(
        session=get_session(), asset_id=asset_id, actor=actor(), source="api"
    )
    return _public(asset)
