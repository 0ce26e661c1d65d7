"""The scheduler and workers as real processes (the installed `inventory` command) on SQLite and
the real PostgreSQL, auditing assets on loopback addresses: three workers and 300 due assets,
kill -9 mid-audit and restart, standby takeover after SIGKILL, SIGTERM, and `serve`.

Leases, claims and intervals are shortened through settings so that the whole file stays quick.
"""

from __future__ import annotations

import os
import signal
import socket
import socketserver
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from inventory.db import make_engine, upgrade_schema
from inventory.models import (
    AssetSchedule,
    Audit,
    Finding,
    FindingEvent,
    SchedulerLease,
    SchedulerWorker,
)
from inventory.services import assets as asset_service
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.test_cli import INVENTORY

CLOSED_PORT = 9  # "discard": nothing listens on loopback, so each audit is one quick refusal
FAST = {
    "INVENTORY_AUDIT_CONNECT_TIMEOUT": "1",
    "INVENTORY_AUDIT_READ_TIMEOUT": "1",
    "INVENTORY_AUDIT_AUDIT_DEADLINE": "20",
    "INVENTORY_SCHEDULER_DISPATCH_INTERVAL": "0.2",
    "INVENTORY_SCHEDULER_POLL_INTERVAL": "0.1",
    "INVENTORY_SCHEDULER_LEASE_SECONDS": "3",
    "INVENTORY_SCHEDULER_CLAIM_SECONDS": "1.5",
    "INVENTORY_SCHEDULER_FIRST_AUDIT_SPREAD": "0",
    "INVENTORY_SCHEDULER_SHUTDOWN_GRACE": "0",
    "INVENTORY_SCHEDULER_MAX_CONCURRENT_AUDITS": "30",
    "INVENTORY_SCHEDULER_STALE_CHECK_INTERVAL": "3600",
}


# --- databases, processes, peers ---------------------------------------------------------------


