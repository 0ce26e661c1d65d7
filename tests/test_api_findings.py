"""The REST API for findings, accepted risks, audits and observed services: roles, the web page's
filters and order, bad input that is refused and changes nothing, and "audit now" against a real
loopback FTP-like peer. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from inventory.audit import AuditReport, ProbeOutcome, ProbeResult
from inventory.audit.probes.base import FindingCandidate, PortState, ServiceObservation
from inventory.models import Audit, Finding, FindingEvent, FindingStatus
from inventory.services.assets import archive_asset
from inventory.services.audits import record_audit
from inventory.services.findings import accept_risk
from inventory.services.tokens import create_token
from tests.factories import make_asset, make_user
from tests.ftp_peer import ftp_peer

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
ISO_UTC = "+00:00"


def auth(session: Session, role: str) -> dict[str, str]:
    user = make_user(session, role, username=f"api-{role}")
    _, secret = create_token(session=session, user_id=user.id, name="script")
    return {"Authorization": f"Bearer {secret}"}


def seed(session: Session, asset: Any, *found: tuple[str, str, int], now: datetime = T0) -> list:
    """Record an audit of `asset` that saw each (check, severity, port) as a finding."""
    address = str(asset.address_list[0])
    result = ProbeResult(
        "tcp",
        ProbeOutcome.ran,
        services=[
            ServiceObservation(address, port, PortState.open, service="ftp", banner="220 ready")
            for _, _, port in found
        ],
        findings=[
            FindingCandidate(
                check,
                severity,
                address,
                port,
                f"{check} on port {port}",
                "Close the port at the firewall.",
                evidence={"records": 3, "attributes": ["a", "b"], "banner": "peer text"},
            )
            for check, severity, port in found
        ],
        checks={check for check, _, _ in found},
    )
    report = AuditReport(target=asset.name, started_at=now, duration=1.5, results=[result])
    record_audit(session=session, asset_id=asset.id, report=report, actor="tests", now=now)
    return list(session.scalars(select(Finding).where(Finding.asset_id == asset.id)).all())


def state(engine: Any) -> tuple:
    """Everything an accept or an audit could change: events, audits and each finding's status."""
    with Session(engine) as check:
        findings = check.scalars(select(Finding).order_by(Finding.id)).all()
        return (
            check.scalar(select(func.count()).select_from(FindingEvent)),
            check.scalar(select(func.count()).select_from(Audit)),
            [(str(f.status), f.accepted_reason, f.accepted_until, f.accepted_by) for f in findings],
        )


def in_days(days: int) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


@pytest.fixture
def clinic(session: Session) -> dict[str, Any]:
    """Four assets and seven open findings, as in the web page's order test."""
    office = make_asset(
        session, name="office-pc", addresses="127.62.1.10", kind="workstation", site="Lyon",
        zone="office",
    )  # fmt: skip
    pacs = make_asset(
        session, name="pacs", addresses="127.62.1.11", kind="pacs", site="Lyon",
        zone="radiology", holds_patient_data="yes",
    )  # fmt: skip
    viewer = make_asset(
        session, name="web-viewer", addresses="127.62.1.12", kind="web-viewer", site="Nice",
        zone="dmz", holds_patient_data="yes", exposure="public",
    )  # fmt: skip
    old = make_asset(
        session, name="old-nas", addresses="127.62.1.13", kind="nas", site="Nice", zone="office"
    )
    seed(session, old, ("port.unexpected-open", "medium", 21), now=T0 - timedelta(days=30))
    seed(
        session,
        office,
        ("port.unexpected-open", "medium", 21),
        ("database.no-authentication", "critical", 6379),
    )
    seed(
        session,
        pacs,
        ("port.unexpected-open", "medium", 21),
        ("dicom.open-association", "high", 104),
    )
    seed(session, viewer, ("port.unexpected-open", "medium", 21), ("http.cleartext", "high", 80))
    return {"office": office, "pacs": pacs, "viewer": viewer, "old": old}


# --- authentication and roles ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/findings"),
        ("get", "/api/v1/findings/1"),
        ("post", "/api/v1/findings/1/accept"),
        ("get", "/api/v1/assets/1/audits"),
        ("post", "/api/v1/assets/1/audits"),
        ("get", "/api/v1/assets/1/services"),
    ],
)
def test_every_endpoint_needs_a_token(client, session, method, url):
    response = getattr(client, method)(url, json={})
    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthorized"


