"""The finding lifecycle driven end to end by a real peer: a real redis-server on loopback is
audited, then given a password, then opened again, then made unreachable, while the findings
move open -> still present -> fixed -> reopened, and an accepted risk expires. Each step is a
real audit through the services layer, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from inventory.audit import run_audit
from inventory.models import Audit, AuditOutcome, Finding, FindingEvent, FindingStatus
from inventory.models.types import utcnow
from inventory.services.audits import audit_asset, record_audit, target_for
from inventory.services.findings import accept_risk
from inventory.settings import load_settings
from tests.audit.peers import free_port
from tests.factories import make_asset

REDIS = shutil.which("redis-server")
NO_AUTH = "database.no-authentication"
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed")
_hosts = iter(range(1, 250))


def audit_settings() -> Any:
    return load_settings(environ={}).audit.model_copy(
        update={"default_ports": [], "connect_timeout": 1.0, "read_timeout": 1.0}
    )


def _wait(host: str, port: int) -> None:
    deadline = time.monotonic() + 5
    while True:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


@contextmanager
def redis(host: str, port: int, password: str = "") -> Iterator[None]:
    args = [str(REDIS), "--port", str(port), "--bind", host, "--save", "", "--appendonly", "no"]
    args += ["--dir", "/tmp"] + (["--requirepass", password] if password else [])
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _wait(host, port)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@contextmanager
def unreachable(host: str, port: int) -> Iterator[None]:
    """The port stops answering at all (as behind a firewall that drops): a listener whose
    accept queue is full, so new connection attempts time out instead of being refused."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(0)
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect((host, port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    time.sleep(0.1)
    try:
        yield
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def _finding(session: Any, asset_id: int) -> Finding:
    session.expire_all()
    (finding,) = session.scalars(
        select(Finding).where(Finding.asset_id == asset_id, Finding.check_id == NO_AUTH)
    ).all()
    return finding


def test_open_fixed_reopened_and_unreachable_with_a_real_redis(session):
    host = f"127.42.175.{next(_hosts)}"
    port = free_port(host)
    asset = make_asset(
        session, name="cache", addresses=[host], expected_services=[f"{port}/tcp redis"]
    )
    settings = audit_settings()

    def audit() -> Audit:
        return audit_asset(session=session, asset_id=asset.id, settings=settings, actor="tests")

    with redis(host, port):
        first = audit()
        found = _finding(session, asset.id)
        assert first.outcome == AuditOutcome.completed
        assert found.status == FindingStatus.open and found.severity == "critical"
        first_seen = found.first_seen
        audit()
        again = _finding(session, asset.id)  # still one finding, seen later
        assert again.id == found.id and again.status == FindingStatus.open
        assert again.last_seen > first_seen and again.first_seen == first_seen

    with redis(host, port, password="a-long-password-for-tests"):
        audit()
        assert _finding(session, asset.id).status == FindingStatus.fixed

    with redis(host, port):
        audit()
        assert _finding(session, asset.id).status == FindingStatus.reopened

    with unreachable(host, port):
        gone = audit()
        assert gone.outcome == AuditOutcome.unreachable
        assert _finding(session, asset.id).status == FindingStatus.reopened  # unchanged

    events = session.scalars(
        select(FindingEvent.new_status)
        .where(FindingEvent.finding_id == found.id)
        .order_by(FindingEvent.id)
    ).all()
    assert events == ["open", "fixed", "reopened"]


def test_an_accepted_risk_on_a_real_peer_comes_back_when_it_expires(session):
    host = f"127.42.175.{next(_hosts)}"
    port = free_port(host)
    asset = make_asset(
        session, name="cache-2", addresses=[host], expected_services=[f"{port}/tcp redis"]
    )
    settings = audit_settings()
    with redis(host, port):
        audit_asset(session=session, asset_id=asset.id, settings=settings, actor="tests")
        finding = _finding(session, asset.id)
        until = utcnow() + timedelta(days=7)
        accept_risk(
            session=session,
            finding_id=finding.id,
            actor="dr-martin",
            reason="isolated lab network until the migration",
            until=until,
        )
        audit_asset(session=session, asset_id=asset.id, settings=settings, actor="tests")
        assert _finding(session, asset.id).status == FindingStatus.accepted  # still accepted

        # A week later the peer is still open: the acceptance has run out, the finding is back.
        report = run_audit(target_for(session.get(type(asset), asset.id), settings), settings)
        record_audit(
            session=session,
            asset_id=asset.id,
            report=report,
            actor="tests",
            now=until + timedelta(hours=1),
        )
        assert _finding(session, asset.id).status == FindingStatus.reopened