@pytest.fixture
def database(db_backend: str, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of its own (the processes share it with the test)."""
    if db_backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'inventory.db'}"
    else:
        url = create_postgres_database("vigie_sched")
    engine = make_engine(url)
    upgrade_schema(engine)
    engine.dispose()
    yield url
    if db_backend == "postgresql":
        drop_postgres_database(url)


@pytest.fixture
def engine(database: str) -> Iterator[Engine]:  # type: ignore[override]
    engine = make_engine(database)
    yield engine
    engine.dispose()


class Procs:
    """`inventory` subprocesses; whatever is still running at the end is killed."""

    def __init__(self, url: str, root: Path) -> None:
        self.url, self.root, self.started = url, root, []  # type: ignore[var-annotated]

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("INVENTORY_")}
        environ.update({"INVENTORY_DATABASE_URL": self.url, **FAST, **(env or {})})
        log = (self.root / f"{args[0]}-{len(self.started)}.log").open("w")
        proc = subprocess.Popen(
            [INVENTORY, *args],
            cwd=self.root,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        proc.log_path = log.name  # type: ignore[attr-defined]
        self.started.append(proc)
        return proc

    def output(self, proc: subprocess.Popen[str]) -> str:
        return Path(proc.log_path).read_text()  # type: ignore[attr-defined]

    def stop(self, proc: subprocess.Popen[str], timeout: float = 30) -> int:
        """SIGTERM, then the exit status (the process must exit by itself)."""
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout)
        assert "Traceback" not in self.output(proc), self.output(proc)
        return code

    def kill_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def procs(database: str, tmp_path: Path) -> Iterator[Procs]:
    p = Procs(database, tmp_path)
    yield p
    p.kill_all()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def listening(port: int) -> bool:
    """Whether a server accepts connections on 127.0.0.1:port (a process started up)."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def silent_peers(hosts: list[str]) -> Iterator[int]:
    """Accept connections on each loopback host and say nothing: an audit waits its read timeout
    there, long enough to be killed in the middle. Yields the (common) port."""
    assert all(h.startswith("127.") for h in hosts)
    port = 0
    servers = []
    stop = threading.Event()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            stop.wait(30)

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    for host in hosts:
        server = Server((host, port), Handler)
        port = server.server_address[1]
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        servers.append(server)
    try:
        yield port
    finally:
        stop.set()
        for server in servers:
            server.shutdown()
            server.server_close()


def add_assets(engine: Engine, hosts: list[str], prefix: str = "asset") -> list[int]:
    with Session(engine, expire_on_commit=False) as session:
        items = [
            asset_service.validate_asset({"name": f"{prefix}-{i}", "addresses": host})
            for i, host in enumerate(hosts)
        ]
        ids = asset_service.create_assets(session=session, items=items, actor="tests")
        session.commit()
    return ids


def outcomes(engine: Engine) -> dict[int, list[str]]:
    with Session(engine) as session:
        rows = session.execute(select(Audit.asset_id, Audit.outcome).order_by(Audit.id)).all()
    found: dict[int, list[str]] = {}
    for asset_id, outcome in rows:
        found.setdefault(asset_id, []).append(str(outcome))
    return found


def claimed(engine: Engine) -> int:
    with Session(engine) as session:
        return int(
            session.scalar(select(func.count()).where(AssetSchedule.claimed_by.is_not(None))) or 0
        )


def lease(engine: Engine) -> SchedulerLease | None:
    with Session(engine) as session:
        return session.get(SchedulerLease, "scheduler")


def hosts(n: int, second: int) -> list[str]:
    return [f"127.70.{second}.{i + 1}" for i in range(n)]


# --- many workers ------------------------------------------------------------------------------


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
def test_three_workers_audit_300_due_assets_exactly_once(engine, procs):
    ids = add_assets(engine, [f"127.70.{10 + i // 200}.{i % 200 + 1}" for i in range(300)])
    env = {"INVENTORY_AUDIT_DEFAULT_PORTS": str(CLOSED_PORT)}
    dispatcher = procs.start("scheduler", "--no-worker", "--id", "dispatcher", env=env)
    workers = [
        procs.start("worker", "--once", "--concurrency", "8", "--id", f"w{n}", env=env)
        for n in range(3)
    ]
    for proc in workers:
        assert proc.wait(120) == 0, procs.output(proc)
    assert procs.stop(dispatcher) == 0

    found = outcomes(engine)
    assert sorted(found) == sorted(ids)
    assert all(found[i] == ["completed"] for i in ids), "every asset audited exactly once"
    with Session(engine) as session:
        actors = Counter(session.scalars(select(Audit.actor)).all())
        rows = session.scalars(select(AssetSchedule)).all()
    assert set(actors) <= {"w0", "w1", "w2"} and sum(actors.values()) == 300
    assert len(actors) >= 2, f"the work was shared: {actors}"
    now = datetime.now(UTC)
    assert all(r.claimed_by is None and r.next_due_at > now + timedelta(days=6) for r in rows)


# --- crashes and restarts ----------------------------------------------------------------------


def findings_consistent(engine: Engine) -> None:
    """One finding per (asset, check, subject), each with exactly one "open" event."""
    with Session(engine) as session:
        findings = session.scalars(select(Finding)).all()
        keys = [(f.asset_id, f.check_id, f.subject) for f in findings]
        assert len(keys) == len(set(keys))
        for f in findings:
            events = session.scalars(
                select(FindingEvent.new_status).where(FindingEvent.finding_id == f.id)
            ).all()
            assert events.count("open") == 1, (f.check_id, events)


def test_kill_9_mid_audit_then_restart_loses_and_duplicates_nothing(engine, procs):
    targets = hosts(3, 1 if engine.dialect.name == "sqlite" else 2)
    ids = add_assets(engine, targets)
    with silent_peers(targets) as port:
        env = {"INVENTORY_AUDIT_DEFAULT_PORTS": str(port), "INVENTORY_AUDIT_READ_TIMEOUT": "2"}
        first = procs.start("scheduler", env=env)
        wait_for(lambda: claimed(engine) == 3, "the three audits to start")
        first.kill()  # SIGKILL, mid-audit
        first.wait(10)
        assert outcomes(engine) == {}, "nothing recorded by the killed process"

        second = procs.start("scheduler", env=env)
        done = wait_for(
            lambda: (o := outcomes(engine)) and all("completed" in o.get(i, []) for i in ids) and o,
            "the assets to be audited again",
        )
        assert procs.stop(second) == 0
    for asset_id in ids:
        assert done[asset_id] == ["interrupted", "completed"], done
    findings_consistent(engine)
    with Session(engine) as session:
        rows = session.scalars(select(AssetSchedule)).all()
        interrupted = session.scalars(select(Audit).where(Audit.outcome == "interrupted")).all()
    assert all(r.claimed_by is None and r.last_outcome == "completed" for r in rows)
    assert all(a.trigger == "scheduler" and a.finished_at >= a.started_at for a in interrupted)
    assert lease(engine) is None, "the lease is given up on SIGTERM"


def test_a_killed_worker_loses_its_claims_to_another(engine, procs):
    if engine.dialect.name == "sqlite":
        pytest.skip("separate workers are for PostgreSQL; SQLite is covered by the test above")
    targets = hosts(2, 3)
    ids = add_assets(engine, targets)
    with silent_peers(targets) as port:
        env = {"INVENTORY_AUDIT_DEFAULT_PORTS": str(port), "INVENTORY_AUDIT_READ_TIMEOUT": "2"}
        procs.start("scheduler", "--no-worker", env=env)
        doomed = procs.start("worker", "--id", "doomed", env=env)
        wait_for(lambda: claimed(engine) == 2, "the doomed worker to claim both")
        doomed.kill()
        doomed.wait(10)
        # After the claim timeout the dispatcher marks both interrupted: they are due again.
        wait_for(
            lambda: outcomes(engine) == {i: ["interrupted"] for i in ids}, "the claims to expire"
        )
        rescuer = procs.start("worker", "--once", "--id", "rescuer", env=env)
        assert rescuer.wait(60) == 0, procs.output(rescuer)
    found = outcomes(engine)
    assert all(found[i] == ["interrupted", "completed"] for i in ids), found
    with Session(engine) as session:
        completed_by = set(session.scalars(select(Audit.actor).where(Audit.outcome == "completed")))
        interrupted_by = set(
            session.scalars(select(Audit.actor).where(Audit.outcome == "interrupted"))
        )
    assert completed_by == {"rescuer"} and interrupted_by == {"doomed"}


def test_standby_takes_over_within_two_lease_periods_after_sigkill(engine, procs):
    env = {"INVENTORY_AUDIT_DEFAULT_PORTS": str(CLOSED_PORT)}
    active = procs.start("scheduler", "--id", "first", env=env)
    wait_for(lambda: (held := lease(engine)) and held.holder == "first", "the first to lead")
    standby = procs.start("scheduler", "--id", "second", env=env)
    # The standby waits: more than a lease period later the first still holds the lease.
    time.sleep(4)
    held = lease(engine)
    assert held is not None and held.holder == "first"
    assert standby.poll() is None
    last_renewal = held.renewed_at

    active.kill()
    active.wait(10)
    taken = wait_for(
        lambda: (now := lease(engine)) and now.holder == "second" and now, "the takeover"
    )
    # Killed after its last renewal: the standby took over within two lease periods (3 s) of it.
    assert taken.acquired_at - last_renewal <= timedelta(seconds=2 * 3)
    # And the new active scheduler does the work: a new asset is audited.
    (asset_id,) = add_assets(engine, ["127.70.4.1"], prefix="after-takeover")
    wait_for(lambda: outcomes(engine).get(asset_id) == ["completed"], "the new asset's audit")
    assert procs.stop(standby) == 0


# --- clean shutdown ----------------------------------------------------------------------------


def test_sigterm_marks_running_audits_interrupted_and_exits_cleanly(engine, procs):
    targets = hosts(2, 5 if engine.dialect.name == "sqlite" else 6)
    ids = add_assets(engine, targets)
    with silent_peers(targets) as port:
        env = {"INVENTORY_AUDIT_DEFAULT_PORTS": str(port), "INVENTORY_AUDIT_READ_TIMEOUT": "5"}
        proc = procs.start("scheduler", "--id", "sched", env=env)
        wait_for(lambda: claimed(engine) == 2, "the audits to start")
        assert procs.stop(proc) == 0
    assert outcomes(engine) == {i: ["interrupted"] for i in ids}
    with Session(engine) as session:
        rows = session.scalars(select(AssetSchedule)).all()
        workers = session.scalars(select(SchedulerWorker)).all()
    now = datetime.now(UTC)
    assert all(r.claimed_by is None and r.next_due_at <= now for r in rows)  # due again
    assert [w.state for w in workers] == ["stopped"]
    assert lease(engine) is None


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_sigterm_lets_running_audits_finish_within_the_grace_period(engine, procs):
    targets = hosts(2, 7)
    ids = add_assets(engine, targets)
    with silent_peers(targets) as port:
        env = {
            "INVENTORY_AUDIT_DEFAULT_PORTS": str(port),
            "INVENTORY_AUDIT_READ_TIMEOUT": "2",
            "INVENTORY_SCHEDULER_SHUTDOWN_GRACE": "30",
        }
        proc = procs.start("scheduler", env=env)
        wait_for(lambda: claimed(engine) == 2, "the audits to start")
        assert procs.stop(proc, timeout=60) == 0
    assert outcomes(engine) == {i: ["completed"] for i in ids}
    assert claimed(engine) == 0


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_serve_audits_new_assets_and_stops_on_sigterm(engine, procs):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"INVENTORY_AUDIT_DEFAULT_PORTS": str(CLOSED_PORT), "INVENTORY_WEB_SECRET_KEY": "k" * 40}
    server = procs.start("serve", "--port", str(port), env=env)
    (asset_id,) = add_assets(engine, ["127.70.8.1"], prefix="served")
    wait_for(lambda: outcomes(engine).get(asset_id) == ["completed"], "the audit by serve")
    assert procs.stop(server) == 0
    assert lease(engine) is None

    quiet = procs.start("serve", "--port", str(port), "--no-scheduler", env=env)
    # Up and serving before the check (and before SIGTERM, which must find its handler).
    wait_for(lambda: listening(port), "serve --no-scheduler listening")
    (other,) = add_assets(engine, ["127.70.8.2"], prefix="not-served")
    time.sleep(2)
    assert other not in outcomes(engine) and lease(engine) is None
    assert procs.stop(quiet) == 0


# --- the job store -----------------------------------------------------------------------------

RUNS: list[datetime] = []


def tick() -> None:
    RUNS.append(datetime.now(UTC))


def test_missed_runs_of_a_stored_job_coalesce_into_one(engine):
    from inventory.scheduler.jobs import build_scheduler, stop_scheduler

    RUNS.clear()
    first = build_scheduler(engine, UTC)
    first.start(paused=True)
    first.add_job(
        f"{__name__}:tick",
        trigger="interval",
        minutes=10,
        id="test.tick",
        replace_existing=True,
        next_run_time=datetime.now(UTC) - timedelta(minutes=35),  # three runs missed
    )
    stop_scheduler(first, wait=True)  # "the process stopped": the job stays in the database
    assert RUNS == []

    restarted = build_scheduler(engine, UTC)
    restarted.start()
    try:
        wait_for(lambda: RUNS, "the missed run", timeout=20)
        time.sleep(1)
        job = restarted.get_job("test.tick")
        assert job is not None and job.next_run_time > datetime.now(UTC)
    finally:
        stop_scheduler(restarted, wait=True)
    assert len(RUNS) == 1
