"""Maintenance windows: validation, create / change / remove with who and when, and loading them
for the dispatcher. Removed windows are kept (deleted_at) so the record of changes stays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from inventory.errors import InvalidInput, NotFound
from inventory.i18n import N_
from inventory.models import MaintenanceWindow, WindowMode, WindowScope
from inventory.models.types import utcnow, valid_id
from inventory.scheduler.windows import Window, WindowSet, parse_hhmm, resolve_timezone

FieldErrors = dict[str, list[tuple[str, dict[str, Any]]]]
DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass
class WindowData:
    name: str
    scope: str
    value: str
    mode: str
    days: list[int]
    start_time: str
    end_time: str


def _hhmm(raw: Any, field: str, errors: FieldErrors) -> str:
    text = str(raw or "").strip()
    if not text:
        errors.setdefault(field, []).append((N_("Enter a time, e.g. 07:00."), {}))
        return ""
    try:
        return parse_hhmm(text).strftime("%H:%M")
    except ValueError:
        errors.setdefault(field, []).append(
            (N_("%(value)s is not a time (expected e.g. 07:00 or 19:30)."), {"value": text[:20]})
        )
        return ""


def validate_window(raw: Mapping[str, Any]) -> WindowData:
    """Check a submitted window; every problem is reported on its field, at once."""
    errors: FieldErrors = {}
    name = " ".join(str(raw.get("name") or "").split())
    if not name:
        errors.setdefault("name", []).append((N_("Give the window a name."), {}))
    elif len(name) > 100:
        errors.setdefault("name", []).append((N_("At most 100 characters."), {}))
    scope = str(raw.get("scope") or "")
    if scope not in {s.value for s in WindowScope}:
        errors.setdefault("scope", []).append((N_("Choose what the window applies to."), {}))
    value = " ".join(str(raw.get("value") or "").split())
    if scope in {"zone", "site"} and not value:
        message = (
            N_("Enter the network zone, as written on the assets.")
            if scope == "zone"
            else N_("Enter the site, as written on the assets.")
        )
        errors.setdefault("value", []).append((message, {}))
    elif len(value) > 100:
        errors.setdefault("value", []).append((N_("At most 100 characters."), {}))
    if scope == "all":
        value = ""
    mode = str(raw.get("mode") or "")
    if mode not in {m.value for m in WindowMode}:
        errors.setdefault("mode", []).append((N_("Choose whether audits are allowed."), {}))
    days_raw: Sequence[Any] = raw.get("days") or []
    days: list[int] = []
    for day in days_raw:
        key = str(day).strip().lower()
        if key in DAY_KEYS:
            days.append(DAY_KEYS.index(key))
        elif key.isdigit() and 0 <= int(key) <= 6:
            days.append(int(key))
        else:
            errors.setdefault("days", []).append(
                (N_("%(value)s is not a day of the week."), {"value": key[:20]})
            )
    if not days and "days" not in errors:
        errors.setdefault("days", []).append((N_("Choose at least one day."), {}))
    start = _hhmm(raw.get("start_time"), "start_time", errors)
    end = _hhmm(raw.get("end_time"), "end_time", errors)
    if start and end and start == end:
        errors.setdefault("end_time", []).append(
            (
                N_(
                    "The end must differ from the start (an end before the start runs past "
                    "midnight)."
                ),
                {},
            )
        )
    if errors:
        raise InvalidInput(N_("Some fields need correcting."), fields=errors)
    return WindowData(name, scope, value, mode, sorted(set(days)), start, end)


def list_windows(*, session: Session) -> list[MaintenanceWindow]:
    return list(
        session.scalars(
            select(MaintenanceWindow)
            .where(MaintenanceWindow.deleted_at.is_(None))
            .order_by(MaintenanceWindow.name, MaintenanceWindow.id)
        ).all()
    )


def get_window(*, session: Session, window_id: int) -> MaintenanceWindow:
    window = session.get(MaintenanceWindow, window_id) if valid_id(window_id) else None
    if window is None or window.deleted_at is not None:
        raise NotFound(N_("No maintenance window with id %(id)s."), id=window_id)
    return window


def _apply(window: MaintenanceWindow, data: WindowData) -> None:
    window.name, window.value = data.name, data.value
    window.scope, window.mode = WindowScope(data.scope), WindowMode(data.mode)
    window.days = list(data.days)
    window.start_time, window.end_time = data.start_time, data.end_time


def create_window(*, session: Session, data: WindowData, actor: str) -> MaintenanceWindow:
    now = utcnow()
    window = MaintenanceWindow(
        name=data.name,
        start_time=data.start_time,
        end_time=data.end_time,
        created_at=now,
        created_by=actor[:64],
        updated_at=now,
        updated_by=actor[:64],
    )
    _apply(window, data)
    session.add(window)
    session.commit()
    return window


def update_window(
    *, session: Session, window_id: int, data: WindowData, actor: str
) -> MaintenanceWindow:
    window = get_window(session=session, window_id=window_id)
    _apply(window, data)
    window.updated_at, window.updated_by = utcnow(), actor[:64]
    session.add(window)
    session.commit()
    return window


def delete_window(*, session: Session, window_id: int, actor: str) -> MaintenanceWindow:
    window = get_window(session=session, window_id=window_id)
    window.deleted_at, window.deleted_by = utcnow(), actor[:64]
    session.add(window)
    session.commit()
    return window


def as_window(row: MaintenanceWindow) -> Window:
    return Window(
        scope=str(row.scope),
        value=row.value,
        mode=str(row.mode),
        days=frozenset(int(d) for d in row.days),
        start=parse_hhmm(row.start_time),
        end=parse_hhmm(row.end_time),
        name=row.name,
    )


def load_window_set(*, session: Session, settings: Any) -> WindowSet:
    """The live windows, in the configured time zone ([general] timezone; else the machine's)."""
    tz = resolve_timezone(settings.general.timezone)
    return WindowSet([as_window(w) for w in list_windows(session=session)], tz=tz)
