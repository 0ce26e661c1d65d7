"""Asset rules: validation of a whole asset, create/update/archive with history, and the list query.

Every function takes its session and actor by keyword and commits its own work, so the web views,
the API, the CLI and the importer share one definition of what a valid asset is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import netaddr
from sqlalchemy import case, func, insert, select, true
from sqlalchemy.orm import selectinload
from sqlmodel import Session

from inventory import validators as v
from inventory.errors import Conflict, InvalidInput, NotFound
from inventory.i18n import N_
from inventory.models import (
    Asset,
    AssetAddress,
    AssetChange,
    AssetData,
    AssetKind,
    AssetTag,
    ChangeAction,
    Criticality,
    Exposure,
)
from inventory.models.types import utcnow, valid_id
from inventory.settings import AssetSettings

FieldErrors = dict[str, list[tuple[str, dict[str, Any]]]]


def _owner(value: Any) -> str:
    return v.parse_label(value, max_length=200)


# Field name -> parser giving the normalised value stored in AssetData.
FIELD_PARSERS: dict[str, Callable[[Any], Any]] = {
    "name": v.parse_name,
    "addresses": lambda value: [str(a) for a in v.parse_addresses(value)],
    "hostnames": v.parse_hostnames,
    "mac": v.parse_mac,
    "kind": lambda value: v.parse_choice(value, [k.value for k in AssetKind], default="other"),
    "site": v.parse_label,
    "zone": v.parse_label,
    "owner": _owner,
    "criticality": lambda value: v.parse_choice(
        value, [c.value for c in Criticality], default="medium"
    ),
    "holds_patient_data": v.parse_bool,
    "exposure": lambda value: v.parse_choice(
        value, [e.value for e in Exposure], default="internal"
    ),
    "expected_services": lambda value: [str(s) for s in v.parse_services(value)],
    "ae_titles": v.parse_ae_titles,
    "software": v.parse_cpes,
    "tags": v.parse_tags,
    "audit_interval": v.parse_interval,
    "optional_checks": v.parse_optional_checks,
    "notes": v.parse_notes,
}
ASSET_FIELDS: tuple[str, ...] = tuple(FIELD_PARSERS)


def validate_asset(raw: Mapping[str, Any]) -> AssetData:
    """Parse every field of a submitted asset; all problems are reported at once."""
    errors: FieldErrors = {}
    values: dict[str, Any] = {}
    unknown = sorted(set(raw) - set(FIELD_PARSERS))
    if unknown:
        errors["_"] = [(N_("Unknown fields: %(fields)s."), {"fields": ", ".join(unknown)})]
    for name, parse in FIELD_PARSERS.items():
        try:
            values[name] = parse(raw.get(name))
        except v.FieldError as exc:
            errors.setdefault(name, []).append((exc.message, exc.params))
    if errors:
        raise InvalidInput(N_("Some fields need correcting."), fields=errors)
    return AssetData(**values)


def asset_to_data(asset: Asset) -> AssetData:
    """The stored asset in the same normalised shape the validators produce."""
    return AssetData(
        name=asset.name,
        kind=asset.kind,
        site=asset.site,
        zone=asset.zone,
        owner=asset.owner,
        criticality=asset.criticality,
        holds_patient_data=asset.holds_patient_data,
        exposure=asset.exposure,
        mac=asset.mac,
        notes=asset.notes,
        audit_interval=asset.audit_interval,
        addresses=[str(a) for a in asset.address_list],
        hostnames=list(asset.hostnames),
        expected_services=[
            str(v.ExpectedService(s["port"], s["protocol"], s.get("name", "")))
            for s in asset.expected_services
        ],
        ae_titles=list(asset.ae_titles),
        software=list(asset.software),
        tags=asset.tag_list,
        optional_checks=list(asset.optional_checks),
    )


def data_to_record(data: AssetData) -> dict[str, Any]:
    """AssetData as a flat, comparable dict (the notation of exports and of the history)."""
    record = data.model_dump(mode="json")
    record["audit_interval"] = v.format_interval(data.audit_interval)
    return record


def _search_text(data: AssetData) -> str:
    parts = [data.name, *data.addresses, *data.hostnames, *data.tags, *data.ae_titles, data.mac]
    return " ".join(p for p in parts if p).lower()


def _columns(data: AssetData) -> dict[str, Any]:
    """The asset row's own columns for `data` (addresses and tags have rows of their own)."""
    values = {
        name: getattr(data, name)
        for name in (
            "name",
            "kind",
            "site",
            "zone",
            "owner",
            "criticality",
            "holds_patient_data",
            "exposure",
            "mac",
            "notes",
            "audit_interval",
            "hostnames",
            "ae_titles",
            "software",
            "optional_checks",
        )
    }
    values["name_key"] = data.name.lower()
    values["expected_services"] = [v.parse_service(s).as_dict() for s in data.expected_services]
    values["search_text"] = _search_text(data)
    return values


