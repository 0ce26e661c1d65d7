"""Reports by e-mail to a real SMTP server (aiosmtpd) on loopback: STARTTLS and login, the PDF
attached and the summary in the body; a server that is down, then back: the delivery is retried
with a growing delay and goes through; large reports zipped or linked, never cut. Also the folder.
SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import zipfile
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from inventory.models import ReportDelivery
from inventory.services import report_deliveries as delivery_service
from inventory.services import report_schedules as schedule_service
from inventory.services import reports as report_service
from tests.audit.webpeers import make_cert, server_context
from tests.factories import make_asset
from tests.reports.helpers import free_ports, report_settings

T0 = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
HOST = "127.0.0.1"
USER, SECRET = "vigie", "smtp secret passphrase"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
        )
        return "250 OK"


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login == USER.encode() and auth_data.password == SECRET.encode()
    )
    return AuthResult(success=ok, handled=False)


class SmtpServer:
    """aiosmtpd on 127.0.0.1: STARTTLS required, then a login."""

    def __init__(self, port: int, directory: Path) -> None:
        self.cert = make_cert("localhost", dns=("localhost",), ips=(HOST,), ca=True)
        self.cafile, _ = self.cert.write(directory, "smtp-ca")
        self.inbox = Inbox()
        self.controller = Controller(
            self.inbox,
            hostname=HOST,
            port=port,
            tls_context=server_context(self.cert, directory),
            require_starttls=True,
            authenticator=_authenticate,
            auth_require_tls=True,
        )

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.controller.stop()


@pytest.fixture
def port() -> int:
    return free_ports(HOST, 1)[0]


@pytest.fixture
def smtp_settings(settings, port, tmp_path):
    cafile = tmp_path / "smtp-ca.crt"
    return report_settings(
        settings,
        smtp_host=HOST,
        smtp_port=port,
        smtp_starttls=True,
        smtp_cafile=str(cafile),
        smtp_user=USER,
        smtp_password=SECRET,
        mail_from="vigie@clinic.example",
        retry_seconds=300,
        max_attempts=3,
        public_url="https://vigie.clinic.example",
    )


def schedule_for(session, settings, **changes):
    raw = {
        "name": "Weekly",
        "scope": "all",
        "cron": "0 7 * * mon",
        "formats": ["pdf", "csv"],
        "language": "en",
        "recipients": "dpo@clinic.example",
        **changes,
    }
    data = schedule_service.validate_schedule(raw, languages=["en", "fr"])
    return schedule_service.create_schedule(
        session=session, data=data, actor="t", settings=settings, now=T0
    )


def run(session, settings, schedule):
    """The schedule's run at T0, as the scheduler's report job does it."""
    return delivery_service.run_schedule(
        session=session,
        settings=settings,
        schedule=schedule,
        now=T0,
        trigger="schedule",
        actor="scheduler",
    )


def test_mail_with_the_pdf_attached_over_starttls_and_login(session, smtp_settings, port, tmp_path):
    make_asset(session, name="Open PACS", kind="pacs", holds_patient_data="yes")
    schedule = schedule_for(session, smtp_settings)
    with SmtpServer(port, tmp_path) as server:
        assert Path(smtp_settings.reports.smtp_cafile) == server.cafile
        report = run(session, smtp_settings, schedule)
    (delivery,) = delivery_service.list_deliveries(session=session, report_id=report.id)
    assert (delivery.status, delivery.attempts, delivery.detail) == ("sent", 1, "attached")
    (message,) = server.inbox.messages
    assert message["To"] == "dpo@clinic.example" and message["From"] == "vigie@clinic.example"
    assert message["Subject"].startswith("Weekly, ")
    body = message.get_body(("plain",)).get_content()
    assert "No system exposes patient data to anyone on the network." in body
    assert "https://vigie.clinic.example/reports/" in body and report.sha256 in body
    files = {p.get_filename(): p.get_payload(decode=True) for p in message.iter_attachments()}
    pdf_name = report_service.file_name(report, "pdf")
    assert set(files) == {pdf_name, report_service.file_name(report, "csv")}
    assert files[pdf_name].startswith(b"%PDF")
    assert files[pdf_name] == report_service.render_report(
        session=session, report=report, fmt="pdf"
    )


def test_a_server_that_was_down_gets_the_report_on_a_retry(session, smtp_settings, port, tmp_path):
    server = SmtpServer(port, tmp_path)  # not started yet
    schedule = schedule_for(session, smtp_settings)
    report = run(session, smtp_settings, schedule)
    (delivery,) = delivery_service.list_deliveries(session=session, report_id=report.id)
    assert delivery.status == "failed" and delivery.attempts == 1
    assert f"cannot reach the SMTP server {HOST}:{port}" in delivery.last_error
    assert delivery.next_attempt_at == T0 + timedelta(seconds=300)
    # Not yet due: nothing is tried.
    early = T0 + timedelta(seconds=299)
    assert delivery_service.deliver_due(session=session, settings=smtp_settings, now=early) == []
    # Still down at the second try: the delay doubles.
    second = T0 + timedelta(seconds=300)
    delivery_service.deliver_due(session=session, settings=smtp_settings, now=second)
    session.refresh(delivery)
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert delivery.next_attempt_at == second + timedelta(seconds=600)
    # The server is back: the third try delivers, once.
    with server:
        third = second + timedelta(seconds=600)
        tried = delivery_service.deliver_due(session=session, settings=smtp_settings, now=third)
        assert len(tried) == 1
        assert (
            delivery_service.deliver_due(session=session, settings=smtp_settings, now=third) == []
        )
    session.refresh(delivery)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 3, "")
    assert len(server.inbox.messages) == 1


def test_every_try_failing_is_given_up_and_shown(session, smtp_settings):
    schedule = schedule_for(session, smtp_settings)
    report = run(session, smtp_settings, schedule)
    now = T0
    for _ in range(5):
        now += timedelta(hours=2)
        delivery_service.deliver_due(session=session, settings=smtp_settings, now=now)
    (delivery,) = delivery_service.list_deliveries(session=session, report_id=report.id)
    assert (delivery.status, delivery.attempts) == ("abandoned", 3)
    assert delivery.next_attempt_at is None and "cannot read the CA bundle" in delivery.last_error


def test_a_wrong_password_is_a_clear_failure(session, smtp_settings, port, tmp_path):
    settings = report_settings(smtp_settings, smtp_password="wrong")
    schedule = schedule_for(session, settings)
    with SmtpServer(port, tmp_path) as server:
        report = run(session, settings, schedule)
    (delivery,) = delivery_service.list_deliveries(session=session, report_id=report.id)
    assert delivery.status == "failed" and "refused the login" in delivery.last_error
    assert server.inbox.messages == []


@pytest.mark.parametrize(("limit_mb", "how"), [(0.03, "zipped"), (0.001, "too-large")])
def test_large_reports_are_zipped_or_linked_never_cut(
    session, smtp_settings, port, tmp_path, limit_mb, how
):
    for n in range(60):
        make_asset(session, name=f"workstation {n}", kind="workstation")
    settings = report_settings(smtp_settings, max_attachment_mb=limit_mb)
    schedule = schedule_for(session, settings, formats=["html", "csv", "json"])
    with SmtpServer(port, tmp_path) as server:
        report = run(session, settings, schedule)
    (delivery,) = delivery_service.list_deliveries(session=session, report_id=report.id)
    assert delivery.status == "sent" and delivery.detail == how
    (message,) = server.inbox.messages
    body = message.get_body(("plain",)).get_content()
    attachments = list(message.iter_attachments())
    if how == "zipped":
        (archive,) = attachments
        with zipfile.ZipFile(BytesIO(archive.get_payload(decode=True))) as opened:
            names = sorted(opened.namelist())
            html = opened.read(report_service.file_name(report, "html"))
        assert len(names) == 3
        assert html == report_service.render_report(session=session, report=report, fmt="html")
        assert "attached compressed" in body
    else:
        assert attachments == []
        assert "too large to attach, even compressed" in body
        assert f"https://vigie.clinic.example/reports/{report.id}" in body


def test_the_folder_gets_every_format(session, settings, tmp_path):
    settings = report_settings(settings, folder=str(tmp_path / "reports"))
    schedule = schedule_for(
        session, settings, recipients="", folder="monthly", formats=["html", "pdf", "csv", "json"]
    )
    report = run(session, settings, schedule)
    (delivery,) = session.query(ReportDelivery).all()
    assert delivery.status == "sent"
    written = sorted(p.name for p in (tmp_path / "reports" / "monthly").iterdir())
    assert written == sorted(
        report_service.file_name(report, f) for f in ("csv", "html", "json", "pdf")
    )
