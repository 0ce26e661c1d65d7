"""Report schedules: validation (every problem on its field, at once), create / change / remove
with who and when, the ones written in the config file, and running those that are due.

A schedule's next run is kept in its row (next_run_at), computed from its cron timing in the
configured time zone. The scheduler's report job runs the due ones: each is claimed by a guarded
UPDATE of that column, so two processes never run the same slot twice, and runs missed while no
scheduler was up are run once, then the schedule moves on to its next time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from inventory.errors import Conflict, InvalidInput, NotFound
from inventory.i18n import N_
from inventory.models import AssetKind, Report, ReportSchedule, ReportScope
from inventory.models.types import UTCDateTime, utcnow, valid_id
from inventory.reports.cron import CronError, parse_cron
from inventory.scheduler.windows import resolve_timezone
from inventory.services.reports import FORMATS, Scope
from inventory.settings import ReportScheduleSettings, Settings

log = logging.getLogger("inventory.reports")
FieldErrors = dict[str, list[tuple[str, dict[str, Any]]]]
# Deliberately plain: one @, something before it, a dotted domain after it, no spaces or
# brackets (which could smuggle extra headers or addresses into the mail).
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
FOLDER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
MAX_RECIPIENTS = 50


@dataclass
class ScheduleData:
    name: str
    scope: Scope
    cron: str
    formats: list[str]
    language: str
    recipients: list[str] = field(default_factory=list)
    folder: str = ""
    enabled: bool = True


def _add(errors: FieldErrors, name: str, message: str, **params: Any) -> None:
    errors.setdefault(name, []).append((message, params))


def validate_scope(kind: str, value: str) -> Scope:
    """A scope, or InvalidInput on the field `scope_value` (or `scope`) saying what is wrong."""
    errors: FieldErrors = {}
    scope = _scope(kind, value, errors)
    if errors:
        raise InvalidInput(N_("Some fields need correcting."), fields=errors)
    return scope


def _scope(kind: str, raw_value: Any, errors: FieldErrors) -> Scope:
    value = " ".join(str(raw_value or "").split())
    if kind not in {s.value for s in ReportScope}:
        _add(errors, "scope", N_("Choose which assets the report covers."))
        return Scope()
    if kind == "all":
        return Scope()
    if not value:
        message = {
            "site": N_("Enter the site, as written on the assets."),
            "zone": N_("Enter the network zone, as written on the assets."),
            "kind": N_("Choose the kind of asset."),
            "tag": N_("Enter the tag."),
        }[kind]
        _add(errors, "scope_value", message)
    elif len(value) > 100:
        _add(errors, "scope_value", N_("At most 100 characters."))
    elif kind == "kind" and value not in {k.value for k in AssetKind}:
        _add(
            errors,
            "scope_value",
            N_("%(value)s is not a kind of asset (%(kinds)s)."),
            value=value[:40],
            kinds=", ".join(k.value for k in AssetKind),
        )
    elif kind == "tag" and not re.fullmatch(r"[a-z0-9_.:/-]{1,40}", value.lower()):
        _add(errors, "scope_value", N_("%(value)s is not a valid tag."), value=value[:40])
    return Scope(kind, value.lower() if kind in {"kind", "tag"} else value)


def _list(raw: Any) -> list[str]:
    if isinstance(raw, str):
        raw = re.split(r"[\s,;]+", raw)
    return [str(item).strip() for item in raw or [] if str(item).strip()]


def validate_schedule(raw: Mapping[str, Any], *, languages: Sequence[str]) -> ScheduleData:
    """Check a submitted schedule (form, API or config); every problem on its field, at once."""
    errors: FieldErrors = {}
    name = " ".join(str(raw.get("name") or "").split())
    if not name:
        _add(errors, "name", N_("Give the schedule a name."))
    elif len(name) > 100:
        _add(errors, "name", N_("At most 100 characters."))
    scope = _scope(str(raw.get("scope") or ""), raw.get("scope_value"), errors)
    cron = " ".join(str(raw.get("cron") or "").split())
    try:
        cron = parse_cron(cron).expression
    except CronError as exc:
        _add(errors, "cron", exc.message, **exc.params)
    formats = [f.lower() for f in _list(raw.get("formats"))]
    for fmt in formats:
        if fmt not in FORMATS:
            _add(
                errors,
                "formats",
                N_("%(value)s is not a report format (html, pdf, csv, json)."),
                value=fmt[:20],
            )
    if not formats:
        _add(errors, "formats", N_("Choose at least one format."))
    language = str(raw.get("language") or "")
    if language not in languages:
        _add(errors, "language", N_("Choose the language of the report."))
    recipients: list[str] = []
    for address in _list(raw.get("recipients")):
        if len(address) > 254 or not EMAIL.match(address):
            _add(
                errors, "recipients", N_("%(value)s is not an e-mail address."), value=address[:80]
            )
        elif address.lower() not in {r.lower() for r in recipients}:
            recipients.append(address)
    if len(recipients) > MAX_RECIPIENTS:
        _add(errors, "recipients", N_("At most %(max)d recipients."), max=MAX_RECIPIENTS)
    folder = str(raw.get("folder") or "").strip()
    if folder and (not FOLDER.match(folder) or ".." in folder):
        _add(
            errors,
            "folder",
            N_(
                "Write a folder name inside the reports folder (letters, digits, spaces, . _ -), "
                "e.g. weekly."
            ),
        )
    enabled = raw.get("enabled")
    enabled = True if enabled is None else enabled in (True, "y", "yes", "on", "true", "1")
    if errors:
        raise InvalidInput(N_("Some fields need correcting."), fields=errors)
    return ScheduleData(
        name=name,
        scope=scope,
        cron=cron,
        formats=[f for f in FORMATS if f in formats],
        language=language,
        recipients=recipients,
        folder=folder,
        enabled=bool(enabled),
    )


# --- rows -----------------------------------------------------------------------------------


def next_run_after(cron: str, moment: datetime, settings: Settings) -> datetime | None:
    return parse_cron(cron).next_after(moment, resolve_timezone(settings.general.timezone))


def list_schedules(*, session: Session) -> list[ReportSchedule]:
    return list(
        session.scalars(
            select(ReportSchedule)
            .where(ReportSchedule.deleted_at.is_(None))
            .order_by(ReportSchedule.name_key, ReportSchedule.id)
        ).all()
    )


def get_schedule(*, session: Session, schedule_id: int) -> ReportSchedule:
    schedule = session.get(ReportSchedule, schedule_id) if valid_id(schedule_id) else None
    if schedule is None or schedule.deleted_at is not None:
        raise NotFound(N_("No report schedule with id %(id)s."), id=schedule_id)
    return schedule


def find_schedule(*, session: Session, name: str) -> ReportSchedule | None:
    return session.scalars(
        select(ReportSchedule).where(
            ReportSchedule.name_key == " ".join(name.split()).lower(),
            ReportSchedule.deleted_at.is_(None),
        )
    ).first()


def _apply(schedule: ReportSchedule, data: ScheduleData, now: datetime, settings: Settings) -> None:
    changed_timing = schedule.cron != data.cron or schedule.next_run_at is None
    schedule.name, schedule.name_key = data.name, data.name.lower()
    schedule.scope, schedule.scope_value = ReportScope(data.scope.type), data.scope.value
    schedule.cron, schedule.formats = data.cron, list(data.formats)
    schedule.language, schedule.recipients = data.language, list(data.recipients)
    schedule.folder, schedule.enabled = data.folder, data.enabled
    if changed_timing:
        schedule.next_run_at = next_run_after(data.cron, now, settings)


def _save(session: Session, schedule: ReportSchedule) -> ReportSchedule:
    session.add(schedule)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            N_("Some fields need correcting."),
            fields={"name": [(N_("Another report schedule already has this name."), {})]},
        ) from None
    return schedule


def _read_only(schedule: ReportSchedule) -> None:
    if schedule.source == "config":
        raise InvalidInput(
            N_("This schedule is written in the configuration file; change it there.")
        )


def create_schedule(
    *,
    session: Session,
    data: ScheduleData,
    actor: str,
    settings: Settings,
    now: datetime | None = None,
) -> ReportSchedule:
    now = now or utcnow()
    schedule = ReportSchedule(
        name=data.name,
        name_key=data.name.lower(),
        cron=data.cron,
        created_at=now,
        created_by=actor[:64],
        updated_at=now,
        updated_by=actor[:64],
    )
    _apply(schedule, data, now, settings)
    return _save(session, schedule)


def update_schedule(
    *,
    session: Session,
    schedule_id: int,
    data: ScheduleData,
    actor: str,
    settings: Settings,
    now: datetime | None = None,
) -> ReportSchedule:
    now = now or utcnow()
    schedule = get_schedule(session=session, schedule_id=schedule_id)
    _read_only(schedule)
    _apply(schedule, data, now, settings)
    schedule.updated_at, schedule.updated_by = now, actor[:64]
    return _save(session, schedule)


def delete_schedule(*, session: Session, schedule_id: int, actor: str) -> ReportSchedule:
    """Removed schedules are kept, so that their past reports keep their name."""
    schedule = get_schedule(session=session, schedule_id=schedule_id)
    _read_only(schedule)
    schedule.deleted_at, schedule.updated_at, schedule.updated_by = utcnow(), utcnow(), actor[:64]
    session.add(schedule)
    session.commit()
    return schedule


def last_reports(*, session: Session, schedule_ids: Sequence[int]) -> dict[int, Report]:
    """The latest report of each schedule."""
    latest: dict[int, Report] = {}
    if not schedule_ids:
        return latest
    for report in session.scalars(
        select(Report)
        .where(Report.schedule_id.in_(schedule_ids))
        .order_by(Report.generated_at.desc(), Report.id.desc())
    ):
        latest.setdefault(report.schedule_id or 0, report)
    return latest


# --- schedules written in the configuration file ----------------------------------------------


def config_schedule_data(entry: ReportScheduleSettings, settings: Settings) -> ScheduleData:
    kind, _, value = entry.scope.partition(":")
    return validate_schedule(
        {
            "name": entry.name,
            "scope": kind.strip().lower(),
            "scope_value": value,
            "cron": entry.cron,
            "formats": entry.formats,
            "language": entry.language or settings.reports.language,
            "recipients": entry.recipients,
            "folder": entry.folder,
            "enabled": entry.enabled,
        },
        languages=settings.web.languages,
    )


def sync_config_schedules(*, session: Session, settings: Settings, now: datetime) -> int:
    """Make the config file's schedules exist as rows (source "config", read-only in the UI);
    those no longer in the file are removed. Writes only what changed; returns changes made."""
    changes = 0
    wanted: dict[str, ScheduleData] = {}
    for entry in settings.reports.schedules:
        try:
            data = config_schedule_data(entry, settings)
        except InvalidInput as exc:
            log.error(
                "report schedule %r in the config file is not valid: %s", entry.name, exc.fields
            )
            continue
        wanted[data.name.lower()] = data
    existing = {s.name_key: s for s in list_schedules(session=session)}
    for key, data in wanted.items():
        row = existing.get(key)
        if row is not None and row.source != "config":
            log.warning(
                "report schedule %r exists in the web UI too; the config one is ignored", data.name
            )
            continue
        if row is None:
            row = ReportSchedule(
                name=data.name,
                name_key=key,
                cron=data.cron,
                source="config",
                created_at=now,
                created_by="config",
                updated_at=now,
                updated_by="config",
            )
        elif _same(row, data):
            continue
        _apply(row, data, now, settings)
        row.updated_at = now
        session.add(row)
        changes += 1
    for key, row in existing.items():
        if row.source == "config" and key not in wanted:
            row.deleted_at, row.updated_at, row.updated_by = now, now, "config"
            session.add(row)
            changes += 1
    if changes:
        try:
            session.commit()
        except IntegrityError:  # another process synced at the same moment
            session.rollback()
            return 0
    return changes


def _same(row: ReportSchedule, data: ScheduleData) -> bool:
    return (
        row.name == data.name
        and str(row.scope) == data.scope.type
        and row.scope_value == data.scope.value
        and row.cron == data.cron
        and list(row.formats) == data.formats
        and row.language == data.language
        and list(row.recipients) == data.recipients
        and row.folder == data.folder
        and row.enabled == data.enabled
    )


# --- running due schedules --------------------------------------------------------------------


def claim_due(*, session: Session, settings: Settings, now: datetime) -> list[ReportSchedule]:
    """The enabled schedules whose time has come, each moved on to its next time by a guarded
    UPDATE: a schedule claimed here is claimed by nobody else for this slot."""
    from sqlalchemy import literal

    claimed = []
    due = session.scalars(
        select(ReportSchedule)
        .where(
            ReportSchedule.deleted_at.is_(None),
            ReportSchedule.enabled.is_(True),
            ReportSchedule.next_run_at <= now,  # type: ignore[operator]
        )
        .order_by(ReportSchedule.next_run_at, ReportSchedule.id)
    ).all()
    for schedule in due:
        slot = schedule.next_run_at
        upcoming = next_run_after(schedule.cron, now, settings)
        result = session.execute(
            update(ReportSchedule)
            .where(
                ReportSchedule.id == schedule.id,
                ReportSchedule.next_run_at == literal(slot, UTCDateTime()),
            )
            .values(
                next_run_at=literal(upcoming, UTCDateTime()) if upcoming else None,
                last_run_at=literal(now, UTCDateTime()),
            )
        )
        session.commit()
        if getattr(result, "rowcount", 0) == 1:
            session.refresh(schedule)
            claimed.append(schedule)
    return claimed