def _creation_changes(data: AssetData) -> dict[str, list[Any]]:
    """The "created" history entry: every value that is set, as [None, new]."""
    record = data_to_record(data)
    return {k: [None, val] for k, val in record.items() if val not in ("", [], None, False)}


def _apply(asset: Asset, data: AssetData) -> None:
    for name, value in _columns(data).items():
        setattr(asset, name, value)
    current = [str(a) for a in asset.address_list]
    if current != data.addresses:
        asset.addresses = [
            AssetAddress(address=v.parse_address(a), position=i)
            for i, a in enumerate(data.addresses)
        ]
    if asset.tag_list != sorted(data.tags):
        asset.tags = [AssetTag(tag=t) for t in sorted(data.tags)]


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: [before.get(k), after[k]] for k in after if before.get(k) != after[k]}


def conflicts(*, session: Session, data: AssetData, exclude_id: int | None = None) -> FieldErrors:
    """Clashes with other live assets: the same name, or an address already in use."""
    errors: FieldErrors = {}
    same_name = select(Asset.id, Asset.name).where(
        Asset.name_key == data.name.lower(),
        Asset.archived_at.is_(None),  # type: ignore[union-attr]
    )
    if exclude_id is not None:
        same_name = same_name.where(Asset.id != exclude_id)
    for other_id, other_name in session.exec(same_name).all():  # type: ignore[call-overload]
        errors.setdefault("name", []).append(
            (
                N_("Another asset is already called %(name)s."),
                {"name": other_name, "asset_id": other_id},
            )
        )
    if data.addresses:
        taken = (
            select(AssetAddress.address, Asset.id, Asset.name)
            .join(Asset, Asset.id == AssetAddress.asset_id)
            .where(
                AssetAddress.address.in_(data.addresses),  # type: ignore[attr-defined]
                Asset.archived_at.is_(None),  # type: ignore[union-attr]
            )
        )
        if exclude_id is not None:
            taken = taken.where(Asset.id != exclude_id)
        for address, other_id, other_name in session.exec(taken).all():  # type: ignore[call-overload]
            errors.setdefault("addresses", []).append(
                (
                    N_("%(address)s is already the address of %(name)s."),
                    {"address": str(address), "name": other_name, "asset_id": other_id},
                )
            )
    return errors


def create_asset(
    *,
    session: Session,
    data: AssetData,
    actor: str,
    source: str = "web",
    commit: bool = True,
    check: bool = True,
) -> Asset:
    """Add an asset and its "created" history entry; `check=False` when the caller already did."""
    if check:
        clashes = conflicts(session=session, data=data)
        if clashes:
            raise Conflict(N_("Some fields need correcting."), fields=clashes)
    asset = Asset(name=data.name, name_key=data.name.lower())
    _apply(asset, data)
    session.add(asset)
    session.add(
        AssetChange(
            asset=asset,
            actor=actor,
            action=ChangeAction.created,
            source=source,
            changes=_creation_changes(data),
        )
    )
    from inventory.services import schedule as schedule_service  # due at once

    schedule_service.asset_created(session=session, asset=asset, now=utcnow())
    if commit:
        session.commit()
    return asset


def create_assets(
    *,
    session: Session,
    items: Sequence[AssetData],
    actor: str,
    source: str = "import",
    batch: int = 1000,
) -> list[int]:
    """Add many new assets, with the rows create_asset would write, in bulk INSERTs; no commit.

    For imports: building an ORM object per asset, address, tag and history entry was most of
    the time of a 50,000-row file. The caller has checked conflicts (the import plan does).
    """
    ids: list[int] = []
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        now = utcnow()
        # The new rows' ids come back in no set order (asking for the order makes SQLAlchemy
        # insert SQLite rows one at a time); new assets are live, so their unique names tell
        # which is which. render_nulls: one batch for the chunk, not one per run of rows with
        # the same unset fields.
        statement = insert(Asset).returning(Asset.name_key, Asset.id)  # type: ignore[call-overload]
        by_key: dict[str, int] = dict(
            session.execute(
                statement.execution_options(render_nulls=True),
                [{**_columns(data), "created_at": now, "updated_at": now} for data in chunk],
            ).all()
        )
        new_ids = [by_key[data.name.lower()] for data in chunk]
        pairs = list(zip(new_ids, chunk, strict=True))
        addresses = [
            {"asset_id": asset_id, "address": address, "position": position}
            for asset_id, data in pairs
            for position, address in enumerate(data.addresses)
        ]
        tags = [
            {"asset_id": asset_id, "tag": tag}
            for asset_id, data in pairs
            for tag in sorted(data.tags)
        ]
        if addresses:
            session.execute(insert(AssetAddress), addresses)
        if tags:
            session.execute(insert(AssetTag), tags)
        session.execute(
            insert(AssetChange),
            [
                {
                    "asset_id": asset_id,
                    "at": now,
                    "actor": actor,
                    "action": ChangeAction.created,
                    "source": source,
                    "changes": _creation_changes(data),
                }
                for asset_id, data in pairs
            ],
        )
        ids.extend(new_ids)
    return ids


