"""CSV and JSON import/export of assets, following the contract in PRODUCT.md.

An import is all or nothing: every row is parsed and checked (fields, duplicates inside the file,
clashes with live assets) before anything is written, and the writes happen in one transaction.
Rows are matched to live assets by name: a known name updates that asset, a new one creates it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from inventory.collector import young_collections_only
from inventory.errors import ImportRejected, InvalidInput
from inventory.i18n import N_
from inventory.models import Asset, AssetAddress, AssetData
from inventory.services import assets as asset_service
from inventory.validators import parse_name

# Column order of exports; imports accept the same names (case and spaces ignored).
COLUMNS: tuple[str, ...] = (
    "name",
    "addresses",
    "hostnames",
    "mac",
    "kind",
    "site",
    "zone",
    "owner",
    "criticality",
    "holds_patient_data",
    "exposure",
    "expected_services",
    "ae_titles",
    "software",
    "tags",
    "audit_interval",
    "optional_checks",
    "notes",
)
LIST_COLUMNS = {
    "addresses",
    "hostnames",
    "expected_services",
    "ae_titles",
    "software",
    "tags",
    "optional_checks",
}
JSON_FORMAT = "vigie-assets"
JSON_VERSION = 1


@dataclass
class RowProblem:
    """One reason a row was refused; `line` is the CSV line or the JSON item number."""

    line: int
    field: str
    message: str
    params: dict[str, Any] = dataclass_field(default_factory=dict)


@dataclass
class ImportPlan:
    """What an import would do, computed before writing anything (also the UI's preview)."""

    rows: list[tuple[int, AssetData, int | None]]  # (line, data, id of the asset it updates)
    problems: list[RowProblem]

    @property
    def creates(self) -> int:
        return sum(1 for _, _, asset_id in self.rows if asset_id is None)

    @property
    def updates(self) -> int:
        return len(self.rows) - self.creates


@dataclass
class ImportResult:
    created: int
    updated: int
    unchanged: int


# --- reading --------------------------------------------------------------------------------


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheets on French Windows save "CSV (point-virgule)" in Windows-1252.
        return content.decode("cp1252", errors="strict")


def _normalise_header(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def read_csv(content: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a CSV file as (line number, {column: text}); `;` or `,` separated."""
    try:
        text = _decode(content)
    except UnicodeDecodeError:
        raise ImportRejected(
            [RowProblem(1, "", N_("The file is not text (UTF-8 or Windows-1252)."))]
        ) from None
    if not text.strip():
        raise ImportRejected([RowProblem(1, "", N_("The file is empty."))])
    first = text.split("\n", 1)[0]
    delimiter = (
        ";"
        if first.count(";") > first.count(",")
        else ("\t" if "\t" in first and "," not in first else ",")
    )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = [_normalise_header(h) for h in next(reader)]
        unknown = [h for h in header if h not in COLUMNS]
        problems = [
            RowProblem(
                1,
                h or "?",
                N_("Unknown column %(column)s (known: %(known)s)."),
                {"column": h or "''", "known": ", ".join(COLUMNS)},
            )
            for h in unknown
        ]
        duplicates = {h for h in header if header.count(h) > 1}
        problems += [
            RowProblem(1, h, N_("Column %(column)s appears twice."), {"column": h})
            for h in sorted(duplicates)
        ]
        if "name" not in header:
            problems.append(RowProblem(1, "name", N_("The file needs a name column.")))
        if problems:
            raise ImportRejected(problems)
        end = reader.line_num
        for values in reader:
            # Report where the row starts: a quoted cell may run over several lines.
            line, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in values):
                continue
            if len(values) != len(header):
                yield (
                    line,
                    {
                        "__error__": (
                            N_("This row has %(got)d cells; the header has %(want)d."),
                            {"got": len(values), "want": len(header)},
                        )
                    },
                )
                continue
            yield line, {h: _unguard(cell) for h, cell in zip(header, values, strict=True)}
    except csv.Error as exc:
        raise ImportRejected(
            [
                RowProblem(
                    reader.line_num,
                    "",
                    N_("The CSV is malformed: %(reason)s."),
                    {"reason": str(exc)},
                )
            ]
        ) from None


def read_json(content: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    """Items of a JSON export (`{"assets": [...]}`) or a bare list, numbered from 1."""
    try:
        document = json.loads(_decode(content))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        where = getattr(exc, "lineno", 1)
        raise ImportRejected(
            [
                RowProblem(
                    where,
                    "",
                    N_("The file is not valid JSON: %(reason)s."),
                    {"reason": getattr(exc, "msg", str(exc))},
                )
            ]
        ) from None
    items = document.get("assets") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise ImportRejected(
            [RowProblem(1, "", N_("Expected a list of assets or an object with an assets list."))]
        )
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            yield number, {"__error__": (N_("Each asset must be an object with named fields."), {})}
            continue
        row = {_normalise_header(str(k)): val for k, val in item.items()}
        unknown = sorted(k for k in row if k not in COLUMNS)
        if unknown:
            yield (
                number,
                {"__error__": (N_("Unknown fields: %(fields)s."), {"fields": ", ".join(unknown)})},
            )
            continue
        yield number, row


def read_rows(content: bytes, fmt: str) -> Iterator[tuple[int, dict[str, Any]]]:
    if fmt == "csv":
        return read_csv(content)
    if fmt == "json":
        return read_json(content)
    raise InvalidInput(N_("Unknown format %(format)s; use csv or json."), format=fmt)


def guess_format(filename: str, content: bytes) -> str:
    lowered = filename.lower()
    if lowered.endswith(".json"):
        return "json"
    if lowered.endswith((".csv", ".txt", ".tsv")):
        return "csv"
    return "json" if content.lstrip()[:1] in (b"{", b"[") else "csv"


# --- planning and applying ------------------------------------------------------------------


@young_collections_only()
def plan_import(*, session: Session, content: bytes, fmt: str) -> ImportPlan:
    """Parse and check every row; nothing is written. Problems list every bad row."""
    problems: list[RowProblem] = []
    parsed: list[tuple[int, AssetData]] = []
    # Names of every row, bad ones included, so a name used twice is reported in the same pass
    # as the rows' other problems rather than after they are fixed.
    row_names: list[tuple[int, str]] = []
    for line, raw in read_rows(content, fmt):
        if "__error__" in raw:
            message, params = raw["__error__"]
            problems.append(RowProblem(line, "", message, params))
            continue
        try:
            data = asset_service.validate_asset(raw)
        except InvalidInput as exc:
            for name, messages in exc.fields.items():
                problems.extend(RowProblem(line, name, m, p) for m, p in messages)
            if "name" not in exc.fields:
                row_names.append((line, parse_name(raw.get("name"))))
            continue
        parsed.append((line, data))
        row_names.append((line, data.name))
    if not parsed and not problems:
        problems.append(RowProblem(1, "", N_("The file has no assets.")))

    # Inside the file: a name or an address may appear once.
    names: dict[str, int] = {}
    for line, name in row_names:
        key = name.lower()
        if key in names:
            problems.append(
                RowProblem(
                    line,
                    "name",
                    N_("%(name)s is already on line %(line)d."),
                    {"name": name, "line": names[key]},
                )
            )
        names.setdefault(key, line)
    addresses: dict[str, tuple[int, str]] = {}
    for line, data in parsed:
        key = data.name.lower()
        for address in data.addresses:
            if address in addresses and addresses[address][1] != key:
                problems.append(
                    RowProblem(
                        line,
                        "addresses",
                        N_("%(address)s is also on line %(line)d."),
                        {"address": address, "line": addresses[address][0]},
                    )
                )
            addresses.setdefault(address, (line, key))

    # Against the database: match names to live assets, and refuse addresses held by another one.
    existing = _live_ids_by_name(session, names)
    holders = _address_holders(session, list(addresses))
    rows: list[tuple[int, AssetData, int | None]] = []
    for line, data in parsed:
        asset_id = existing.get(data.name.lower())
        for address in data.addresses:
            holder = holders.get(address)
            if holder and holder[0] != asset_id and holder[1] not in names:
                problems.append(
                    RowProblem(
                        line,
                        "addresses",
                        N_("%(address)s is already the address of %(name)s."),
                        {"address": address, "name": holder[2], "asset_id": holder[0]},
                    )
                )
        rows.append((line, data, asset_id))
    problems.sort(key=lambda p: p.line)
    return ImportPlan(rows=rows, problems=problems)


def _chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _live_ids_by_name(session: Session, names: dict[str, int]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(list(names)):
        statement = select(Asset.name_key, Asset.id).where(
            Asset.name_key.in_(chunk),
            Asset.archived_at.is_(None),  # type: ignore[attr-defined,union-attr]
        )
        found.update({key: asset_id for key, asset_id in session.execute(statement)})
    return found


def _address_holders(session: Session, addresses: list[str]) -> dict[str, tuple[int, str, str]]:
    """address -> (asset id, name key, name) for live assets holding one of these addresses."""
    found: dict[str, tuple[int, str, str]] = {}
    for chunk in _chunks(addresses):
        statement = (
            select(AssetAddress.address, Asset.id, Asset.name_key, Asset.name)
            .join(Asset, Asset.id == AssetAddress.asset_id)
            .where(AssetAddress.address.in_(chunk), Asset.archived_at.is_(None))  # type: ignore[attr-defined,union-attr]
        )
        for address, asset_id, key, name in session.execute(statement):
            found[str(address)] = (asset_id, key, name)
    return found


@young_collections_only()
def apply_import(
    *, session: Session, plan: ImportPlan, actor: str, source: str = "import"
) -> ImportResult:
    """Write a clean plan in one transaction; refuses a plan that has problems."""
    if plan.problems:
        raise ImportRejected(plan.problems)
    created = updated = unchanged = 0
    try:
        # Addresses may move between assets of the same file: free them all first.
        moving = [asset_id for _, _, asset_id in plan.rows if asset_id is not None]
        # 500 assets a query, their addresses and tags with them (not three queries per asset).
        current = {
            asset.id: asset
            for chunk in _chunks(moving)
            for asset in session.scalars(
                select(Asset).where(Asset.id.in_(chunk))  # type: ignore[union-attr]
            )
        }
        before = {
            asset_id: asset_service.data_to_record(asset_service.asset_to_data(a))
            for asset_id, a in current.items()
            if a is not None
        }
        new: list[AssetData] = []
        for _, data, asset_id in plan.rows:
            if asset_id is None:
                new.append(data)
            elif before.get(asset_id) == asset_service.data_to_record(data):
                unchanged += 1
            else:
                asset_service.update_asset(
                    session=session,
                    asset_id=asset_id,
                    data=data,
                    actor=actor,
                    source=source,
                    commit=False,
                    check=False,
                )
                updated += 1
                if updated % 1000 == 0:
                    session.flush()
        created = len(
            asset_service.create_assets(session=session, items=new, actor=actor, source=source)
        )
        session.commit()
    except Exception:
        session.rollback()
        raise
    return ImportResult(created=created, updated=updated, unchanged=unchanged)


def import_assets(
    *, session: Session, content: bytes, fmt: str, actor: str, source: str = "import"
) -> ImportResult:
    plan = plan_import(session=session, content=content, fmt=fmt)
    return apply_import(session=session, plan=plan, actor=actor, source=source)


# --- export ---------------------------------------------------------------------------------


def _export_record(asset: Asset) -> dict[str, Any]:
    return asset_service.data_to_record(asset_service.asset_to_data(asset))


# A spreadsheet runs a cell starting with = + - @ (or tab/CR) as a formula ("CSV injection").
# Such cells are written with a leading apostrophe, which the importer removes again, so that an
# export opened in Excel is inert and export -> import still round-trips exactly.
_FORMULA = re.compile(r"^'*[=+\-@\t\r]")


def _guard(value: Any) -> Any:
    return "'" + value if isinstance(value, str) and _FORMULA.match(value) else value


def _unguard(value: str) -> str:
    return value[1:] if value.startswith("'") and _FORMULA.match(value) else value


def export_csv(assets: Iterable[Asset]) -> Iterator[str]:
    """CSV text chunks: one header, then one row per asset; lists joined by '; '."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for asset in assets:
        record = _export_record(asset)
        writer.writerow(
            [
                _guard("; ".join(record[c]))
                if c in LIST_COLUMNS
                else ("yes" if record[c] else "no")
                if c == "holds_patient_data"
                else _guard(record[c])
                for c in COLUMNS
            ]
        )
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export_json(assets: Iterable[Asset]) -> Iterator[str]:
    """A JSON document streamed in chunks: {"format", "version", "assets": [...]}."""
    yield f'{{"format": "{JSON_FORMAT}", "version": {JSON_VERSION}, "assets": ['
    first = True
    for asset in assets:
        record = _export_record(asset)
        yield ("\n  " if first else ",\n  ") + json.dumps(
            {c: record[c] for c in COLUMNS}, ensure_ascii=False
        )
        first = False
    yield "\n]}\n"