def test_a_viewer_reads_but_cannot_accept_or_audit(client, session, engine, monkeypatch):
    from inventory.services import audits

    monkeypatch.setattr(audits, "run_audit", lambda *a, **k: pytest.fail("must not audit"))
    asset = make_asset(session, name="nas", addresses="127.62.1.20")
    (finding,) = seed(session, asset, ("ftp.anonymous-login", "high", 21))
    headers = auth(session, "viewer")
    before = state(engine)
    response = client.post(
        f"/api/v1/findings/{finding.id}/accept",
        headers=headers,
        json={"reason": "vendor", "until": in_days(30)},
    )
    assert response.status_code == 403 and response.get_json()["code"] == "forbidden"
    response = client.post(f"/api/v1/assets/{asset.id}/audits", headers=headers)
    assert response.status_code == 403
    assert state(engine) == before
    for url in (
        "/api/v1/findings",
        f"/api/v1/findings/{finding.id}",
        f"/api/v1/assets/{asset.id}/audits",
        f"/api/v1/assets/{asset.id}/services",
    ):
        assert client.get(url, headers=headers).status_code == 200, url


# --- the list -------------------------------------------------------------------------------


def test_fix_first_order_filters_and_fields(client, session, clinic):
    headers = auth(session, "viewer")

    def listed(query: str = "") -> list[tuple[str, str]]:
        response = client.get(f"/api/v1/findings{query}", headers=headers)
        assert response.status_code == 200, response.get_json()
        return [(i["title"], i["asset"]["name"]) for i in response.get_json()["items"]]

    assert listed() == [
        ("database.no-authentication on port 6379", "office-pc"),  # critical first
        ("http.cleartext on port 80", "web-viewer"),  # high, patient data, public
        ("dicom.open-association on port 104", "pacs"),  # high, patient data, internal
        ("port.unexpected-open on port 21", "web-viewer"),  # medium: patient data, public
        ("port.unexpected-open on port 21", "pacs"),
        ("port.unexpected-open on port 21", "old-nas"),  # older than office-pc's
        ("port.unexpected-open on port 21", "office-pc"),
    ]
    assert [a for _, a in listed("?severity=high")] == ["web-viewer", "pacs"]
    assert [a for _, a in listed("?check=port.unexpected-open&site=Nice")] == [
        "web-viewer",
        "old-nas",
    ]
    assert [a for _, a in listed("?zone=office")] == ["office-pc", "old-nas", "office-pc"]
    assert [t for t, _ in listed("?kind=pacs")] == [
        "dicom.open-association on port 104",
        "port.unexpected-open on port 21",
    ]
    assert [t for t, _ in listed(f"?asset_id={clinic['viewer'].id}")] == [
        "http.cleartext on port 80",
        "port.unexpected-open on port 21",
    ]
    assert listed("?status=fixed") == [] and len(listed("?status=all")) == 7
    assert listed("?site=Paris") == []  # free-text filters simply match nothing
    assert [a for _, a in listed("?sort=first_seen&check=port.unexpected-open")][0] == "old-nas"
    assert [a for _, a in listed("?sort=first_seen&order=desc")][-1] == "old-nas"

    item = client.get("/api/v1/findings?kind=pacs&severity=high", headers=headers).get_json()
    (finding,) = item["items"]
    assert finding["asset"] == {"id": clinic["pacs"].id, "name": "pacs"}
    assert (finding["address"], finding["port"], finding["check"]) == (
        "127.62.1.11",
        104,
        "dicom.open-association",
    )
    assert (finding["severity"], finding["status"]) == ("high", "open")
    assert finding["remediation"] == "Close the port at the firewall."
    assert finding["first_seen"] == "2026-11-02T08:00:00+00:00" == finding["last_seen"]
    assert finding["fixed_at"] is None and finding["accepted_until"] is None
    assert finding["accepted_reason"] is None and finding["accepted_by"] is None
    # Evidence as on the finding page: counts and numbers, never the text a peer sent.
    assert finding["evidence"] == {"attributes": 2, "records": 3}