def update_asset(
    *,
    session: Session,
    asset_id: int,
    data: AssetData,
    actor: str,
    source: str = "web",
    commit: bool = True,
    check: bool = True,
) -> Asset:
    asset = get_asset(session=session, asset_id=asset_id)
    if asset.is_archived:
        raise InvalidInput(N_("This asset is archived; restore it before editing."))
    if check:
        clashes = conflicts(session=session, data=data, exclude_id=asset_id)
        if clashes:
            raise Conflict(N_("Some fields need correcting."), fields=clashes)
    before = data_to_record(asset_to_data(asset))
    changes = _diff(before, data_to_record(data))
    if not changes:
        return asset
    _apply(asset, data)
    asset.updated_at = utcnow()
    session.add(
        AssetChange(
            asset_id=asset_id,
            actor=actor,
            action=ChangeAction.updated,
            source=source,
            changes=changes,
        )
    )
    from inventory.services import schedule as schedule_service  # new addresses: due at once

    schedule_service.asset_edited(session=session, asset_id=asset_id, changes=changes, now=utcnow())
    if commit:
        session.commit()
    return asset


def archive_asset(*, session: Session, asset_id: int, actor: str, source: str = "web") -> Asset:
    """Archive, never erase: the asset leaves the lists and frees its addresses, history stays."""
    asset = get_asset(session=session, asset_id=asset_id)
    if asset.is_archived:
        return asset
    asset.archived_at = asset.updated_at = utcnow()
    session.add(
        AssetChange(asset_id=asset_id, actor=actor, action=ChangeAction.archived, source=source)
    )
    from inventory.services import schedule as schedule_service  # audited no more

    schedule_service.asset_archived(session=session, asset_id=asset_id)
    session.commit()
    return asset


def restore_asset(*, session: Session, asset_id: int, actor: str, source: str = "web") -> Asset:
    asset = get_asset(session=session, asset_id=asset_id)
    if not asset.is_archived:
        return asset
    clashes = conflicts(session=session, data=asset_to_data(asset), exclude_id=asset_id)
    if clashes:
        raise Conflict(
            N_(
                "This asset cannot be restored: its name or an address is now used by another "
                "asset."
            ),
            fields=clashes,
        )
    asset.archived_at = None
    asset.updated_at = utcnow()
    session.add(
        AssetChange(asset_id=asset_id, actor=actor, action=ChangeAction.restored, source=source)
    )
    from inventory.services import schedule as schedule_service  # due at once

    schedule_service.asset_restored(session=session, asset_id=asset_id, now=utcnow())
    session.commit()
    return asset


def default_interval(*, criticality: str, defaults: AssetSettings) -> int:
    """Seconds between audits for an asset with no interval of its own (config, by criticality)."""
    seconds = v.parse_interval(getattr(defaults, f"default_interval_{Criticality(criticality)}"))
    assert seconds is not None  # settings validation refuses empty defaults
    return seconds


def get_asset(*, session: Session, asset_id: int) -> Asset:
    asset = session.get(Asset, asset_id) if valid_id(asset_id) else None
    if asset is None:
        raise NotFound(N_("No asset with id %(id)s."), id=asset_id)
    return asset


def find_live_asset(*, session: Session, name: str) -> Asset | None:
    return session.scalars(
        select(Asset).where(Asset.name_key == name.strip().lower(), Asset.archived_at.is_(None))  # type: ignore[union-attr]
    ).first()


def asset_history(*, session: Session, asset_id: int) -> Sequence[AssetChange]:
    return session.scalars(
        select(AssetChange)
        .where(AssetChange.asset_id == asset_id)
        .order_by(AssetChange.at.desc(), AssetChange.id.desc())  # type: ignore[attr-defined,union-attr]
    ).all()


# --- the list -------------------------------------------------------------------------------

SORT_KEYS = ("name", "kind", "site", "zone", "criticality", "updated")
_CRITICALITY_RANK = case(
    {c.value: i for i, c in enumerate(Criticality)}, value=Asset.criticality, else_=-1
)


@dataclass
class AssetQuery:
    """What the list shows: free text, filters, sort and page (all optional)."""

    text: str = ""
    kind: str = ""
    zone: str = ""
    site: str = ""
    criticality: str = ""
    patient_data: bool | None = None
    tag: str = ""
    archived: bool = False
    sort: str = "name"
    descending: bool = False
    page: int = 1
    per_page: int = 50


