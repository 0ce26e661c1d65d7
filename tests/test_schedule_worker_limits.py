"""A worker runs its audits in one event loop under one connection limit ([audit]
max_connections), shared by all of them, not one limit per audit."""

from __future__ import annotations

import asyncio
import selectors
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import select
from sqlmodel import Session

from inventory.models import Audit
from inventory.scheduler.clock import new_random
from inventory.scheduler.windows import Rules
from inventory.scheduler.worker import Worker
from inventory.services import schedule as schedule_service
from inventory.settings import load_settings
from tests import test_schedule_processes
from tests.audit.peers import free_port

database = test_schedule_processes.database
engine = test_schedule_processes.engine
add_assets = test_schedule_processes.add_assets


@contextmanager
def silent_peers(hosts: list[str], port: int) -> Iterator[list[int]]:
    """A service on each host that accepts and says nothing until the client hangs up (each
    audit waits for a greeting); yields [the most connections ever open at once across them].

    One thread serves them all and, in each round, handles hang-ups before new connections: a
    client closes one connection before it opens the next (it frees its slot on close), so the
    count is exact."""
    selector = selectors.DefaultSelector()
    listeners = [socket.create_server((host, port)) for host in hosts]
    for listener in listeners:
        listener.setblocking(False)
        selector.register(listener, selectors.EVENT_READ, "listener")
    stop = threading.Event()
    peak = [0]

    def serve() -> None:
        held: set[socket.socket] = set()
        while not stop.is_set():
            events = selector.select(0.05)
            for key, _ in events:
                if key.data == "held":
                    conn = key.fileobj
                    assert isinstance(conn, socket.socket)
                    try:
                        gone = conn.recv(1) == b""
                    except OSError:
                        gone = True
                    if gone:
                        selector.unregister(conn)
                        held.discard(conn)
                        conn.close()
            for key, _ in events:
                if key.data == "listener":
                    listener = key.fileobj
                    assert isinstance(listener, socket.socket)
                    while True:
                        try:
                            conn, _ = listener.accept()
                        except BlockingIOError:
                            break
                        conn.setblocking(False)
                        selector.register(conn, selectors.EVENT_READ, "held")
                        held.add(conn)
                        peak[0] = max(peak[0], len(held))
        for conn in held:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()
        for listener in listeners:
            listener.close()
        selector.close()


def test_a_workers_audits_share_one_connection_limit(engine):
    hosts = [f"127.42.177.{i}" for i in range(1, 7)]
    port = free_port(hosts[0])
    ids = add_assets(engine, hosts, prefix="held")
    settings = load_settings(environ={})
    settings.audit = settings.audit.model_copy(
        update={
            "default_ports": [port],
            "max_connections": 2,
            "connect_timeout": 1.0,
            "read_timeout": 0.4,  # how long each audit waits for a greeting that never comes
        }
    )
    with Session(engine) as session:
        schedule_service.backfill(
            session=session, now=datetime.now(UTC), spread=0, rng=new_random(1)
        )
        session.commit()
        schedule_service.dispatch(
            session=session, now=datetime.now(UTC), rules=Rules(), max_running=10, batch_size=10
        )
    worker = Worker(engine, settings, worker_id="limits", concurrency=6, once=True)
    with silent_peers(hosts, port) as peak:
        asyncio.run(asyncio.wait_for(worker.run(asyncio.Event()), timeout=60))
    with Session(engine) as session:
        audited = session.scalars(select(Audit.asset_id)).all()
    assert sorted(audited) == sorted(ids)
    assert peak[0] == 2  # six audits at once, two connections at most between them
