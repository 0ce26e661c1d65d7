"""Deliveries of a report: one per e-mail recipient, one for the folder; tried at once, retried
with a growing delay when they fail, and visible (with the last error) on the report's page.

A delivery is claimed before it is tried (status "sending" until a deadline, by a guarded
UPDATE), so the scheduler's retry job and a person pressing "Retry" never send it twice; a
process that dies while sending leaves a claim that simply runs out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, literal, or_, select, update
from sqlmodel import Session

from inventory.errors import InvalidInput, NotFound
from inventory.i18n import N_
from inventory.models import (
    DeliveryChannel,
    DeliveryStatus,
    Report,
    ReportDelivery,
    ReportSchedule,
)
from inventory.models.types import UTCDateTime, valid_id
from inventory.reports import deliver
from inventory.reports.words import report_title, summary, words_for
from inventory.services.reports import MEDIA_TYPES, file_name, load_snapshot, render
from inventory.settings import Settings

log = logging.getLogger("inventory.reports")
RETRYABLE = (DeliveryStatus.pending, DeliveryStatus.failed, DeliveryStatus.sending)
# How long a claim on a delivery lasts: rendering and sending must be done by then.
CLAIM_SECONDS = 900


def _at(value: datetime) -> Any:
    return literal(value, UTCDateTime())


def reports_folder(settings: Settings) -> Path:
    return (
        Path(settings.reports.folder) if settings.reports.folder else settings.var_dir / "reports"
    )


def create_deliveries(
    *, session: Session, report: Report, schedule: ReportSchedule, now: datetime
) -> list[ReportDelivery]:
    """One delivery per recipient, and one for the schedule's folder if it has one. Commits."""
    rows = [
        ReportDelivery(
            report_id=report.id or 0,
            channel=DeliveryChannel.email,
            target=address,
            created_at=now,
            next_attempt_at=now,
        )
        for address in schedule.recipients
    ]
    if schedule.folder:
        rows.append(
            ReportDelivery(
                report_id=report.id or 0,
                channel=DeliveryChannel.folder,
                target=schedule.folder,
                created_at=now,
                next_attempt_at=now,
            )
        )
    session.add_all(rows)
    session.commit()
    return rows


def list_deliveries(*, session: Session, report_id: int) -> list[ReportDelivery]:
    return list(
        session.scalars(
            select(ReportDelivery)
            .where(ReportDelivery.report_id == report_id)
            .order_by(ReportDelivery.channel, ReportDelivery.target, ReportDelivery.id)
        ).all()
    )


