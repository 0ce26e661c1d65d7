"""`inventory audit run` and `inventory findings list` as scripts run them (PRODUCT.md contract):
the installed command in a subprocess, against a real peer on a loopback address."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from inventory.audit import AuditReport, ProbeOutcome, ProbeResult
from inventory.audit.probes.base import FindingCandidate, PortState, ServiceObservation
from inventory.models import Finding
from inventory.services.assets import find_live_asset
from inventory.services.audits import record_audit
from inventory.services.findings import accept_risk
from tests import test_cli
from tests.loopback import greeting_peer
from tests.test_cli import Cli

# The databases and the command fixtures are test_cli's own (one initialised template per backend).
databases = test_cli.databases
cli = test_cli.cli

CONTRACT = ["asset", "address", "port", "check", "severity", "status", "title"]
FAST = {
    "INVENTORY_AUDIT_CONNECT_TIMEOUT": "1",
    "INVENTORY_AUDIT_READ_TIMEOUT": "1",
    "INVENTORY_AUDIT_AUDIT_DEADLINE": "20",
}


def seed_findings(cli: Cli) -> None:
    """Two assets with findings recorded as an audit would (no network involved)."""
    cli.seed(
        "name,addresses,holds_patient_data\npacs,127.42.161.10,yes\noffice-pc,127.42.161.11,no\n"
    )
    now = datetime.now(UTC) - timedelta(hours=1)
    with cli.session() as session:
        for name, found in {
            "pacs": [("dicom.open-association", "high", 104), ("ftp.cleartext", "medium", 21)],
            "office-pc": [("database.no-authentication", "critical", 6379)],
        }.items():
            asset = find_live_asset(session=session, name=name)
            address = str(asset.address_list[0])
            result = ProbeResult(
                "tcp",
                ProbeOutcome.ran,
                services=[ServiceObservation(address, p, PortState.open) for _, _, p in found],
                findings=[
                    FindingCandidate(c, s, address, p, f"{c} on {p}", "Fix it.")
                    for c, s, p in found
                ],
                checks={c for c, _, _ in found},
            )
            report = AuditReport(target=name, started_at=now, results=[result])
            record_audit(session=session, asset_id=asset.id, report=report, actor="t", now=now)
        ftp = session.scalars(select(Finding).where(Finding.check_id == "ftp.cleartext")).one()
        accept_risk(
            session=session,
            finding_id=ftp.id,
            actor="tests",
            reason="legacy scanner",
            until=datetime.now(UTC) + timedelta(days=10),
        )


def test_audit_run_on_a_loopback_peer(cli: Cli):
    host = "127.42.161.1"
    cli.seed(f"name,addresses\nmystery-box,{host}\n")
    with greeting_peer(host) as port:
        env = {**FAST, "INVENTORY_AUDIT_DEFAULT_PORTS": str(port)}
        result = cli("audit", "run", "--asset", "mystery-box", env=env)
    assert result.returncode == 0, result.stderr
    assert "mystery-box: reachable" in result.stdout
    assert f"open ports: {host}:{port}" in result.stdout
    assert f"port.unexpected-open {host}:{port}" in result.stdout

    listed = json.loads(cli("findings", "list", "--format", "json").stdout)
    assert [
        (f["asset"], f["address"], f["port"], f["check"], f["status"])
        for f in listed
        if f["check"] == "port.unexpected-open"
    ] == [("mystery-box", host, port, "port.unexpected-open", "open")]


def test_audit_run_all_and_no_peer_left(cli: Cli):
    """--all audits every asset; nothing listens any more: the port is closed, exit still 0."""
    host = "127.42.161.2"
    cli.seed(f"name,addresses\nbox-a,{host}\nbox-b,127.42.161.3\n")
    with greeting_peer(host) as port:
        pass
    env = {**FAST, "INVENTORY_AUDIT_DEFAULT_PORTS": str(port)}
    result = cli("audit", "run", "--all", env=env)
    assert result.returncode == 0, result.stderr
    assert "box-a: " in result.stdout and "box-b: " in result.stdout
    assert "open findings: 0" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--asset", "no-such-asset"], "no asset called no-such-asset"),
        ([], "give either --asset NAME or --all"),
    ],
)
def test_audit_run_refuses_what_it_cannot_do(cli: Cli, args, message):
    result = cli("audit", "run", *args)
    assert result.returncode in (1, 2)
    assert message in result.stderr
    if args:
        assert result.returncode == 1


def test_findings_list_json_csv_and_table(cli: Cli):
    seed_findings(cli)
    result = cli("findings", "list", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert all(set(CONTRACT) <= set(r) for r in rows)
    # fix this first: critical, then high; the accepted one is listed with its date
    assert [(r["asset"], r["check"], r["severity"], r["status"]) for r in rows] == [
        ("office-pc", "database.no-authentication", "critical", "open"),
        ("pacs", "dicom.open-association", "high", "open"),
        ("pacs", "ftp.cleartext", "medium", "accepted"),
    ]
    assert rows[0]["address"] == "127.42.161.11" and rows[0]["port"] == 6379
    assert rows[2]["accepted_until"] and rows[0]["accepted_until"] is None

    open_only = json.loads(cli("findings", "list", "--status", "open", "--format", "json").stdout)
    assert [r["check"] for r in open_only] == [
        "database.no-authentication",
        "dicom.open-association",
    ]
    high = json.loads(cli("findings", "list", "--severity", "high", "--format", "json").stdout)
    assert [r["asset"] for r in high] == ["pacs"]

    as_csv = cli("findings", "list", "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert list(table[0])[: len(CONTRACT)] == CONTRACT
    assert [(r["asset"], r["port"], r["status"]) for r in table] == [
        ("office-pc", "6379", "open"),
        ("pacs", "104", "open"),
        ("pacs", "21", "accepted"),
    ]

    text = cli("findings", "list", "--status", "accepted").stdout
    assert "ftp.cleartext" in text and "dicom.open-association" not in text
    assert "(1 findings)" in text


def test_findings_list_refuses_an_unknown_status(cli: Cli):
    result = cli("findings", "list", "--status", "later")
    assert result.returncode == 2
    assert "later" in result.stderr