def test_pages_like_the_assets_api(client, session, clinic):
    headers = auth(session, "viewer")
    everything = client.get("/api/v1/findings", headers=headers).get_json()["items"]
    first = client.get("/api/v1/findings?per_page=3", headers=headers).get_json()
    assert (first["total"], first["pages"], first["page"], first["per_page"]) == (7, 3, 1, 3)
    last = client.get("/api/v1/findings?per_page=3&page=3", headers=headers).get_json()
    assert [i["id"] for i in last["items"]] == [everything[6]["id"]]
    beyond = client.get("/api/v1/findings?per_page=3&page=99", headers=headers).get_json()
    assert beyond["page"] == 3  # clamped, as the assets API does
    capped = client.get("/api/v1/findings?per_page=100000", headers=headers).get_json()
    assert capped["per_page"] == 500


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("severity=critcal", "severity"),
        ("severity=CRITICAL", "severity"),
        ("status=nope", "status"),
        ("kind=toaster", "kind"),
        ("asset_id=abc", "asset_id"),
        ("asset_id=99999999999999", "asset_id"),
        ("sort=name", "sort"),
        ("order=sideways", "order"),
    ],
)
def test_unknown_filter_values_are_refused_by_field(client, session, clinic, query, field):
    """A typo must not look like "no critical findings": 422 naming the argument."""
    response = client.get(f"/api/v1/findings?{query}", headers=auth(session, "viewer"))
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "invalid" and list(body["fields"]) == [field]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/findings?page=abc",
        "/api/v1/findings?per_page=1.5",
        "/api/v1/findings?check=%00&site=%00&zone=a%00b",
        "/api/v1/findings?severity=%00",
        "/api/v1/findings?site=%FF%FE",
        "/api/v1/assets?q=%00&kind=%00&tag=%00",
    ],
)
def test_odd_arguments_never_fail_the_server(client, session, clinic, url):
    response = client.get(url, headers=auth(session, "viewer"))
    assert response.status_code in (200, 422)
    assert set(response.get_json()) >= ({"items"} if response.status_code == 200 else {"code"})