@dataclass
class Page:
    items: list[Any]
    total: int
    page: int
    per_page: int
    pages: int = field(init=False)

    def __post_init__(self) -> None:
        self.pages = max(1, -(-self.total // self.per_page))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _canonical_address(word: str) -> str:
    """An IPv6 address typed in any spelling searches as stored (2001:0db8::1 -> 2001:db8::1)."""
    if ":" in word and netaddr.valid_ipv6(word):
        return str(netaddr.IPAddress(word))
    return word


def _filtered(query: AssetQuery, *columns: Any) -> Any:
    """select(*columns) from the assets the query shows, in no particular order."""
    statement = select(*columns).select_from(Asset)
    for word in query.text.lower().split()[:8]:
        word = _canonical_address(word)
        statement = statement.where(
            Asset.search_text.like(f"%{_escape_like(word)}%", escape="\\")  # type: ignore[attr-defined]
        )
    for name in ("kind", "zone", "site", "criticality"):
        value = getattr(query, name)
        if value:
            statement = statement.where(getattr(Asset, name) == value)
    if query.patient_data is not None:
        statement = statement.where(Asset.holds_patient_data == query.patient_data)
    if query.tag:
        statement = statement.where(
            Asset.id.in_(select(AssetTag.asset_id).where(AssetTag.tag == query.tag.lower()))  # type: ignore[union-attr]
        )
    if query.archived:
        return statement.where(Asset.archived_at.is_not(None))  # type: ignore[union-attr]
    by_name = query.sort == "name" or query.sort not in SORT_KEYS
    if statement.whereclause is None and by_name:
        # The live-name index gives this page directly.
        return statement.where(Asset.archived_at.is_(None))  # type: ignore[union-attr]
    # Otherwise read the table (or a filter's index) and sort the matches. Without statistics
    # SQLite takes "archived_at IS NULL" for a selective use of the live-name index and fetches
    # the live rows one by one through it, five times slower than a plain scan at 100,000
    # assets; written as a comparison, the condition no longer matches that index.
    live = Asset.archived_at.is_(None) == true()  # type: ignore[union-attr]
    return statement.where(live)  # type: ignore[arg-type]


def list_assets(*, session: Session, query: AssetQuery) -> Page:
    total = session.scalar(_filtered(query, func.count())) or 0
    order = {
        "name": Asset.name_key,
        "kind": Asset.kind,
        "site": Asset.site,
        "zone": Asset.zone,
        "criticality": _CRITICALITY_RANK,
        "updated": Asset.updated_at,
    }.get(query.sort, Asset.name_key)
    primary = order.desc() if query.descending else order.asc()  # type: ignore[union-attr]
    page = max(1, query.page)
    pages = max(1, -(-total // query.per_page))
    page = min(page, pages)
    # The page's ids first, then their rows: sorting carries ids, not whole assets.
    ties = (Asset.id,) if order is Asset.name_key else (Asset.name_key, Asset.id)
    ids = session.scalars(
        _filtered(query, Asset.id)
        .order_by(primary, *ties)
        .offset((page - 1) * query.per_page)
        .limit(query.per_page)
    ).all()
    rows = session.scalars(
        select(Asset)
        .where(Asset.id.in_(ids))  # type: ignore[union-attr]
        .options(selectinload(Asset.addresses), selectinload(Asset.tags))  # type: ignore[arg-type]
    ).all()
    by_id = {asset.id: asset for asset in rows}
    return Page(items=[by_id[i] for i in ids], total=total, page=page, per_page=query.per_page)


def distinct_values(*, session: Session, column: str) -> list[str]:
    """Sites or zones in use by live assets, for the filter menus."""
    col = {"site": Asset.site, "zone": Asset.zone}[column]
    return [
        value
        for value in session.scalars(
            select(col).where(Asset.archived_at.is_(None), col != "").distinct().order_by(col)  # type: ignore[union-attr]
        ).all()
    ]


def all_tags(*, session: Session) -> list[str]:
    return list(session.scalars(select(AssetTag.tag).distinct().order_by(AssetTag.tag)).all())


def live_assets(*, session: Session) -> Iterable[Asset]:
    """Every live asset, streamed in name order (exports)."""
    statement = (
        select(Asset)
        .where(Asset.archived_at.is_(None))  # type: ignore[union-attr]
        .order_by(Asset.name_key)
        .execution_options(yield_per=1000)
    )
    yield from session.scalars(statement)


__all__ = [
    "ASSET_FIELDS",
    "AssetQuery",
    "Page",
    "archive_asset",
    "asset_history",
    "asset_to_data",
    "conflicts",
    "create_asset",
    "create_assets",
    "data_to_record",
    "find_live_asset",
    "get_asset",
    "list_assets",
    "restore_asset",
    "update_asset",
    "validate_asset",
]
