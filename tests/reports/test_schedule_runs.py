"""Report schedules fire from the scheduler: cron timing in the configured time zone (across
daylight-saving changes), the report job run by the active scheduler with an injected clock,
missed runs made once, a slot never run twice, config schedules, and the job in APScheduler's
store with its explicit id. SQLite and PostgreSQL where the database is involved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from inventory.models import JobStatus, Report, ReportSchedule
from inventory.reports.cron import CronError, describe, next_run, parse_cron
from inventory.scheduler import jobs
from inventory.scheduler.clock import ManualClock
from inventory.services import report_schedules as schedule_service
from inventory.settings import ReportScheduleSettings
from tests.factories import make_asset
from tests.reports.helpers import report_settings

PARIS = ZoneInfo("Europe/Paris")


# --- timing (pure) -----------------------------------------------------------------------------


def test_every_monday_at_seven_in_paris_across_the_clock_change():
    # Sunday 25 October 2026 ends summer time in Paris: 07:00 is 05:00 UTC before, 06:00 after.
    after = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)
    first = next_run("0 7 * * mon", after, PARIS)
    second = next_run("0 7 * * mon", first, PARIS)
    assert first == datetime(2026, 10, 26, 6, 0, tzinfo=UTC)
    assert second == datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
    assert next_run("0 7 * * mon", datetime(2026, 10, 18, 12, tzinfo=UTC), PARIS) == datetime(
        2026, 10, 19, 5, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 7 1 * *", datetime(2026, 11, 15, tzinfo=UTC), datetime(2026, 12, 1, 7, tzinfo=UTC)),
        (
            "30 6 * * 1-5",
            datetime(2026, 11, 6, 7, tzinfo=UTC),
            datetime(2026, 11, 9, 6, 30, tzinfo=UTC),
        ),
        ("0 7 1-7 * mon", datetime(2026, 11, 15, tzinfo=UTC), datetime(2026, 12, 7, 7, tzinfo=UTC)),
        ("0 7 * * 0", datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 8, 7, tzinfo=UTC)),
        (
            "*/15 * * * *",
            datetime(2026, 11, 2, 7, 1, tzinfo=UTC),
            datetime(2026, 11, 2, 7, 15, tzinfo=UTC),
        ),
        ("0 0 31 2 *", datetime(2026, 1, 1, tzinfo=UTC), None),
    ],
)
def test_next_runs(expression, after, expected):
    assert next_run(expression, after, UTC) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "Write five fields"),
        ("0 7 * *", "Write five fields"),
        ("61 7 * * *", "61 is out of range for the minute (0 to 59)."),
        ("0 7 0 * *", "0 is out of range for the day (1 to 31)."),
        ("0 7 * jna *", "jna is not a valid month."),
        ("0 7 * * 5-1", "5-1 is not a valid weekday."),
        ("0 7 * * mon/0", "mon/0 is not a valid weekday."),
    ],
)
def test_bad_timings_say_what_is_wrong(expression, message):
    with pytest.raises(CronError) as caught:
        parse_cron(expression)
    assert message in caught.value.render()


def test_timings_in_words():
    assert describe("0 7 * * mon", str) == "every Monday at 07:00"
    assert describe("0 7 1 * *", str) == "on day 1 of every month at 07:00"
    assert describe("30 6 * * 1-5", str) == "every weekday at 06:30"
    assert describe("*/15 * * * *", str) == "*/15 * * * *"


# --- the report job --------------------------------------------------------------------------


def count_reports(session: Session) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(Report)) or 0)


@pytest.fixture
def paris(settings):
    return settings.model_copy(
        update={"general": settings.general.model_copy(update={"timezone": "Europe/Paris"})}
    )


def test_the_report_job_runs_due_schedules_once_and_catches_up_once(engine, session, paris):
    clock = ManualClock(datetime(2026, 11, 1, 12, 0, tzinfo=UTC))  # a Sunday
    make_asset(session, name="PACS")
    data = schedule_service.validate_schedule(
        {
            "name": "Weekly",
            "scope": "all",
            "cron": "0 7 * * mon",
            "formats": ["pdf"],
            "language": "en",
        },
        languages=["en", "fr"],
    )
    schedule = schedule_service.create_schedule(
        session=session, data=data, actor="t", settings=paris, now=clock.now()
    )
    assert schedule.next_run_at == datetime(2026, 11, 2, 6, 0, tzinfo=UTC)  # 07:00 in Paris
    runtime = jobs.Runtime(engine, paris, clock)
    assert runtime.run_reports() == (0, 0)
    clock.set(datetime(2026, 11, 2, 6, 0, 30, tzinfo=UTC))
    assert runtime.run_reports() == (1, 0)
    assert runtime.run_reports() == (0, 0)  # the same slot never twice
    session.refresh(schedule)
    assert schedule.next_run_at == datetime(2026, 11, 9, 6, 0, tzinfo=UTC)
    assert schedule.last_run_at == clock.now()
    # No scheduler for three weeks: one report when it is back, then the next Monday.
    clock.set(datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    assert runtime.run_reports() == (1, 0)
    session.refresh(schedule)
    assert schedule.next_run_at == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    assert count_reports(session) == 2
    reports = session.scalars(select(Report).order_by(Report.id)).all()
    assert [r.trigger for r in reports] == ["schedule", "schedule"]
    assert reports[1].baseline_id == reports[0].id
    # A paused schedule does not run.
    schedule.enabled = False
    session.add(schedule)
    session.commit()
    clock.set(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    assert runtime.run_reports() == (0, 0)


def test_two_schedulers_never_take_the_same_slot(engine, session, settings):
    now = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
    data = schedule_service.validate_schedule(
        {
            "name": "Daily",
            "scope": "all",
            "cron": "0 7 * * *",
            "formats": ["csv"],
            "language": "en",
        },
        languages=["en"],
    )
    schedule_service.create_schedule(
        session=session, data=data, actor="t", settings=settings, now=now - timedelta(days=1)
    )
    with Session(engine, expire_on_commit=False) as a, Session(engine, expire_on_commit=False) as b:
        due_a = a.scalars(select(ReportSchedule)).all()
        due_b = b.scalars(select(ReportSchedule)).all()
        assert due_a and due_b  # both saw it due
        first = schedule_service.claim_due(session=a, settings=settings, now=now)
        second = schedule_service.claim_due(session=b, settings=settings, now=now)
    assert len(first) == 1 and second == []


def test_config_schedules_are_synced_and_run_by_the_job(engine, session, settings):
    clock = ManualClock(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    entry = ReportScheduleSettings(
        name="Monthly DPO",
        cron="0 7 1 * *",
        scope="kind:pacs",
        formats=["pdf", "json"],
        folder="monthly",
    )
    configured = report_settings(settings, schedules=[entry], folder=str(settings.var_dir / "r"))
    make_asset(session, name="PACS", kind="pacs")
    make_asset(session, name="PC", kind="workstation")
    runtime = jobs.Runtime(engine, configured, clock)
    runtime.run_reports()
    (row,) = session.scalars(select(ReportSchedule)).all()
    assert (row.source, row.scope, row.scope_value) == ("config", "kind", "pacs")
    clock.set(datetime(2026, 12, 1, 7, 0, tzinfo=UTC))
    assert runtime.run_reports() == (1, 0)  # delivered at once; nothing left to retry
    report = session.scalars(select(Report)).one()
    assert report.totals["assets"] == 1
    written = sorted(p.suffix for p in (settings.var_dir / "r" / "monthly").iterdir())
    assert written == [".json", ".pdf"]
    # Removed from the file: removed from the list (its report is kept).
    runtime = jobs.Runtime(engine, report_settings(configured, schedules=[]), clock)
    runtime.run_reports()
    session.refresh(row)
    assert row.deleted_at is not None and count_reports(session) == 1


def test_the_job_is_stored_with_its_id_and_recorded(engine, settings):
    scheduler = jobs.build_scheduler(engine, UTC)
    scheduler.start(paused=True)
    try:
        jobs.install_jobs(scheduler, settings, datetime.now(UTC))
        job = scheduler.get_job(jobs.REPORTS)
        assert job is not None and job.func_ref == "inventory.scheduler.jobs:reports_job"
        assert job.trigger.interval == timedelta(seconds=settings.reports.check_interval)
        jobs.install_jobs(scheduler, settings, datetime.now(UTC))  # replace_existing
        assert [j.id for j in scheduler.get_jobs()].count(jobs.REPORTS) == 1
    finally:
        jobs.stop_scheduler(scheduler, wait=True)
    jobs.current = jobs.Runtime(engine, settings, ManualClock())
    try:
        jobs.reports_job()
    finally:
        jobs.current = None
    with Session(engine) as session:
        status = session.get(JobStatus, jobs.REPORTS)
        assert status is not None and status.last_outcome == "ok" and status.runs == 1
