"""APScheduler 3.x wiring: a BackgroundScheduler with a SQLAlchemyJobStore in Vigie's database.

Only cron-like jobs live in the job store: the dispatcher (every few seconds) and the stale check
(every few minutes), and the report job (every minute: due report schedules and
delivery retries). Per-asset timing is in asset_schedule, read by the
one dispatcher job. Job functions are importable module functions without arguments (the store
pickles references, not objects); they reach the running process's Runtime through `current`.
Every job runs through `run_job`, which records start, end, outcome and error (STYLE.md #9):
a failing job is logged and recorded, it never stops the scheduler.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlmodel import Session

from inventory.models import JobStatus
from inventory.scheduler.clock import Clock, SystemClock, new_random
from inventory.services import schedule as schedule_service
from inventory.services.stale import check_stale
from inventory.services.windows import load_window_set
from inventory.settings import Settings

log = logging.getLogger("inventory.scheduler")

DISPATCH = "vigie.dispatch"
STALE_CHECK = "vigie.stale-check"
REPORTS = "vigie.reports"
JOB_TABLE = "apscheduler_jobs"


class Runtime:
    """What the active scheduler's jobs work with: engine, settings, clock."""

    def __init__(self, engine: Engine, settings: Settings, clock: Clock | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock or SystemClock()
        self.rng = new_random()
        self.is_leader: Callable[[], bool] = lambda: True

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def dispatch(self) -> schedule_service.DispatchResult:
        config = self.settings.scheduler
        with self.session() as session:
            now = self.clock.now()
            created = schedule_service.backfill(
                session=session, now=now, spread=config.first_audit_spread, rng=self.rng
            )
            session.commit()
            recovered = schedule_service.recover_expired(session=session, now=now)
            rules = load_window_set(session=session, settings=self.settings).rules(now)
            result = schedule_service.dispatch(
                session=session,
                now=now,
                rules=rules,
                max_running=config.max_concurrent_audits,
                batch_size=config.batch_size,
            )
        result.created, result.recovered = created, recovered
        if created or recovered or result.queued:
            log.info(
                "dispatch: %d new, %d interrupted, %d queued, %d running",
                created,
                recovered,
                result.queued,
                result.running,
            )
        return result

    def check_stale(self) -> tuple[int, int]:
        with self.session() as session:
            return check_stale(session=session, now=self.clock.now(), defaults=self.settings.assets)

    def run_reports(self) -> tuple[int, int]:
        """Report schedules whose time has come, and deliveries due for another try."""
        from inventory.services.report_deliveries import run_due_reports

        with self.session() as session:
            return run_due_reports(session=session, settings=self.settings, now=self.clock.now())


current: Runtime | None = None


def _status(session: Session, job_id: str) -> JobStatus:
    return session.get(JobStatus, job_id) or JobStatus(job_id=job_id)


def run_job(job_id: str, work: Callable[[Runtime], Any]) -> None:
    """Run one job and record how it went; never raises."""
    runtime = current
    if runtime is None or not runtime.is_leader():
        return  # this process no longer holds the lease: another scheduler does the work
    started = runtime.clock.now()
    outcome, error = "ok", ""
    try:
        work(runtime)
    except Exception as exc:  # noqa: BLE001 - recorded below; the scheduler goes on
        outcome, error = "failed", "".join(traceback.format_exception(exc))[-4000:]
        log.error("job %s failed: %s", job_id, error)
    try:
        with runtime.session() as session:
            status = _status(session, job_id)
            status.last_started_at, status.last_finished_at = started, runtime.clock.now()
            status.last_outcome, status.last_error = outcome, error
            status.runs = (status.runs or 0) + 1
            status.failures = (status.failures or 0) + (outcome != "ok")
            session.add(status)
            session.commit()
    except Exception:  # noqa: BLE001 - the database may be away; the next run records again
        log.exception("could not record the run of job %s", job_id)


def dispatch_job() -> None:
    run_job(DISPATCH, lambda runtime: runtime.dispatch())


def stale_job() -> None:
    run_job(STALE_CHECK, lambda runtime: runtime.check_stale())


def reports_job() -> None:
    run_job(REPORTS, lambda runtime: runtime.run_reports())


def build_scheduler(engine: Engine, tz: tzinfo) -> BackgroundScheduler:
    """The APScheduler instance: jobs in the database; missed runs coalesce into one."""
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE)},
        executors={"default": {"type": "threadpool", "max_workers": 4}},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=tz,
    )


def install_jobs(scheduler: BackgroundScheduler, settings: Settings, now: datetime) -> None:
    """The built-in jobs, with explicit ids and replace_existing (settings may have changed).
    Both run at once on start: overdue work after a restart is picked up promptly."""
    config = settings.scheduler
    scheduler.add_job(
        f"{__name__}:dispatch_job",
        trigger="interval",
        seconds=config.dispatch_interval,
        id=DISPATCH,
        name="hand due assets to workers",
        replace_existing=True,
        next_run_time=now,
    )
    scheduler.add_job(
        f"{__name__}:stale_job",
        trigger="interval",
        seconds=config.stale_check_interval,
        id=STALE_CHECK,
        name="raise or fix audit.stale",
        replace_existing=True,
        next_run_time=now,
    )
    # Report schedules keep their next run in their own rows (report_schedule.next_run_at), read
    # by this one job, like per-asset timing: changing a schedule in the web UI (another process)
    # never has to touch this job store.
    scheduler.add_job(
        f"{__name__}:reports_job",
        trigger="interval",
        seconds=settings.reports.check_interval,
        id=REPORTS,
        name="run due report schedules, retry deliveries",
        replace_existing=True,
        next_run_time=now,
    )


def stop_scheduler(scheduler: BackgroundScheduler, *, wait: bool) -> None:
    """Stop without losing a run: APScheduler's loop makes one last pass after shutdown() and
    would move a job that is due right then past its run (the executor refuses it). Detaching the
    job store first leaves that job due in the database for the next active scheduler. The store
    is not shut down: that would dispose of Vigie's shared engine."""
    scheduler.pause()
    try:
        scheduler.remove_jobstore("default", shutdown=False)
    except KeyError:
        pass
    scheduler.shutdown(wait=wait)
