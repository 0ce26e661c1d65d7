"""No patient data in any report (PRODUCT.md): real DICOM, web, FTP and Redis peers full of
synthetic patients are audited by the `inventory` command, then reports are written in every
format, by the command and by a schedule (folder and e-mail), in English and French; none of
them holds any of the synthetic values. Each peer really leaks (it has its finding in the
report), so the search means something. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from inventory.db import make_engine
from inventory.services import report_deliveries as delivery_service
from inventory.services import report_schedules as schedule_service
from inventory.settings import load_settings
from tests import test_cli
from tests.conftest import TEST_SECRET
from tests.reports.helpers import free_ports
from tests.reports.test_delivery import SmtpServer
from tests.test_cli import Cli
from tests.test_privacy import (  # noqa: F401 - fixtures
    CANARY,
    FAST,
    HOSTS,
    dicom_peer,
    ftp_peer,
    redis_peer,
    web_peer,
)

databases = test_cli.databases
cli = test_cli.cli


def test_no_patient_data_in_any_report(
    cli: Cli,
    tmp_path: Path,
    dicom_peer,  # noqa: F811
    web_peer,  # noqa: F811
    ftp_peer,  # noqa: F811
    redis_peer,  # noqa: F811
):
    cli.seed(
        "name,addresses,expected_services,holds_patient_data\n"
        f"pacs,{HOSTS['pacs']},{dicom_peer}/tcp dicom,yes\n"
        f"viewer,{HOSTS['viewer']},{web_peer}/tcp http,yes\n"
        f"nas,{HOSTS['nas']},{ftp_peer}/tcp ftp,yes\n"
        f"cache,{HOSTS['cache']},{redis_peer}/tcp redis,no\n"
    )
    audit = cli("audit", "run", "--all", env=FAST)
    assert audit.returncode == 0, audit.stderr
    outputs: dict[str, bytes] = {}
    for language in ("en", "fr"):
        for fmt in ("html", "pdf", "csv", "json"):
            target = tmp_path / f"report-{language}.{fmt}"
            done = cli(
                "report",
                "generate",
                "--format",
                fmt,
                "--output",
                str(target),
                "--language",
                language,
            )
            assert done.returncode == 0, done.stderr
            outputs[target.name] = target.read_bytes()
            outputs[f"{target.name} (stderr)"] = done.stderr.encode()
    # The reports do show each leak: the search below is not vacuous.
    snapshot = json.loads(outputs["report-en.json"])
    checks = {f["check"] for f in snapshot["findings"]}
    assert {
        "dicom.query-without-authorization",
        "http.no-authentication",
        "ftp.anonymous-login",
        "database.no-authentication",
    } <= checks, checks
    assert snapshot["totals"]["exposing"] == 3

    # A schedule's run: the folder and a mail to a real SMTP server.
    port = free_ports("127.0.0.1", 1)[0]
    server = SmtpServer(port, tmp_path)
    settings = load_settings(
        {
            "general": {"environment": "test", "var_dir": str(tmp_path / "var")},
            "database": {"url": cli.url},
            "web": {"secret_key": TEST_SECRET},
            "reports": {
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "smtp_cafile": str(server.cafile),
                "smtp_user": "vigie",
                "smtp_password": "smtp secret passphrase",
                "folder": str(tmp_path / "folder"),
            },
        },
        environ={},
    )
    engine = make_engine(cli.url)
    try:
        from sqlmodel import Session

        with Session(engine, expire_on_commit=False) as session, server:
            data = schedule_service.validate_schedule(
                {
                    "name": "Weekly",
                    "scope": "all",
                    "cron": "0 7 * * mon",
                    "language": "fr",
                    "formats": ["html", "pdf", "csv", "json"],
                    "recipients": "dpo@clinic.example",
                    "folder": "weekly",
                },
                languages=["en", "fr"],
            )
            schedule = schedule_service.create_schedule(
                session=session, data=data, actor="t", settings=settings
            )
            report = delivery_service.run_schedule(
                session=session,
                settings=settings,
                schedule=schedule,
                now=schedule.created_at,
                trigger="web",
                actor="t",
            )
            statuses = [
                d.status
                for d in delivery_service.list_deliveries(session=session, report_id=report.id)
            ]
    finally:
        engine.dispose()
    assert statuses == ["sent", "sent"]
    (mail,) = server.inbox.messages
    outputs["e-mail"] = mail.as_bytes()
    for path in (tmp_path / "folder" / "weekly").iterdir():
        outputs[f"folder {path.name}"] = path.read_bytes()
    assert len(outputs) == 8 * 2 + 1 + 4
    for place, content in outputs.items():
        assert CANARY.encode() not in content.upper(), f"patient data in {place}"
    # PDF text is compressed: read it as text too.
    import subprocess

    for name in ("report-en.pdf", "report-fr.pdf"):
        text = subprocess.run(
            ["pdftotext", "-", "-"], input=outputs[name], capture_output=True, check=True
        ).stdout
        assert b"pacs" in text and CANARY.encode() not in text.upper()


def test_the_search_would_see_a_leak(cli: Cli, tmp_path: Path):
    """The same search finds the token when it is there (an asset named after a patient)."""
    cli.seed(f"name,addresses\n{CANARY} ALPHA,127.42.171.9\n")
    for fmt in ("html", "json"):
        target = tmp_path / f"r.{fmt}"
        assert cli("report", "generate", "--format", fmt, "--output", str(target)).returncode == 0
        assert CANARY.encode() in target.read_bytes().upper()
