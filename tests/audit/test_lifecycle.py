"""The finding lifecycle, stored: new, still present, fixed, reopened, accepted until a date, and
an unreachable asset that changes nothing. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from inventory.audit import AuditReport, ProbeOutcome, ProbeResult
from inventory.audit.probes.base import FindingCandidate, PortState, ServiceObservation
from inventory.models import Audit, Finding, FindingEvent, FindingStatus, ObservedService
from inventory.services.audits import list_findings, record_audit
from tests.factories import make_asset

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
ADDRESS = "127.42.1.1"


def report(*ports_open: int, reachable: bool = True) -> AuditReport:
    """What the engine would return: ports open, each one an unexpected-open finding."""
    state = PortState.open if reachable else PortState.filtered
    observed = [ServiceObservation(ADDRESS, p, state, service="ftp") for p in (ports_open or (21,))]
    findings = (
        [
            FindingCandidate(
                "port.unexpected-open", "medium", ADDRESS, p, f"Port {p}/tcp is open", "Close it."
            )
            for p in ports_open
        ]
        if reachable
        else []
    )
    return AuditReport(
        target="nas",
        started_at=T0,
        results=[
            ProbeResult(
                "tcp",
                ProbeOutcome.ran,
                services=observed,
                findings=findings,
                checks={"port.unexpected-open"},
            )
        ],
    )


def statuses(session, asset_id):
    rows = session.scalars(
        select(Finding).where(Finding.asset_id == asset_id).order_by(Finding.port)
    ).all()
    for row in rows:
        session.refresh(row)
    return {row.port: str(row.status) for row in rows}


def test_new_still_present_fixed_reopened(session):
    asset = make_asset(session, addresses=ADDRESS)
    record_audit(session=session, asset_id=asset.id, report=report(21, 23), actor="alice", now=T0)
    assert statuses(session, asset.id) == {21: "open", 23: "open"}

    later = T0 + timedelta(days=1)
    record_audit(session=session, asset_id=asset.id, report=report(21), actor="alice", now=later)
    assert statuses(session, asset.id) == {21: "open", 23: "fixed"}
    still = session.scalars(select(Finding).where(Finding.port == 21)).one()
    assert still.first_seen == T0 and still.last_seen == later

    record_audit(
        session=session,
        asset_id=asset.id,
        report=report(21, 23),
        actor="bob",
        now=later + timedelta(days=1),
    )
    assert statuses(session, asset.id) == {21: "open", 23: "reopened"}
    # one row per (asset, check, subject), never duplicates; every change recorded
    assert session.scalar(select(func.count()).select_from(Finding)) == 2
    events = session.scalars(select(FindingEvent).order_by(FindingEvent.id)).all()
    assert [(e.old_status, e.new_status) for e in events] == [
        (None, "open"),
        (None, "open"),
        ("open", "fixed"),
        ("fixed", "reopened"),
    ]
    assert events[-1].actor == "audit by bob"


def test_an_unreachable_asset_changes_no_finding(session):
    asset = make_asset(session, addresses=ADDRESS)
    record_audit(session=session, asset_id=asset.id, report=report(21), actor="alice", now=T0)
    audit = record_audit(
        session=session,
        asset_id=asset.id,
        report=report(reachable=False),
        actor="alice",
        now=T0 + timedelta(days=1),
    )
    assert str(audit.outcome) == "unreachable"
    assert statuses(session, asset.id) == {21: "open"}
    assert (
        session.scalar(select(func.count()).select_from(ObservedService)) == 1
    )  # kept as last seen


def test_accepted_risk_stays_accepted_until_it_expires(session):
    asset = make_asset(session, addresses=ADDRESS)
    record_audit(session=session, asset_id=asset.id, report=report(21), actor="alice", now=T0)
    finding = session.scalars(select(Finding)).one()
    finding.status = FindingStatus.accepted
    finding.accepted_until = T0 + timedelta(days=10)
    session.commit()
    record_audit(
        session=session,
        asset_id=asset.id,
        report=report(21),
        actor="alice",
        now=T0 + timedelta(days=5),
    )
    assert statuses(session, asset.id) == {21: "accepted"}
    record_audit(
        session=session,
        asset_id=asset.id,
        report=report(21),
        actor="alice",
        now=T0 + timedelta(days=11),
    )
    assert statuses(session, asset.id) == {21: "reopened"}


def test_fix_this_first_order_and_audit_rows(session):
    clinic = make_asset(session, name="office-pc", addresses="127.42.1.2")
    pacs = make_asset(session, name="pacs", addresses=ADDRESS, holds_patient_data="yes")
    for asset in (clinic, pacs):
        r = report(21)
        r.results[0].services = [ServiceObservation(str(asset.address_list[0]), 21, PortState.open)]
        r.results[0].findings = [
            FindingCandidate(
                "port.unexpected-open",
                "medium",
                str(asset.address_list[0]),
                21,
                "Port 21/tcp is open",
                "Close it.",
            )
        ]
        record_audit(session=session, asset_id=asset.id, report=r, actor="cli", now=T0)
    ordered = [
        asset.name for _, asset in list_findings(session=session, statuses=[FindingStatus.open])
    ]
    assert ordered == ["pacs", "office-pc"]  # same severity: patient data first
    assert session.scalar(select(func.count()).select_from(Audit)) == 2
