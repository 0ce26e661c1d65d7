"""A small clinic's inventory with findings of every kind, and two weekly reports of it, for the
rendering, privacy and browser tests (and for looking at the PDF)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from inventory.models import AssetSchedule, Finding, FindingEvent, Report, ReportSchedule
from inventory.services import report_schedules as schedule_service
from inventory.services import reports as report_service
from inventory.services.findings import accept_risk
from inventory.settings import Settings
from tests.factories import make_asset

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script> PACS'

ASSETS: list[dict[str, Any]] = [
    {
        "name": HOSTILE,
        "kind": "pacs",
        "site": "Lyon",
        "zone": "radiology",
        "holds_patient_data": "yes",
        "criticality": "critical",
        "owner": "Dr Martin",
    },
    {
        "name": "Web viewer (Orthanc)",
        "kind": "web-viewer",
        "site": "Lyon",
        "zone": "radiology",
        "holds_patient_data": "yes",
        "exposure": "vpn",
        "criticality": "high",
    },
    {
        "name": "NAS sauvegardes",
        "kind": "nas",
        "site": "Lyon",
        "zone": "backup",
        "holds_patient_data": "yes",
    },
    {"name": "Échographe salle 2", "kind": "modality", "site": "Villeurbanne", "zone": "radiology"},
    {
        "name": "Accueil PC-1",
        "kind": "workstation",
        "site": "Lyon",
        "zone": "office",
        "criticality": "low",
    },
    {"name": "Redis cache", "kind": "database", "site": "Lyon", "zone": "servers"},
]
# asset index, check, severity, port, evidence, stored title, remediation
FINDINGS: list[tuple[int, str, str, int | None, dict[str, Any], str]] = [
    (
        0,
        "dicom.query-without-authorization",
        "critical",
        4242,
        {"matches": 2, "attributes": 3},
        "Restrict the DICOM service to known AE titles and addresses.",
    ),
    (
        0,
        "dicom.open-association",
        "high",
        4242,
        {"called_ae": "ORTHANC"},
        "Restrict the DICOM service to known AE titles and addresses.",
    ),
    (1, "http.no-authentication", "critical", 8042, {}, "Put the viewer behind a login."),
    (1, "http.cleartext", "critical", 8042, {}, "Serve the viewer over HTTPS only."),
    (2, "ftp.anonymous-login", "high", 21, {}, "Disable anonymous FTP."),
    (2, "ftp.cleartext", "medium", 21, {}, "Use FTPS or SFTP."),
    (
        3,
        "remote-access.exposed",
        "high",
        5900,
        {"service": "vnc"},
        "Close the port at the firewall; reach it over the VPN.",
    ),
    (
        4,
        "tls.weak",
        "medium",
        443,
        {"weaknesses": ["self-signed", "old-protocol"]},
        "Install a certificate from your internal authority.",
    ),
    (
        5,
        "database.no-authentication",
        "critical",
        6379,
        {"product": "Redis"},
        "Require a password; bind to the application server only.",
    ),
    (5, "port.unexpected-open", "medium", 8080, {"service": "http"}, "Close the port."),
]


def audited(
    session: Session,
    when: datetime,
    created: datetime | None = None,
    *,
    asset_id: int | None = None,
    skip: int | None = None,
    outcome: str = "completed",
) -> None:
    """Set the last successful audit of assets (one, or all but `skip`)."""
    statement = update(AssetSchedule)
    if asset_id is not None:
        statement = statement.where(AssetSchedule.asset_id == asset_id)
    if skip is not None:
        statement = statement.where(AssetSchedule.asset_id != skip)
    values: dict[str, Any] = {"last_success_at": when, "last_outcome": outcome}
    if created is not None:
        values["created_at"] = created
    session.execute(statement.values(**values))
    session.commit()


def build(session: Session, settings: Settings, language: str = "en") -> tuple[Report, Report]:
    """Two reports of a weekly schedule: between them some findings were fixed, one came, one
    risk was accepted and an asset was added."""
    assets = [make_asset(session, **fields) for fields in ASSETS]
    # Audited the day before each report, except the ultrasound, whose audits fail since T0-10d.
    audited(session, T0 - timedelta(days=1), T0 - timedelta(days=60))
    audited(session, T0 - timedelta(days=10), asset_id=assets[3].id, outcome="unreachable")
    rows = []
    for index, check, severity, port, evidence, remediation in FINDINGS:
        asset = assets[index]
        address = str(asset.address_list[0])
        finding = Finding(
            asset_id=asset.id,
            check_id=check,
            subject=f"{address}:{port}",
            address=address,
            port=port,
            severity=severity,
            title=f"{check} on port {port}",
            remediation=remediation,
            evidence=evidence,
            status="open",
            first_seen=T0 - timedelta(days=30),
            last_seen=T0,
        )
        session.add(finding)
        rows.append(finding)
    session.commit()
    data = schedule_service.validate_schedule(
        {
            "name": "Weekly re-audit",
            "scope": "all",
            "cron": "0 7 * * mon",
            "formats": ["pdf", "html", "csv", "json"],
            "language": language,
        },
        languages=["en", "fr"],
    )
    schedule: ReportSchedule = schedule_service.create_schedule(
        session=session, data=data, actor="tests", settings=settings, now=T0
    )
    first = report_service.generate_report(
        session=session,
        settings=settings,
        now=T0,
        trigger="schedule",
        actor="scheduler",
        schedule=schedule,
    )
    later = T0 + timedelta(days=7)
    # Fixed: FTP cleartext and the unexpected port; new: SMB guest access on the NAS.
    for finding in (rows[5], rows[9]):
        finding.status, finding.fixed_at = "fixed", later - timedelta(days=2)
        session.add(
            FindingEvent(
                finding_id=finding.id,
                at=later,
                actor="audit",
                old_status="open",
                new_status="fixed",
            )
        )
    session.add(
        Finding(
            asset_id=assets[2].id,
            check_id="smb.guest-access",
            subject=f"{assets[2].address_list[0]}:445",
            address=str(assets[2].address_list[0]),
            port=445,
            severity="high",
            title="SMB guest access",
            remediation="Turn off guest access and SMBv1.",
            evidence={"shares_listed": 3, "smbv1": True},
            status="open",
            first_seen=later - timedelta(days=1),
            last_seen=later,
        )
    )
    session.commit()
    accept_risk(
        session=session,
        finding_id=rows[6].id,
        actor="dpo",
        reason="Vendor remote maintenance; VLAN restricted, contract renewal in January",
        until=later + timedelta(days=60),
        now=later - timedelta(days=1),
    )
    audited(session, later - timedelta(days=1), skip=assets[3].id)
    make_asset(session, name="Scanner CT (new)", kind="modality", site="Lyon", zone="radiology")
    second = report_service.generate_report(
        session=session,
        settings=settings,
        now=later,
        trigger="schedule",
        actor="scheduler",
        schedule=schedule,
    )
    return first, second