def delivery_counts(*, session: Session, report_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Per report, how many deliveries are in each status (for the reports list)."""
    counts: dict[int, dict[str, int]] = {}
    if not report_ids:
        return counts
    for report_id, status in session.execute(
        select(ReportDelivery.report_id, ReportDelivery.status).where(
            ReportDelivery.report_id.in_(report_ids)
        )
    ):
        bucket = counts.setdefault(report_id, {})
        bucket[str(status)] = bucket.get(str(status), 0) + 1
    return counts


def _claim(session: Session, delivery_id: int, now: datetime) -> bool:
    result = session.execute(
        update(ReportDelivery)
        .where(
            ReportDelivery.id == delivery_id,
            ReportDelivery.status.in_([str(s) for s in RETRYABLE]),
            or_(
                ReportDelivery.next_attempt_at.is_(None), ReportDelivery.next_attempt_at <= _at(now)
            ),
        )
        .values(
            status=str(DeliveryStatus.sending),
            next_attempt_at=_at(now + timedelta(seconds=CLAIM_SECONDS)),
        )
    )
    session.commit()
    return getattr(result, "rowcount", 0) == 1


class _Files:
    """The report's files, rendered once per run however many recipients there are."""

    def __init__(self, session: Session, report: Report) -> None:
        self.report = report
        self.snapshot = load_snapshot(session=session, report_id=report.id or 0)
        self._cache: dict[str, bytes] = {}

    def get(self, fmt: str) -> deliver.Attachment:
        if fmt not in self._cache:
            self._cache[fmt] = render(
                self.snapshot, fmt, report_id=self.report.id, sha256=self.report.sha256
            )
        return deliver.Attachment(
            file_name(self.report, fmt), MEDIA_TYPES[fmt].split(";")[0], self._cache[fmt]
        )

    def all(self) -> list[deliver.Attachment]:
        return [self.get(fmt) for fmt in self.report.formats]


def _link(settings: Settings, report: Report) -> str:
    base = settings.reports.public_url.rstrip("/")
    return f"{base}/reports/{report.id}" if base else ""


def _mail(settings: Settings, files: _Files, to: str) -> tuple[Any, str]:
    snapshot, report = files.snapshot, files.report
    w = words_for(snapshot)
    limit = int(settings.reports.max_attachment_mb * 1024 * 1024)
    packed = deliver.pack(files.all(), limit, f"vigie-report-{report.id}.zip")
    link = _link(settings, report)
    title = report_title(snapshot, w)
    lines = [title, w.when(snapshot["generated_at"]), "", " ".join(summary(snapshot, w)), ""]
    names = ", ".join(f.filename for f in files.all())
    if packed.how == "attached":
        lines.append(w.gettext("Attached: %(files)s.", files=names))
        detail = "attached"
    elif packed.how == "zipped":
        lines.append(
            w.gettext(
                "The report is too large to attach as it is: attached compressed, as %(file)s "
                "(%(files)s).",
                file=packed.attachments[0].filename,
                files=names,
            )
        )
        detail = "zipped"
    else:
        lines.append(
            w.gettext(
                "The report (%(size)s MB) is too large to attach, even compressed: nothing is "
                "attached.",
                size=w.number(round(packed.size / 1024 / 1024, 1)),
            )
        )
        detail = "too-large"
    if link:
        lines.append(w.gettext("Read or download it in Vigie: %(url)s", url=link))
    elif packed.how == "too-large":
        lines.append(
            w.gettext(
                "Read or download it in Vigie, on the Reports page (report no. %(id)s).",
                id=report.id,
            )
        )
    lines += ["", w.gettext("SHA-256 of the JSON version: %(digest)s", digest=report.sha256)]
    subject = w.gettext(
        "%(title)s, %(date)s: %(open)d open findings, %(overdue)d assets overdue",
        title=title,
        date=w.day(snapshot["generated_at"]),
        open=snapshot["totals"]["open"],
        overdue=snapshot["totals"]["overdue"],
    )
    message = deliver.build_message(
        sender=settings.reports.mail_from,
        to=to,
        subject=subject,
        body="\n".join(lines) + "\n",
        attachments=packed.attachments,
    )
    return message, detail


def _attempt(
    session: Session, settings: Settings, delivery: ReportDelivery, files: _Files, now: datetime
) -> None:
    detail, error = "", ""
    try:
        if delivery.channel == DeliveryChannel.email:
            message, detail = _mail(settings, files, delivery.target)
            deliver.send_mail(settings.reports, message)
        else:
            folder = reports_folder(settings) / delivery.target
            written = deliver.write_folder(folder, files.all())
            detail = ", ".join(str(p) for p in written)
    except deliver.DeliveryError as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - recorded and retried; never kills the job
        log.exception("delivery %s failed", delivery.id)
        error = f"{exc.__class__.__name__}: {exc}"[:500]
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.detail = detail or delivery.detail
    if not error:
        delivery.status, delivery.delivered_at = DeliveryStatus.sent, now
        delivery.last_error, delivery.next_attempt_at = "", None
    elif delivery.attempts >= settings.reports.max_attempts:
        delivery.status, delivery.last_error, delivery.next_attempt_at = (
            DeliveryStatus.abandoned,
            error,
            None,
        )
    else:
        delay = settings.reports.retry_seconds * 2 ** (delivery.attempts - 1)
        delivery.status, delivery.last_error = DeliveryStatus.failed, error
        delivery.next_attempt_at = now + timedelta(seconds=delay)
    session.add(delivery)
    session.commit()


def deliver_due(
    *, session: Session, settings: Settings, now: datetime, report_id: int | None = None
) -> list[ReportDelivery]:
    """Try every delivery that is due (of one report, or all); returns those tried."""
    statement = select(ReportDelivery.id, ReportDelivery.report_id).where(
        ReportDelivery.status.in_([str(s) for s in RETRYABLE]),
        or_(ReportDelivery.next_attempt_at.is_(None), ReportDelivery.next_attempt_at <= _at(now)),
    )
    if report_id is not None:
        statement = statement.where(ReportDelivery.report_id == report_id)
    tried = []
    files: dict[int, _Files] = {}
    for delivery_id, rid in session.execute(statement.order_by(ReportDelivery.id)).all():
        if not _claim(session, delivery_id, now):
            continue
        delivery = session.get(ReportDelivery, delivery_id)
        assert delivery is not None
        session.refresh(delivery)
        if rid not in files:
            report = session.get(Report, rid)
            assert report is not None
            files[rid] = _Files(session, report)
        _attempt(session, settings, delivery, files[rid], now)
        tried.append(delivery)
    return tried


def get_delivery(*, session: Session, delivery_id: int) -> ReportDelivery:
    delivery = session.get(ReportDelivery, delivery_id) if valid_id(delivery_id) else None
    if delivery is None:
        raise NotFound(N_("No delivery with id %(id)s."), id=delivery_id)
    return delivery


def retry_delivery(
    *, session: Session, settings: Settings, delivery_id: int, now: datetime
) -> ReportDelivery:
    """Try a failed or abandoned delivery again now (one more attempt, even past the maximum)."""
    delivery = get_delivery(session=session, delivery_id=delivery_id)
    if delivery.status == DeliveryStatus.sent:
        raise InvalidInput(N_("This report was already delivered there."))
    if delivery.status == DeliveryStatus.sending and (
        delivery.next_attempt_at is not None and delivery.next_attempt_at > now
    ):
        raise InvalidInput(N_("This delivery is being sent right now."))
    session.execute(
        update(ReportDelivery)
        .where(
            and_(
                ReportDelivery.id == delivery_id,
                ReportDelivery.status != str(DeliveryStatus.sent),
            )
        )
        .values(
            status=str(DeliveryStatus.pending),
            next_attempt_at=_at(now),
            attempts=min(delivery.attempts, settings.reports.max_attempts - 1),
        )
    )
    session.commit()
    deliver_due(session=session, settings=settings, now=now, report_id=delivery.report_id)
    session.refresh(delivery)
    return delivery


# --- running schedules (the scheduler's report job, "Run now", the CLI) -----------------------


def run_schedule(
    *,
    session: Session,
    settings: Settings,
    schedule: ReportSchedule,
    now: datetime,
    trigger: str,
    actor: str,
    send: bool = True,
) -> Report:
    """Generate the schedule's report now and, with `send`, deliver it (failures are kept for
    retrying, never raised)."""
    from inventory.services.reports import generate_report

    report = generate_report(
        session=session,
        settings=settings,
        now=now,
        trigger=trigger,
        actor=actor,
        schedule=schedule,
    )
    if send:
        create_deliveries(session=session, report=report, schedule=schedule, now=now)
        deliver_due(session=session, settings=settings, now=now, report_id=report.id)
    return report


def run_due_reports(*, session: Session, settings: Settings, now: datetime) -> tuple[int, int]:
    """The report job: config schedules synced, due schedules run, due retries tried.
    Returns (reports made, deliveries tried). One schedule's failure does not stop the others."""
    from inventory.services.report_schedules import claim_due, sync_config_schedules

    sync_config_schedules(session=session, settings=settings, now=now)
    made = 0
    for schedule in claim_due(session=session, settings=settings, now=now):
        try:
            run_schedule(
                session=session,
                settings=settings,
                schedule=schedule,
                now=now,
                trigger="schedule",
                actor="scheduler",
            )
            made += 1
        except Exception:  # noqa: BLE001 - logged; the next schedule still runs
            session.rollback()
            log.exception("report schedule %s (%s) failed", schedule.id, schedule.name)
    tried = deliver_due(session=session, settings=settings, now=now)
    return made, len(tried)