# --- one finding, accepting a risk ----------------------------------------------------------


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_accepting_a_risk_takes_it_off_the_open_list_and_records_it(client, session, role):
    asset = make_asset(session, name="nas", addresses="127.62.1.30")
    (finding,) = seed(session, asset, ("ftp.anonymous-login", "high", 21))
    headers = auth(session, role)
    until = in_days(30)
    response = client.post(
        f"/api/v1/findings/{finding.id}/accept",
        headers=headers,
        json={"reason": "Scanner vendor needs it until the upgrade", "until": until},
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "accepted" and body["accepted_by"] == f"api-{role}"
    assert body["accepted_reason"] == "Scanner vendor needs it until the upgrade"
    assert body["accepted_until"] == f"{until}T23:59:59{ISO_UTC}"  # through that day, UTC
    assert [(e["old_status"], e["new_status"], e["actor"]) for e in body["events"]] == [
        ("open", "accepted", f"api-{role}"),
        (None, "open", "audit by tests"),
    ]
    assert body["events"][0]["note"] == f"until {until}: Scanner vendor needs it until the upgrade"

    assert client.get("/api/v1/findings", headers=headers).get_json()["total"] == 0
    accepted = client.get("/api/v1/findings?status=accepted", headers=headers).get_json()
    assert [i["id"] for i in accepted["items"]] == [finding.id]
    detail = client.get(f"/api/v1/findings/{finding.id}", headers=headers).get_json()
    assert detail["status"] == "accepted" and len(detail["events"]) == 2


def test_an_expired_acceptance_is_open_again(client, session):
    asset = make_asset(session, name="nas", addresses="127.62.1.31")
    (finding,) = seed(session, asset, ("ftp.anonymous-login", "high", 21))
    weeks_ago = datetime.now(UTC) - timedelta(days=20)
    accept_risk(
        session=session,
        finding_id=finding.id,
        actor="someone",
        reason="until the upgrade",
        until=weeks_ago.date() + timedelta(days=5),
        now=weeks_ago,
    )
    headers = auth(session, "viewer")
    items = client.get("/api/v1/findings", headers=headers).get_json()["items"]
    assert [(i["id"], i["status"], i["accepted_until"]) for i in items] == [
        (finding.id, "reopened", None)
    ]
    events = client.get(f"/api/v1/findings/{finding.id}", headers=headers).get_json()["events"]
    assert (events[0]["actor"], events[0]["new_status"]) == ("system", "reopened")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"reason": "", "until": "+30"}, {"reason": "Say why this risk is accepted."}),
        ({"reason": "   ", "until": "+30"}, {"reason": "Say why"}),
        ({"reason": "vendor"}, {"until": "Give the date until which"}),
        ({"reason": "vendor", "until": None}, {"until": "Give the date until which"}),
        ({"reason": "vendor", "until": "-1"}, {"until": "must be in the future"}),
        ({"reason": "vendor", "until": "+0"}, {}),  # today: accepted through the end of today
        ({"reason": "vendor", "until": "+400"}, {"until": "one year at most"}),
        ({"reason": "vendor", "until": "31/12/2026"}, {"until": "is not a date"}),
        ({"reason": "vendor", "until": "2026-02-30"}, {"until": "is not a date"}),
        ({"reason": "vendor", "until": 20270101}, {"until": "written like 2027-03-31"}),
        ({"reason": "x" * 2001, "until": "+30"}, {"reason": "under 2000 characters"}),
        ({"reason": ["why"], "until": "+30"}, {"reason": "reason must be text"}),
        (
            {"reason": "", "until": "bientôt"},
            {"reason": "Say why", "until": "'bientôt' is not a date"},
        ),
    ],
)
def test_bad_acceptances_are_refused_by_field_and_change_nothing(
    client, session, engine, body, fields
):
    asset = make_asset(session, name="nas", addresses="127.62.1.32")
    (finding,) = seed(session, asset, ("ftp.anonymous-login", "high", 21))
    headers = auth(session, "auditor")
    before = state(engine)
    until = body.get("until")
    if isinstance(until, str) and until[:1] in "+-" and until[1:].isdigit():
        body = {**body, "until": in_days(int(until))}
    response = client.post(f"/api/v1/findings/{finding.id}/accept", headers=headers, json=body)
    if not fields:
        assert response.status_code == 200, response.get_json()
        return
    assert response.status_code == 422
    answer = response.get_json()
    assert answer["code"] == "invalid" and set(answer["fields"]) == set(fields)
    for name, text in fields.items():
        assert text in " ".join(answer["fields"][name]), answer
    assert state(engine) == before


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("reason=vendor&until=2027-01-01", "application/x-www-form-urlencoded"),
        ("{not json", "application/json"),
        ('["vendor", "2027-01-01"]', "application/json"),
        ("", "application/json"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(client, session, engine, data, content_type):
    asset = make_asset(session, name="nas", addresses="127.62.1.33")
    (finding,) = seed(session, asset, ("ftp.anonymous-login", "high", 21))
    headers = auth(session, "auditor")
    before = state(engine)
    response = client.post(
        f"/api/v1/findings/{finding.id}/accept",
        headers=headers,
        data=data,
        content_type=content_type,
    )
    assert response.status_code == 422
    assert "JSON object" in response.get_json()["message"]
    assert state(engine) == before


def test_a_fixed_finding_cannot_be_accepted(client, session, engine):
    asset = make_asset(session, name="nas", addresses="127.62.1.34")
    seed(
        session,
        asset,
        ("port.unexpected-open", "medium", 21),
        ("port.unexpected-open", "medium", 23),
    )
    later = seed(session, asset, ("port.unexpected-open", "medium", 23), now=T0 + timedelta(days=1))
    (fixed,) = [f for f in later if f.port == 21]
    session.refresh(fixed)
    assert fixed.status == FindingStatus.fixed
    headers = auth(session, "admin")
    before = state(engine)
    response = client.post(
        f"/api/v1/findings/{fixed.id}/accept",
        headers=headers,
        json={"reason": "x", "until": in_days(3)},
    )
    assert response.status_code == 422
    assert "This finding is fixed" in response.get_json()["message"]
    assert state(engine) == before
    detail = client.get(f"/api/v1/findings/{fixed.id}", headers=headers).get_json()
    assert detail["status"] == "fixed" and detail["fixed_at"] == f"2026-11-03T08:00:00{ISO_UTC}"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/findings/999999"),
        ("get", "/api/v1/findings/99999999999999"),
        ("post", "/api/v1/findings/999999/accept"),
        ("get", "/api/v1/assets/999999/audits"),
        ("post", "/api/v1/assets/999999/audits"),
        ("get", "/api/v1/assets/999999/services"),
    ],
)
def test_unknown_ids_are_404(client, session, method, url):
    kwargs = {"json": {"reason": "x", "until": in_days(3)}} if method == "post" else {}
    response = getattr(client, method)(url, headers=auth(session, "admin"), **kwargs)
    assert response.status_code == 404 and response.get_json()["code"] == "not_found"


