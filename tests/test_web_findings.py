"""Findings in the web UI: roles, accepted risks and their expiry, filters and order, the asset
page's audit sections, and "Audit now" against a real loopback peer. SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from inventory.audit import AuditReport, ProbeOutcome, ProbeResult
from inventory.audit.checks import finding_title
from inventory.audit.probes.base import FindingCandidate, PortState, ServiceObservation
from inventory.models import Finding, FindingEvent, FindingStatus
from inventory.services.audits import record_audit
from tests.factories import PASSWORD, make_asset, make_user
from tests.loopback import greeting_peer
from tests.test_i18n import _field_errors, _french, compiled_french, french  # noqa: F401 - fixtures

SEED_EVIDENCE = {"records": 3, "attributes": ["a", "b"], "banner": "secret text"}

pytestmark = pytest.mark.usefixtures("fast_hashing")

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def seed(session: Session, asset, *found: tuple[str, str, int], now: datetime = T0, **extra):
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
                evidence=SEED_EVIDENCE,
            )
            for check, severity, port in found
        ],
        checks={check for check, _, _ in found},
    )
    report = AuditReport(target=asset.name, started_at=now, duration=1.5, results=[result])
    report.results.extend(extra.get("more", []))
    record_audit(session=session, asset_id=asset.id, report=report, actor="tests", now=now)
    return session.scalars(select(Finding).where(Finding.asset_id == asset.id)).all()


def shown(check: str, port: int) -> str:
    """The title the pages show for a seeded finding (the check's template when its evidence
    has what it needs, else the stored "<check> on port <port>")."""
    return finding_title(
        check,
        port=port,
        address="",
        evidence=SEED_EVIDENCE,
        stored=f"{check} on port {port}",
        translate=lambda text: text,
    )


def login(client, session, role: str):
    user = make_user(session, role, username=f"the-{role}")
    assert client.login(user.username, PASSWORD).status_code == 302
    return user


def events(engine) -> int:
    with Session(engine) as check:
        return check.scalar(select(func.count()).select_from(FindingEvent)) or 0


def finding_state(engine, finding_id: int) -> tuple:
    with Session(engine) as check:
        f = check.get(Finding, finding_id)
        return (str(f.status), f.accepted_reason, f.accepted_until, f.accepted_by)


# --- roles ----------------------------------------------------------------------------------


def test_a_viewer_cannot_audit_or_accept(client, session, engine):
    asset = make_asset(session, name="pacs", addresses="127.42.160.1")
    (finding,) = seed(session, asset, ("port.unexpected-open", "medium", 21))
    login(client, session, "viewer")
    page = client.get(f"/assets/{asset.id}").get_data(as_text=True)
    assert "Audit now" not in page and f"/findings/{finding.id}/accept" not in page
    before = (events(engine), finding_state(engine, finding.id))

    assert client.submit(f"/assets/{asset.id}/audit", {}, page="/account").status_code == 403
    assert client.get(f"/findings/{finding.id}/accept").status_code == 403
    response = client.submit(
        f"/findings/{finding.id}/accept",
        {"reason": "vendor", "until": (date.today() + timedelta(days=30)).isoformat()},
        page="/account",
    )
    assert response.status_code == 403
    assert (events(engine), finding_state(engine, finding.id)) == before
    listing = client.get("/findings").get_data(as_text=True)
    assert "pacs" in listing and "/accept" not in listing


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_auditor_and_admin_see_the_buttons(client, session, role):
    asset = make_asset(session, name="pacs", addresses="127.42.160.2")
    (finding,) = seed(session, asset, ("port.unexpected-open", "medium", 21))
    login(client, session, role)
    page = client.get(f"/assets/{asset.id}").get_data(as_text=True)
    assert f'action="/assets/{asset.id}/audit"' in page
    assert f"/findings/{finding.id}/accept" in client.get("/findings").get_data(as_text=True)
    assert client.get(f"/findings/{finding.id}/accept").status_code == 200
    nav = client.get("/assets").get_data(as_text=True)
    assert 'href="/findings"' in nav


# --- accepted risks -------------------------------------------------------------------------


def test_an_accepted_risk_leaves_the_open_list_and_comes_back_after_expiry(client, session, engine):
    asset = make_asset(session, name="nas", addresses="127.42.160.3")
    (finding,) = seed(session, asset, ("ftp.anonymous-login", "high", 21))
    login(client, session, "auditor")
    until = date.today() + timedelta(days=30)
    response = client.submit(
        f"/findings/{finding.id}/accept",
        {"reason": "Scanner vendor needs it until the upgrade", "until": until.isoformat()},
    )
    assert response.status_code == 302
    status, reason, accepted_until, by = finding_state(engine, finding.id)
    assert (status, reason, by) == (
        "accepted",
        "Scanner vendor needs it until the upgrade",
        "the-auditor",
    )
    assert accepted_until.date() == until

    assert shown("ftp.anonymous-login", 21) not in client.get("/findings").get_data(as_text=True)
    accepted = client.get("/findings?status=accepted").get_data(as_text=True)
    assert shown("ftp.anonymous-login", 21) in accepted and "until" in accepted
    detail = client.get(f"/findings/{finding.id}").get_data(as_text=True)
    assert "the-auditor" in detail and "Scanner vendor needs it" in detail

    # The date passes: the finding is open again, and that change is recorded too.
    with Session(engine) as later:
        row = later.get(Finding, finding.id)
        row.accepted_until = datetime.now(UTC) - timedelta(minutes=1)
        later.commit()
    listing = client.get("/findings").get_data(as_text=True)
    assert shown("ftp.anonymous-login", 21) in listing and "Reopened" in listing
    with Session(engine) as check:
        history = check.scalars(
            select(FindingEvent)
            .where(FindingEvent.finding_id == finding.id)
            .order_by(FindingEvent.id)
        ).all()
        assert [(e.old_status, e.new_status, e.actor) for e in history] == [
            (None, "open", "audit by tests"),
            ("open", "accepted", "the-auditor"),
            ("accepted", "reopened", "system"),
        ]
    detail = client.get(f"/findings/{finding.id}").get_data(as_text=True)
    assert "Status history" in detail and "system" in detail


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"reason": "", "until": "+30"}, "reason", "Say why this risk is accepted."),
        ({"reason": "   ", "until": "+30"}, "reason", "Say why this risk is accepted."),
        ({"reason": "vendor", "until": ""}, "until", "Give the date until which"),
        ({"reason": "vendor", "until": "-1"}, "until", "The expiry date must be in the future."),
        ({"reason": "vendor", "until": "+400"}, "until", "one year at most"),
        ({"reason": "vendor", "until": "31/12/2026"}, "until", "is not a date"),
        ({"reason": "x" * 2001, "until": "+30"}, "reason", "under 2000 characters"),
    ],
)
def test_accepting_with_bad_input_shows_errors_and_writes_nothing(
    client, session, engine, data, field, message
):
    asset = make_asset(session, name="nas", addresses="127.42.160.4")
    (finding,) = seed(session, asset, ("ftp.anonymous-login", "high", 21))
    login(client, session, "auditor")
    before = (events(engine), finding_state(engine, finding.id))
    until = data["until"]
    if until[:1] in "+-" and until[1:].isdigit():
        until = (date.today() + timedelta(days=int(until))).isoformat()
    response = client.submit(f"/findings/{finding.id}/accept", {**data, "until": until})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    errors = re.search(rf'(?s)<ul class="errors" id="{field}-error">(.*?)</ul>', page)
    assert errors and message in errors.group(1), page
    assert (events(engine), finding_state(engine, finding.id)) == before


@pytest.mark.parametrize(
    "until", ["", "31/12/2026", (date.today() - timedelta(days=1)).isoformat()]
)
def test_every_problem_of_an_acceptance_is_shown_at_once(client, session, engine, until):
    asset = make_asset(session, name="nas", addresses="127.42.160.5")
    (finding,) = seed(session, asset, ("ftp.anonymous-login", "high", 21))
    login(client, session, "auditor")
    response = client.submit(f"/findings/{finding.id}/accept", {"reason": "", "until": until})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Say why this risk is accepted." in _field_errors(page, "reason")
    date_errors = re.search(r'(?s)<ul class="errors" id="until-error">(.*?)</ul>', page)
    assert date_errors and date_errors.group(1).count("<li>") == 1  # one message per problem


def test_a_fixed_finding_cannot_be_accepted(client, session, engine):
    asset = make_asset(session, name="nas", addresses="127.42.160.5")
    seed(
        session,
        asset,
        ("port.unexpected-open", "medium", 21),
        ("port.unexpected-open", "medium", 23),
    )
    (fixed,) = [
        f
        for f in seed(
            session, asset, ("port.unexpected-open", "medium", 23), now=T0 + timedelta(days=1)
        )
        if f.port == 21
    ]
    session.refresh(fixed)
    assert fixed.status == FindingStatus.fixed
    login(client, session, "auditor")
    before = events(engine)
    response = client.submit(
        f"/findings/{fixed.id}/accept",
        {"reason": "x", "until": (date.today() + timedelta(days=3)).isoformat()},
    )
    assert response.status_code == 400
    assert "This finding is fixed" in response.get_data(as_text=True)
    assert events(engine) == before


# --- the list -------------------------------------------------------------------------------


def test_filters_and_fix_this_first_order(client, session):
    office = make_asset(
        session,
        name="office-pc",
        addresses="127.42.160.10",
        kind="workstation",
        site="Lyon",
        zone="office",
    )
    pacs = make_asset(
        session,
        name="pacs",
        addresses="127.42.160.11",
        kind="pacs",
        site="Lyon",
        zone="radiology",
        holds_patient_data="yes",
    )
    viewer = make_asset(
        session,
        name="web-viewer",
        addresses="127.42.160.12",
        kind="web-viewer",
        site="Nice",
        zone="dmz",
        holds_patient_data="yes",
        exposure="public",
    )
    old = make_asset(
        session, name="old-nas", addresses="127.42.160.13", kind="nas", site="Nice", zone="office"
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
    login(client, session, "viewer")

    def titles(url: str) -> list[tuple[str, str]]:
        page = client.get(url).get_data(as_text=True)
        return re.findall(
            r'class="row-link" href="/findings/\d+">([^<]+)</a>.*?href="/assets/\d+">([^<]+)</a>',
            page,
            re.S,
        )

    assert titles("/findings") == [
        (shown("database.no-authentication", 6379), "office-pc"),  # critical first
        (shown("http.cleartext", 80), "web-viewer"),  # high, patient data, public
        (shown("dicom.open-association", 104), "pacs"),  # high, patient data, internal
        (shown("port.unexpected-open", 21), "web-viewer"),  # medium: patient data, public
        (shown("port.unexpected-open", 21), "pacs"),
        (shown("port.unexpected-open", 21), "old-nas"),  # older than office-pc's
        (shown("port.unexpected-open", 21), "office-pc"),
    ]
    assert [a for _, a in titles("/findings?severity=high")] == ["web-viewer", "pacs"]
    assert [a for _, a in titles("/findings?check=port.unexpected-open&site=Nice")] == [
        "web-viewer",
        "old-nas",
    ]
    assert [a for _, a in titles("/findings?zone=office")] == ["office-pc", "old-nas", "office-pc"]
    assert [t for t, _ in titles("/findings?kind=pacs")] == [
        shown("dicom.open-association", 104),
        shown("port.unexpected-open", 21),
    ]
    assert titles("/findings?status=fixed") == []
    assert len(titles("/findings?status=all")) == 7
    # Unknown filter values are ignored or match nothing, never an error.
    assert (
        client.get("/findings?severity=bogus&kind=toaster&status=nope&check=%00").status_code == 200
    )


# --- the asset page -------------------------------------------------------------------------


def test_the_asset_page_shows_services_findings_and_audits(client, session):
    asset = make_asset(session, name="pacs", addresses="127.42.160.20")
    failed = ProbeResult("dicom", ProbeOutcome.failed, reason="TimeoutError: no answer in 3 s")
    seed(session, asset, ("dicom.open-association", "high", 104), more=[failed])
    login(client, session, "viewer")
    page = client.get(f"/assets/{asset.id}").get_data(as_text=True)
    for text in (
        "Services seen",
        "127.42.160.20:104/tcp",
        "220 ready",  # the service and its banner
        "Findings",
        shown("dicom.open-association", 104),
        "Close the port at the firewall.",
        "records: 3",
        "attributes: 2",  # evidence as counts
        "Last audits",
        "TimeoutError: no answer in 3 s",
        "Completed",
    ):
        assert text in page, text
    assert "secret text" not in page  # evidence text is not shown, only counts


def test_a_new_asset_says_it_was_not_audited(client, session):
    asset = make_asset(session, name="pacs", addresses="127.42.160.21")
    login(client, session, "viewer")
    assert "Not audited yet." in client.get(f"/assets/{asset.id}").get_data(as_text=True)


# --- Audit now, end to end ------------------------------------------------------------------


def test_audit_now_against_a_loopback_peer(app, client, session, engine):
    host = "127.42.160.30"
    asset = make_asset(session, name="mystery-box", addresses=host)
    with greeting_peer(host) as port:
        settings = app.extensions["inventory.settings"]
        audit = settings.audit.model_copy(
            update={
                "default_ports": [port],
                "connect_timeout": 1.0,
                "read_timeout": 1.0,
                "audit_deadline": 20,
            }
        )
        app.extensions["inventory.settings"] = settings.model_copy(update={"audit": audit})
        login(client, session, "auditor")
        response = client.submit(f"/assets/{asset.id}/audit", {}, page=f"/assets/{asset.id}")
        assert response.status_code == 302
        page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Audit done: mystery-box answered. Open ports: 1." in page
    assert f"{host}:{port}/tcp" in page and "OpenSSH" in page
    assert "port.unexpected-open" in page and "the-auditor" in page
    with Session(engine) as check:
        found = check.scalars(select(Finding).where(Finding.asset_id == asset.id)).all()
        assert [
            (f.check_id, f.port, str(f.status))
            for f in found
            if f.check_id == "port.unexpected-open"
        ] == [("port.unexpected-open", port, "open")]


# --- in French ------------------------------------------------------------------------------


def test_findings_pages_in_french(client, session, compiled_french, french):  # noqa: F811
    from inventory.services.users import update_user

    asset = make_asset(session, name="pacs", addresses="127.42.160.40")
    (finding,) = seed(session, asset, ("dicom.open-association", "high", 104))
    user = login(client, session, "auditor")
    update_user(session=session, user_id=user.id, locale="fr")
    page = client.get("/findings?status=fixed").get_data(as_text=True)
    assert '<html lang="fr">' in page
    assert _french(french, "No finding matches these filters.") in page
    assert _french(french, "Findings") in page
    page = client.get(f"/assets/{asset.id}").get_data(as_text=True)
    for msgid in ("Audit now", "Services seen", "Last audits", "What to do"):
        assert _french(french, msgid) in page, msgid
    response = client.submit(f"/findings/{finding.id}/accept", {"reason": "", "until": "bientôt"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert _french(french, "Say why this risk is accepted.") in _field_errors(page, "reason")
    assert _french(
        french, "%(value)s is not a date (expected e.g. 2027-03-31).", value="bientôt"
    ) in _field_errors(page, "until")


def test_audit_now_on_an_asset_that_does_not_answer(client, session, engine, monkeypatch):
    """No address answered (e.g. filtered on a real network): the flash says so, nothing changes."""
    from inventory.services import audits

    asset = make_asset(session, name="switched-off", addresses="127.42.160.50")
    (finding,) = seed(session, asset, ("port.unexpected-open", "medium", 21))
    silent = AuditReport(
        target=asset.name,
        started_at=datetime.now(UTC),
        results=[
            ProbeResult(
                "tcp",
                ProbeOutcome.ran,
                services=[ServiceObservation("127.42.160.50", 21, PortState.filtered)],
                checks={"port.unexpected-open"},
            )
        ],
    )
    monkeypatch.setattr(audits, "run_audit", lambda target, settings: silent)
    login(client, session, "admin")
    response = client.submit(f"/assets/{asset.id}/audit", {}, page=f"/assets/{asset.id}")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "did not answer on any port" in page and "Open findings: 1." in page
    assert finding_state(engine, finding.id)[0] == "open"
    assert "No answer" in page  # the audit row


def test_audit_now_refuses_an_archived_asset(client, session, monkeypatch):
    from inventory.services import assets as asset_service
    from inventory.services import audits

    asset = make_asset(session, name="old", addresses="127.42.160.51")
    asset_service.archive_asset(session=session, asset_id=asset.id, actor="tests")
    monkeypatch.setattr(audits, "run_audit", lambda *a, **k: pytest.fail("must not audit"))
    login(client, session, "admin")
    response = client.submit(f"/assets/{asset.id}/audit", {}, page="/account")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "This asset is archived; restore it before auditing it." in page


def test_the_findings_list_is_paged_in_fix_first_order(engine, database_url, tmp_path, session):
    from inventory import create_app
    from inventory.settings import load_settings
    from tests.conftest import TEST_SECRET, FormClient

    settings = load_settings(
        {
            "general": {"environment": "test", "var_dir": str(tmp_path / "var"), "timezone": "UTC"},
            "database": {"url": database_url},
            "web": {"secret_key": TEST_SECRET, "page_size": 5},
        },
        environ={},
    )
    app = create_app(settings=settings, engine=engine)
    app.config["TESTING"] = True
    app.test_client_class = FormClient
    client = app.test_client()
    asset = make_asset(session, name="nas", addresses="127.42.160.9")
    seed(session, asset, *[("port.unexpected-open", "medium", p) for p in range(1000, 1011)])
    seed(
        session,
        make_asset(session, name="pacs", addresses="127.42.160.10"),
        ("dicom.open-association", "high", 104),
    )
    login(client, session, "viewer")

    def subjects(url: str) -> list[str]:
        page = client.get(url).get_data(as_text=True)
        return re.findall(r'<td class="mono">([^<]+)</td>', page)

    first = client.get("/findings").get_data(as_text=True)
    assert "12 findings" in first and "Page 1 of 3" in first
    assert subjects("/findings")[0] == "127.42.160.10:104"  # high before medium, on page 1
    seen = subjects("/findings") + subjects("/findings?page=2") + subjects("/findings?page=3")
    assert len(seen) == 12 and len(set(seen)) == 12  # every finding once across the pages
    assert subjects("/findings?page=999") == subjects("/findings?page=3")  # past the end: last
    assert subjects("/findings?page=abc") == subjects("/findings")
    assert subjects("/findings?severity=medium&page=3") == ["127.42.160.9:1010"]
