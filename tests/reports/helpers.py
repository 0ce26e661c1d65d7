"""Shared by the report tests: a real audit at an injected time, and reading a report back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from inventory.audit import run_audit
from inventory.models import Report
from inventory.services import reports as report_service
from inventory.services.audits import record_audit, target_for
from inventory.settings import Settings


def audit_at(session: Session, settings: Settings, asset_id: int, now: datetime) -> None:
    """The real engine against the real peers; only the time it is recorded at is injected."""
    from inventory.services import schedule as schedule_service
    from inventory.services.assets import get_asset

    asset = get_asset(session=session, asset_id=asset_id)
    result = run_audit(target_for(asset, settings.audit), settings.audit)
    schedule_service.audit_recorded(
        session=session,
        asset_id=asset_id,
        outcome="completed" if result.reachable else "unreachable",
        duration=result.duration,
        now=now,
        actor="tests",
    )
    record_audit(session=session, asset_id=asset_id, report=result, actor="tests", now=now)


def snapshot(session: Session, report: Report) -> dict[str, Any]:
    return report_service.load_snapshot(session=session, report_id=report.id or 0)


def text_of(session: Session, report: Report, fmt: str) -> str:
    content = report_service.render_report(session=session, report=report, fmt=fmt)
    if fmt == "pdf":
        import subprocess

        done = subprocess.run(
            ["pdftotext", "-layout", "-", "-"], input=content, capture_output=True, check=True
        )
        return done.stdout.decode()
    return content.decode("utf-8-sig")


def report_settings(settings: Settings, **reports: Any) -> Settings:
    """`settings` with some [reports] values changed (and short audit timeouts)."""
    return settings.model_copy(
        update={
            "reports": type(settings.reports).model_validate(
                {**settings.reports.model_dump(), **reports}
            ),
            "audit": settings.audit.model_copy(
                update={"connect_timeout": 0.5, "read_timeout": 0.5, "default_ports": []}
            ),
        }
    )


def free_ports(host: str, count: int) -> list[int]:
    import socket

    sockets, ports = [], []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((host, 0))
        sockets.append(sock)
        ports.append(int(sock.getsockname()[1]))
    for sock in sockets:
        sock.close()
    return ports


class Peers:
    """Plain TCP services on fixed ports of one loopback address, opened and closed at will
    (a machine whose services change between audits)."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.open: dict[int, Any] = {}

    def start(self, port: int) -> None:
        import socket

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, port))
        sock.listen(16)
        self.open[port] = sock

    def stop(self, port: int) -> None:
        self.open.pop(port).close()

    def close(self) -> None:
        for port in list(self.open):
            self.stop(port)
