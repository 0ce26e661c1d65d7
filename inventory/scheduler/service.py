"""The scheduler process (`inventory scheduler`, or inside `inventory serve`): lease, jobs, worker.

It renews (or waits for) the database's scheduler lease every third of a lease period. Only while
it holds the lease does it run APScheduler with the job store ("can I share a job store between
processes? You can't", APScheduler's FAQ); a standby runs none, and starts them when the lease
comes to it. Its in-process worker, if enabled, audits whether or not it is the active one:
claims are safe between processes.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlmodel import Session

from inventory.scheduler import jobs
from inventory.scheduler.clock import Clock, SystemClock
from inventory.scheduler.lease import acquire, release
from inventory.scheduler.windows import resolve_timezone
from inventory.scheduler.worker import Worker, WorkerThread, default_worker_id
from inventory.settings import Settings

log = logging.getLogger("inventory.scheduler")


class SchedulerService:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        holder_id: str | None = None,
        with_worker: bool | None = None,
        concurrency: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.id = (holder_id or default_worker_id("scheduler"))[:128]
        self.clock = clock or SystemClock()
        self.with_worker = (
            settings.scheduler.in_process_worker if with_worker is None else with_worker
        )
        self.concurrency = concurrency
        self._aps: BackgroundScheduler | None = None
        self._leader_until: datetime | None = None
        self._worker: WorkerThread | None = None
        self.stopped = threading.Event()

    def is_leader(self) -> bool:
        return self._leader_until is not None and self.clock.now() < self._leader_until

    def _renew(self) -> bool:
        seconds = self.settings.scheduler.lease_seconds
        now = self.clock.now()
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                held = acquire(session=session, holder=self.id, now=now, seconds=seconds)
        except Exception:  # noqa: BLE001 - database away: keep what we had until it expires
            log.exception("%s: could not renew the scheduler lease", self.id)
            return self.is_leader()
        self._leader_until = now + timedelta(seconds=seconds) if held else None
        return held

    def _start_jobs(self) -> None:
        runtime = jobs.Runtime(self.engine, self.settings, self.clock)
        runtime.is_leader = self.is_leader
        jobs.current = runtime
        scheduler = jobs.build_scheduler(
            self.engine, resolve_timezone(self.settings.general.timezone)
        )
        scheduler.start(paused=True)
        jobs.install_jobs(scheduler, self.settings, self.clock.now())
        scheduler.resume()
        self._aps = scheduler
        log.info("%s: active scheduler (lease held)", self.id)

    def _stop_jobs(self, wait: bool) -> None:
        if self._aps is not None:
            try:
                jobs.stop_scheduler(self._aps, wait=wait)
            except Exception:  # noqa: BLE001 - already stopped
                pass
            self._aps = None

    def run(self, stop: threading.Event) -> None:
        """Block until `stop` is set; then stop the jobs and the worker, and give the lease up."""
        if self.with_worker:
            worker = Worker(
                self.engine,
                self.settings,
                worker_id=f"{self.id}/worker"[:128],
                concurrency=self.concurrency,
                clock=self.clock,
            )
            worker.explicit_id = False
            self._worker = WorkerThread(worker)
            self._worker.start()
        period = self.settings.scheduler.lease_seconds / 3
        was_leader = False
        log.info("%s: started; waiting for the scheduler lease", self.id)
        try:
            while not stop.is_set():
                leader = self._renew()
                if leader and self._aps is None:
                    self._start_jobs()
                elif not leader and self._aps is not None:
                    log.warning("%s: lease lost; now a standby", self.id)
                    self._stop_jobs(wait=False)
                elif not leader and not was_leader:
                    log.debug("%s: standby", self.id)
                was_leader = leader
                stop.wait(period)
        finally:
            self._stop_jobs(wait=True)
            if self._worker is not None:
                self._worker.stop(self.settings.scheduler.shutdown_grace + 30)
            if self._leader_until is not None:
                try:
                    with Session(self.engine) as session:
                        release(session=session, holder=self.id)
                except Exception:  # noqa: BLE001 - it will simply expire
                    log.exception("%s: could not release the lease", self.id)
            jobs.current = None
            self.stopped.set()
            log.info("%s: stopped", self.id)

    def start_in_thread(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(
            target=self.run, args=(stop,), name="vigie-scheduler", daemon=True
        )
        thread.start()
        return thread
