"""An audit worker: claims queued assets, audits them, records each result with its next due time.

One asyncio event loop runs up to `concurrency` audits at once (the engine is asynchronous) under
one set of connection limits (max_connections, per host) shared by all of them, as
engine.audit_many does; database work goes to threads (asyncio.to_thread) so that a slow commit
never stalls a probe, and blocking probe libraries (pynetdicom) get threads of their own so that
they never wait behind the database, nor the database behind them.
The worker renews its claims while they run (heartbeats): if it is killed, they expire and the
dispatcher marks those audits interrupted. On SIGTERM it stops claiming, gives running audits
`shutdown_grace` seconds to finish, and marks the others interrupted before it exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

from inventory.audit import audit as run_engine
from inventory.audit.probes.base import ConnectionLimits
from inventory.models import SchedulerWorker, WorkerState
from inventory.scheduler.clock import Clock, SystemClock, new_random
from inventory.scheduler.ratelimit import ConnectionPacer, connection_cost
from inventory.services import schedule as schedule_service
from inventory.services.assets import get_asset
from inventory.services.audits import target_for
from inventory.settings import Settings

log = logging.getLogger("inventory.worker")
T = TypeVar("T")


def default_worker_id(kind: str = "worker") -> str:
    return f"{socket.gethostname()}:{kind}:{os.getpid()}"[:128]


class Worker:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        worker_id: str | None = None,
        concurrency: int | None = None,
        once: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.explicit_id = worker_id is not None
        self.id = (worker_id or default_worker_id())[:128]
        self.concurrency = concurrency or settings.scheduler.worker_concurrency
        self.once = once
        self.clock = clock or SystemClock()
        self.rng = new_random()
        self.pacer = ConnectionPacer(
            settings.scheduler.max_new_connections_per_second, monotonic=self.clock.monotonic
        )
        self.limits = ConnectionLimits(
            settings.audit.max_connections, settings.audit.max_connections_per_host
        )
        # Database work has threads of its own (see the module's docstring).
        self._db_threads = ThreadPoolExecutor(
            min(8, self.concurrency + 2), thread_name_prefix="vigie-db"
        )
        self.audited = 0
        self._tasks: dict[int, tuple[schedule_service.Claim, asyncio.Task[None]]] = {}

    # --- database work, in threads -----------------------------------------------------------

    def _db(self, work: Callable[[Session], T]) -> T:
        with Session(self.engine, expire_on_commit=False) as session:
            return work(session)

    async def _run_db(self, work: Callable[[Session], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_threads, self._db, work)

    def _beat(self, session: Session, state: WorkerState) -> None:
        row = session.get(SchedulerWorker, self.id) or SchedulerWorker(
            id=self.id,
            host=socket.gethostname()[:128],
            pid=os.getpid(),
            started_at=self.clock.now(),
        )
        row.pid, row.concurrency, row.running = os.getpid(), self.concurrency, len(self._tasks)
        row.state, row.last_seen_at = state, self.clock.now()
        if state is WorkerState.running and row.started_at is None:
            row.started_at = self.clock.now()
        session.add(row)
        session.commit()

    def _start(self, session: Session) -> None:
        now = self.clock.now()
        if self.explicit_id:
            # A restart under the same id: what the previous run held was interrupted.
            count = schedule_service.interrupt_worker(session=session, worker_id=self.id, now=now)
            if count:
                log.warning("%s: %d audit(s) of a previous run marked interrupted", self.id, count)
        row = session.get(SchedulerWorker, self.id)
        if row is not None:
            row.started_at = now
        self._beat(session, WorkerState.running)

    def _target(self, session: Session, asset_id: int) -> tuple[Any, int]:
        asset = get_asset(session=session, asset_id=asset_id)
        target = target_for(asset, self.settings.audit)
        declared = [s.port for s in target.services if s.protocol == "tcp"]
        cost = connection_cost(len(target.addresses), self.settings.audit.default_ports, declared)
        return target, cost

    # --- one audit -----------------------------------------------------------------------------

    async def _audit(self, claim: schedule_service.Claim) -> None:
        try:
            target, cost = await self._run_db(lambda s: self._target(s, claim.asset_id))
            wait = self.pacer.reserve(cost)
            if wait > 0:
                await asyncio.sleep(wait)
            report = await run_engine(target, self.settings.audit, limits=self.limits)
            recorded = await self._run_db(
                lambda s: schedule_service.complete(
                    session=s,
                    claim=claim,
                    report=report,
                    worker_id=self.id,
                    now=self.clock.now(),
                    settings=self.settings,
                    rng=self.rng,
                )
            )
            if recorded is None:
                log.warning("%s: asset %d: claim lost, result dropped", self.id, claim.asset_id)
            else:
                self.audited += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one broken audit must not stop the worker
            log.exception("%s: audit of asset %d failed", self.id, claim.asset_id)
            reason = f"{exc.__class__.__name__}: {exc}"
            await self._run_db(
                lambda s: schedule_service.fail(
                    session=s,
                    claim=claim,
                    reason=reason,
                    worker_id=self.id,
                    now=self.clock.now(),
                    settings=self.settings,
                )
            )

    # --- the loop ------------------------------------------------------------------------------

    async def _heartbeats(self, stop: asyncio.Event, done: asyncio.Event) -> None:
        """Renew the claims and say the worker is alive until `done`, through the shutdown's
        grace period too (as "stopping" once `stop` is set). It ends between two beats, never
        in the middle of one, so that the final "stopped" is written after the last beat."""
        period = max(0.2, min(self.settings.scheduler.claim_seconds / 3, 10.0))
        while True:
            try:
                await asyncio.wait_for(done.wait(), timeout=period)
            except TimeoutError:
                pass
            if done.is_set():
                return
            claims = [claim for claim, _ in self._tasks.values()]
            try:
                lost = await self._run_db(
                    lambda s, claims=claims: schedule_service.renew(  # type: ignore[misc]
                        session=s,
                        worker_id=self.id,
                        claims=claims,
                        now=self.clock.now(),
                        claim_seconds=self.settings.scheduler.claim_seconds,
                    )
                )
                state = WorkerState.stopping if stop.is_set() else WorkerState.running
                await self._run_db(lambda s, state=state: self._beat(s, state))  # type: ignore[misc]
            except Exception:  # noqa: BLE001 - the database may be briefly away; try again
                log.exception("%s: heartbeat failed", self.id)
                continue
            for asset_id in lost:
                entry = self._tasks.get(asset_id)
                if entry is not None:
                    log.warning("%s: claim on asset %d lost; audit stopped", self.id, asset_id)
                    entry[1].cancel()

    def _reap(self) -> None:
        for asset_id, (_, task) in list(self._tasks.items()):
            if task.done():
                del self._tasks[asset_id]

    async def run(self, stop: asyncio.Event) -> None:
        """Audit until `stop` is set (or, with once=True, until nothing is left to audit)."""
        # The loop's default executor is the probes' (asyncio.to_thread in pynetdicom's probe):
        # one thread per audit under way; the database has its own few.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(self.concurrency + 2, thread_name_prefix="vigie-probe")
        )
        try:
            await self._run(stop)
        finally:
            self._db_threads.shutdown(wait=False)

    async def _run(self, stop: asyncio.Event) -> None:
        await self._run_db(self._start)
        log.info("worker %s started (%d audits at once)", self.id, self.concurrency)
        stopping = asyncio.ensure_future(stop.wait())
        beats_done = asyncio.Event()
        heartbeats = asyncio.ensure_future(self._heartbeats(stop, beats_done))
        poll = self.settings.scheduler.poll_interval
        try:
            while not stop.is_set():
                self._reap()
                free = self.concurrency - len(self._tasks)
                claimed: list[schedule_service.Claim] = []
                if free > 0:
                    try:
                        claimed = await self._run_db(
                            lambda s, free=free: schedule_service.claim(  # type: ignore[misc]
                                session=s,
                                worker_id=self.id,
                                limit=free,
                                now=self.clock.now(),
                                claim_seconds=self.settings.scheduler.claim_seconds,
                            )
                        )
                    except Exception:  # noqa: BLE001 - database briefly away: try again later
                        log.exception("%s: claiming failed", self.id)
                for claim in claimed:
                    self._tasks[claim.asset_id] = (claim, asyncio.create_task(self._audit(claim)))
                if self.once and not self._tasks and await self._nothing_left():
                    break
                waiting = {stopping, *(task for _, task in self._tasks.values())}
                full = len(self._tasks) >= self.concurrency
                await asyncio.wait(
                    waiting,
                    timeout=None if full else poll,
                    return_when=asyncio.FIRST_COMPLETED,
                )
        finally:
            stop.set()
            await self._shutdown()
            # Not cancelled: a beat under way in a database thread would go on and could land
            # after "stopped" (it did, once in a CI run).
            beats_done.set()
            stopping.cancel()
            await asyncio.gather(heartbeats, stopping, return_exceptions=True)
            await self._run_db(lambda s: self._beat(s, WorkerState.stopped))
            log.info("worker %s stopped (%d audits recorded)", self.id, self.audited)

    async def _nothing_left(self) -> bool:
        from inventory.services.windows import load_window_set

        def count(session: Session) -> int:
            now = self.clock.now()
            rules = load_window_set(session=session, settings=self.settings).rules(now)
            return schedule_service.pending(session=session, now=now, rules=rules)

        return await self._run_db(count) == 0

    async def _shutdown(self) -> None:
        """Running audits get the grace period to finish; the rest are marked interrupted."""
        self._reap()
        if not self._tasks:
            return
        await self._run_db(lambda s: self._beat(s, WorkerState.stopping))
        grace = self.settings.scheduler.shutdown_grace
        log.info("%s: waiting up to %.0f s for %d audit(s)", self.id, grace, len(self._tasks))
        tasks = [task for _, task in self._tasks.values()]
        if grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        unfinished = [claim for claim, task in self._tasks.values() if not task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if unfinished:
            count = await self._run_db(
                lambda s: schedule_service.interrupt(
                    session=s,
                    claims=unfinished,
                    now=self.clock.now(),
                    note="its worker was shut down",
                )
            )
            log.info("%s: %d audit(s) marked interrupted", self.id, count)
        self._tasks.clear()


class WorkerThread:
    """A worker in a thread of its own (its own event loop), for `serve` and `scheduler`."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="vigie-worker", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self.worker.run(self._stop)

        try:
            asyncio.run(main())
        except Exception:  # noqa: BLE001 - logged; the web UI keeps serving
            log.exception("the in-process worker stopped on an error")
        finally:
            self._ready.set()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self, timeout: float | None = None) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # the loop ended meanwhile
                pass
        self._thread.join(timeout)
