"""`audit_assets` (behind `inventory audit run --all`): many assets audited at once in one event
loop under shared limits, each one's results stored in its own transaction as its audit ends."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from sqlalchemy import select

from inventory.models import Audit, AuditOutcome, Finding
from inventory.services.audits import audit_assets
from inventory.settings import load_settings
from tests.audit.peers import free_port
from tests.factories import make_asset


class Overlap:
    """Counts the connections open at once across several peers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.peak = 0

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *_exc: object) -> None:
        with self.lock:
            self.now -= 1


@contextmanager
def slow_greeter(host: str, port: int, overlap: Overlap) -> Iterator[None]:
    """An SSH-like service that takes 0.3 s to greet each connection."""
    listener = socket.create_server((host, port))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn, overlap:
            time.sleep(0.3)
            try:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
            except OSError:
                pass

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_every_asset_audited_together_and_stored_on_its_own(session):
    hosts = [f"127.42.176.{i}" for i in range(1, 7)]
    port = free_port(hosts[0])
    assets = [make_asset(session, name=f"box-{i}", addresses=[h]) for i, h in enumerate(hosts)]
    settings: Any = load_settings(environ={}).audit.model_copy(
        update={"default_ports": [port], "connect_timeout": 1.0, "read_timeout": 1.0}
    )
    overlap = Overlap()
    with ExitStack() as stack:
        for host in hosts:
            stack.enter_context(slow_greeter(host, port, overlap))
        done = list(
            audit_assets(
                session=session,
                asset_ids=[a.id for a in assets],
                settings=settings,
                actor="tests",
                trigger="cli",
            )
        )
    assert sorted(asset_id for asset_id, _ in done) == sorted(a.id for a in assets)
    assert all(audit.outcome == AuditOutcome.completed for _, audit in done)
    assert overlap.peak > 1  # the audits ran side by side, not one after the other
    session.expire_all()
    for asset in assets:
        (audit,) = session.scalars(select(Audit).where(Audit.asset_id == asset.id)).all()
        assert audit.trigger == "cli"
        (finding,) = session.scalars(select(Finding).where(Finding.asset_id == asset.id)).all()
        assert finding.check_id == "port.unexpected-open"
        assert finding.subject == f"{asset.address_list[0]}:{port}"