# --- audits and services --------------------------------------------------------------------


def test_audit_now_against_a_loopback_ftp_peer(app, client, session, engine):
    host = "127.62.1.40"
    asset = make_asset(session, name="nas-ftp", addresses=host, kind="nas")
    headers = auth(session, "auditor")
    assert (
        client.get(f"/api/v1/assets/{asset.id}/audits", headers=headers).get_json()["items"] == []
    )
    with ftp_peer(host) as port:
        settings = app.extensions["inventory.settings"]
        audit = settings.audit.model_copy(
            update={"default_ports": [port], "connect_timeout": 1.0, "read_timeout": 1.0}
        )
        app.extensions["inventory.settings"] = settings.model_copy(update={"audit": audit})
        response = client.post(f"/api/v1/assets/{asset.id}/audits", headers=headers)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["asset"] == {"id": asset.id, "name": "nas-ftp"}
    assert body["audit"]["outcome"] == "completed"
    assert (body["audit"]["trigger"], body["audit"]["actor"]) == ("api", "api-auditor")
    probes = {p["probe"]: p["outcome"] for p in body["audit"]["probes"]}
    assert probes["ftp"] == "ran" and probes["redis"] == "ran"
    assert body["open_ports"] == 1
    found = {(f["check"], f["severity"], f["port"]) for f in body["findings"]["open_items"]}
    assert {("ftp.anonymous-login", "high", port), ("ftp.cleartext", "medium", port)} <= found
    assert body["findings"]["open"] == len(found)
    assert body["findings"]["open_by_severity"]["high"] == 1
    assert body["findings"]["by_status"]["open"] == len(found)

    # The same findings through the list, the services and the audit history.
    high = client.get(
        f"/api/v1/findings?asset_id={asset.id}&severity=high", headers=headers
    ).get_json()
    assert [(i["check"], i["address"], i["port"]) for i in high["items"]] == [
        ("ftp.anonymous-login", host, port)
    ]
    services = client.get(f"/api/v1/assets/{asset.id}/services", headers=headers).get_json()
    assert [
        (s["address"], s["port"], s["service"], s["product"], s["version"])
        for s in services["items"]
    ] == [(host, port, "ftp", "vsFTPd", "3.0.3")]
    assert services["items"][0]["banner"] == "220 (vsFTPd 3.0.3)"
    audits = client.get(f"/api/v1/assets/{asset.id}/audits", headers=headers).get_json()
    assert [a["id"] for a in audits["items"]] == [body["audit"]["id"]]
    assert audits["items"][0]["started_at"].endswith(ISO_UTC)


def test_audit_history_newest_first_with_a_limit(client, session):
    asset = make_asset(session, name="pacs", addresses="127.62.1.41")
    for day in range(3):
        seed(session, asset, ("dicom.open-association", "high", 104), now=T0 + timedelta(days=day))
    headers = auth(session, "viewer")
    audits = client.get(f"/api/v1/assets/{asset.id}/audits?limit=2", headers=headers).get_json()
    assert [a["started_at"] for a in audits["items"]] == [
        f"2026-11-04T08:00:00{ISO_UTC}",
        f"2026-11-03T08:00:00{ISO_UTC}",
    ]
    assert audits["items"][0]["probes"] == [
        {"probe": "tcp", "outcome": "ran", "reason": "", "duration": 0.0}
    ]
    bad = client.get(f"/api/v1/assets/{asset.id}/audits?limit=many", headers=headers)
    assert bad.status_code == 422 and "limit" in bad.get_json()["message"]


def test_audit_now_refuses_an_archived_asset(client, session, engine, monkeypatch):
    from inventory.services import audits

    monkeypatch.setattr(audits, "run_audit", lambda *a, **k: pytest.fail("must not audit"))
    asset = make_asset(session, name="old", addresses="127.62.1.42")
    archive_asset(session=session, asset_id=asset.id, actor="tests")
    before = state(engine)
    response = client.post(f"/api/v1/assets/{asset.id}/audits", headers=auth(session, "admin"))
    assert response.status_code == 409 and response.get_json()["code"] == "archived"
    assert state(engine) == before
