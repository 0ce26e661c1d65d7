"""What changed since the previous report, on a scripted history with real peers and an injected
clock: audit, change the peers, audit again, accept a risk, let it expire; add and archive assets.
Each report is compared with the previous report of the same schedule. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inventory.services import assets as asset_service
from inventory.services import report_schedules as schedule_service
from inventory.services import reports as report_service
from inventory.services.findings import accept_risk
from tests.factories import make_asset
from tests.reports.helpers import Peers, audit_at, free_ports, report_settings, snapshot, text_of

T0 = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
HOST = "127.42.200.1"


def by_port(snap, ids):
    findings = {f["id"]: f for f in snap["findings"]}
    return sorted(findings[i]["port"] for i in ids)


@pytest.fixture
def weekly(session, settings):
    data = schedule_service.validate_schedule(
        {
            "name": "Weekly",
            "scope": "site",
            "scope_value": "lyon",  # any case, as on the schedule page
            "cron": "0 7 * * mon",
            "formats": "pdf csv",
            "language": "en",
        },
        languages=["en", "fr"],
    )
    return schedule_service.create_schedule(
        session=session, data=data, actor="tests", settings=settings, now=T0
    )


@pytest.fixture
def peers():
    machine = Peers(HOST)
    yield machine
    machine.close()


def test_changes_follow_a_scripted_history(session, settings, weekly, peers):
    p1, p2, p3 = free_ports(HOST, 3)
    settings = report_settings(settings)
    settings.audit.default_ports = [p1, p2, p3]
    nas = make_asset(session, name="NAS archive", addresses=HOST, site="Lyon", kind="nas")
    make_asset(session, name="Elsewhere", site="Paris")  # outside the scope

    def run(now):
        return report_service.generate_report(
            session=session,
            settings=settings,
            now=now,
            trigger="schedule",
            actor="t",
            schedule=weekly,
        )

    # Week 1: two undeclared services: two port.unexpected-open findings.
    peers.start(p1)
    peers.start(p2)
    audit_at(session, settings, nas.id, T0)
    first = run(T0 + timedelta(hours=1))
    s1 = snapshot(session, first)
    assert s1["changes"] is None and s1["baseline"] is None
    assert sorted(f["port"] for f in s1["findings"]) == sorted([p1, p2])
    assert [a["name"] for a in s1["assets"]] == ["NAS archive"]

    # Week 2: the peers changed: p1 and p2 closed, a new service on p3; a new asset.
    peers.stop(p1)
    peers.stop(p2)
    peers.start(p3)
    audit_at(session, settings, nas.id, T0 + timedelta(days=7))
    pacs = make_asset(session, name="PACS new", site="LYON", kind="pacs")
    second = run(T0 + timedelta(days=7, hours=1))
    s2 = snapshot(session, second)
    assert second.baseline_id == first.id and s2["baseline"]["report_id"] == first.id
    changes = s2["changes"]
    assert by_port(s2, changes["fixed"]) == sorted([p1, p2])
    assert by_port(s2, changes["new"]) == [p3]
    assert changes["reopened"] == [] and changes["expired"] == []
    assert changes["assets_added"] == [pacs.id]
    new_id = changes["new"][0]

    # Week 3: p1 is back (reopened); the new finding is accepted as a risk for 10 days; the
    # new asset is archived.
    peers.start(p1)
    now3 = T0 + timedelta(days=14)
    audit_at(session, settings, nas.id, now3)
    accept_risk(
        session=session,
        finding_id=new_id,
        actor="dpo",
        reason="Vendor <b>patch</b> due",
        until=now3 + timedelta(days=10),
        now=now3,
    )
    asset_service.archive_asset(session=session, asset_id=pacs.id, actor="tests")
    third = run(now3 + timedelta(hours=1))
    s3 = snapshot(session, third)
    assert by_port(s3, s3["changes"]["reopened"]) == [p1]
    assert s3["changes"]["accepted"] == [new_id] and s3["changes"]["new"] == []
    assert s3["changes"]["assets_removed"] == [
        {"id": pacs.id, "name": "PACS new", "kind": "pacs", "site": "LYON", "zone": ""}
    ]
    assert s3["totals"]["accepted"] == 1 and s3["totals"]["open"] == 1

    # Week 5: the acceptance expired (nobody touched it): it shows as expired, open again.
    fourth = run(T0 + timedelta(days=28, hours=1))
    s4 = snapshot(session, fourth)
    assert fourth.baseline_id == third.id
    assert s4["changes"]["expired"] == [new_id]
    assert s4["changes"]["accepted"] == [] and s4["totals"]["open"] == 2
    # The trend carries every report of the schedule, oldest first.
    assert [p["open_by_severity"]["medium"] for p in s4["trend"]] == [2, 1, 1, 2]

    # What a person reads: the reason (as text), the changes, in HTML, PDF and CSV.
    html = text_of(session, third, "html")
    assert "Vendor &lt;b&gt;patch&lt;/b&gt; due" in html and "Risks accepted" in html
    assert "Reopened findings" in html and "Assets archived or out of scope" in html
    pdf = text_of(session, fourth, "pdf")
    assert "Risk acceptances that expired" in pdf
    csv_text = text_of(session, second, "csv")
    assert f",{p3},port.unexpected-open,medium,open,new," in csv_text
    assert f",{p1},port.unexpected-open,medium,fixed,fixed," in csv_text


def test_a_report_is_immutable_and_its_digest_checks(session, settings, weekly):
    import hashlib

    nas = make_asset(session, name="NAS", site="Lyon")
    first = report_service.generate_report(
        session=session, settings=settings, now=T0, trigger="cli", actor="t", schedule=weekly
    )
    before = {
        fmt: report_service.render_report(session=session, report=first, fmt=fmt)
        for fmt in ("html", "csv", "json")
    }
    pdf_before = text_of(session, first, "pdf")
    # The inventory changes afterwards: the stored report does not.
    asset_service.archive_asset(session=session, asset_id=nas.id, actor="tests")
    make_asset(session, name="Other", site="Lyon")
    for fmt, content in before.items():
        assert report_service.render_report(session=session, report=first, fmt=fmt) == content
    assert text_of(session, first, "pdf") == pdf_before
    assert hashlib.sha256(before["json"]).hexdigest() == first.sha256
    assert first.sha256 in before["html"].decode()
