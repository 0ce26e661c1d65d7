"""Real-browser tests of the audit and findings pages: an auditor audits an asset that is a real
FTP-like peer on loopback, filters the findings, accepts a risk; a viewer sees no such controls;
the findings pages in French. Screenshots under tests/artifacts/ (findings-*.png).
"""

# ruff: noqa: F811 - the fixtures imported from test_browser and test_i18n are parameters here

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlmodel import Session

from tests.factories import PASSWORD, make_asset, make_user
from tests.ftp_peer import ftp_peer
from tests.test_browser import (  # noqa: F401 - the live server, the browser and its checks
    browser,
    context,
    live_server,
    login,
    page,
    shoot,
    traffic,
)
from tests.test_i18n import _french, compiled_french, french  # noqa: F401 - fixtures

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_hashing")]

PEER = "127.62.2.1"
ANONYMOUS_TITLE = re.compile("lets anyone in without a password")


def audit_only(app: Flask, port: int) -> None:
    """Audits probe only the peer's port, with short timeouts."""
    settings = app.extensions["inventory.settings"]
    audit = settings.audit.model_copy(
        update={"default_ports": [port], "connect_timeout": 1.0, "read_timeout": 1.0}
    )
    app.extensions["inventory.settings"] = settings.model_copy(update={"audit": audit})


def audit_in_background(app: Flask, asset_id: int) -> None:
    """Audit as the scheduler would; in a thread of its own, because Playwright's event loop
    runs in this one and the audit engine starts its own with asyncio.run."""
    from inventory.services.audits import audit_asset

    def run() -> None:
        with Session(app.extensions["inventory.engine"]) as session:
            audit_asset(
                session=session,
                asset_id=asset_id,
                settings=app.extensions["inventory.settings"].audit,
                actor="tests",
                trigger="scheduler",
            )

    with ThreadPoolExecutor(1) as pool:
        pool.submit(run).result(60)


@pytest.fixture
def nas(session: Session) -> Any:
    return make_asset(
        session,
        name="NAS radiologie",
        addresses=PEER,
        kind="nas",
        site="Lyon",
        zone="radiology",
        holds_patient_data="yes",
    )


@pytest.fixture
def peer_port(app: Flask) -> Iterator[int]:
    with ftp_peer(PEER) as port:
        audit_only(app, port)
        yield port


def snap(page: Any, artifacts: Path, name: str) -> None:
    """`shoot`, and no table wider than its card (it would hide its last column behind a
    scroll bar: the accept buttons, in French)."""
    hidden = page.evaluate(
        "[...document.querySelectorAll('.table-wrap')]"
        ".filter(e => e.scrollWidth > e.clientWidth).map(e => e.scrollWidth - e.clientWidth)"
    )
    assert not hidden, f"a table on {page.url} is wider than its card by {hidden} px"
    shoot(page, artifacts, name)


def rows(page: Any) -> Any:
    return page.locator("table.findings tbody tr")


def test_auditor_audits_filters_and_accepts_a_risk(
    page: Any, session: Session, nas: Any, peer_port: int, artifacts: Path
) -> None:
    make_user(session, "auditor", username="claire")
    login(page, "claire")

    # The asset page: "Audit now" against the peer, then its services and findings.
    page.goto(f"/assets/{nas.id}")
    expect(page.get_by_text("Not audited yet.").first).to_be_visible()
    page.get_by_role("button", name="Audit now").click()
    expect(page.locator(".flash, [role=status], [role=alert]").first).to_contain_text(
        "Audit done: NAS radiologie answered. Open ports: 1. Open findings: 3."
    )
    services = page.locator("section", has=page.get_by_role("heading", name="Services seen"))
    expect(services).to_contain_text(f"{PEER}:{peer_port}/tcp")
    expect(services).to_contain_text("vsFTPd")
    findings = page.locator("#findings")
    expect(findings.get_by_role("link", name=ANONYMOUS_TITLE)).to_be_visible()
    expect(findings).to_contain_text("sends passwords and files unencrypted")
    audits = page.locator("#audits")
    expect(audits).to_contain_text("claire")
    expect(audits).to_contain_text("Completed")
    snap(page, artifacts, "findings-01-asset-after-audit")
    page.screenshot(path=str(artifacts / "findings-01b-asset-after-audit-viewport.png"))

    # The findings list: three open findings, then only the high one.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Findings").click()
    expect(rows(page)).to_have_count(3)
    expect(rows(page).first).to_contain_text("High")
    snap(page, artifacts, "findings-02-list")
    page.get_by_label("Severity").select_option("high")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"severity=high"))
    expect(rows(page)).to_have_count(1)
    expect(page.locator("#result-count")).to_contain_text("1 finding")
    snap(page, artifacts, "findings-03-list-high")

    # One finding, then accepting its risk: a mistake first, then right.
    rows(page).first.get_by_role("link", name=ANONYMOUS_TITLE).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(ANONYMOUS_TITLE)
    expect(page.locator("#history")).to_contain_text("audit by claire")
    snap(page, artifacts, "findings-04-detail")
    page.get_by_role("link", name="Accept the risk").click()
    page.get_by_label("Reason").fill("Scanner software reads from this share until the upgrade")
    page.get_by_label("Accepted until").fill((date.today() - timedelta(days=1)).isoformat())
    page.get_by_role("button", name="Accept the risk").click()
    expect(page.locator("#field-until")).to_contain_text("The expiry date must be in the future.")
    expect(page.get_by_label("Reason")).to_have_value(re.compile("^Scanner software"))
    snap(page, artifacts, "findings-05-accept-errors")
    until = date.today() + timedelta(days=60)
    page.get_by_label("Accepted until").fill(until.isoformat())
    page.get_by_role("button", name="Accept the risk").click()
    expect(
        page.get_by_text("The risk is accepted; the finding leaves the open list")
    ).to_be_visible()
    expect(page.locator(".badge.status-accepted")).to_have_text("Accepted risk")
    expect(page.get_by_role("link", name="Accept the risk")).to_have_count(0)
    expect(page.get_by_role("link", name="Change the acceptance")).to_be_visible()
    details = page.locator("section", has=page.get_by_role("heading", name="Details"))
    expect(details).to_contain_text(
        f"Accepted until{until.strftime('%b')} {until.day}, {until.year}"
    )
    history = page.locator("#history li").first
    expect(history).to_contain_text("claire")
    expect(history).to_contain_text("Open → Accepted risk")
    expect(history).to_contain_text("Scanner software reads from this share")
    snap(page, artifacts, "findings-06-accepted")

    # It has left the open list, and is listed with the accepted ones.
    page.goto("/findings")
    expect(rows(page)).to_have_count(2)
    expect(page.get_by_role("link", name=ANONYMOUS_TITLE)).to_have_count(0)
    page.get_by_label("Status").select_option("accepted")
    page.get_by_role("button", name="Apply").click()
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("Accepted risk")
    expect(rows(page).first).to_contain_text("until")
    # Nothing left to decide on this row: the acceptance is changed from the finding's page.
    expect(rows(page).first.get_by_role("link", name="Accept the risk")).to_have_count(0)
    snap(page, artifacts, "findings-07-list-accepted")


def test_a_viewer_has_no_audit_or_accept_controls(
    page: Any, session: Session, nas: Any, peer_port: int, app: Flask, artifacts: Path
) -> None:
    audit_in_background(app, nas.id)
    make_user(session, "viewer", username="victor")
    login(page, "victor")
    page.goto(f"/assets/{nas.id}")
    expect(page.locator("#findings").get_by_role("link", name=ANONYMOUS_TITLE)).to_be_visible()
    expect(page.get_by_role("button", name="Audit now")).to_have_count(0)
    page.goto("/findings")
    expect(rows(page)).to_have_count(3)
    expect(page.get_by_role("link", name="Accept the risk")).to_have_count(0)
    snap(page, artifacts, "findings-08-list-viewer")
    page.get_by_role("link", name=ANONYMOUS_TITLE).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(ANONYMOUS_TITLE)
    expect(page.get_by_role("link", name="Accept the risk")).to_have_count(0)


def test_findings_pages_in_french(
    page: Any,
    session: Session,
    nas: Any,
    peer_port: int,
    app: Flask,
    compiled_french: Path,
    french: Any,
    artifacts: Path,
) -> None:
    """Longer French words must fit the laptop screen on the list, the detail and the form."""
    from inventory.services.users import update_user

    audit_only(app, peer_port)  # compiled_french replaced the settings
    audit_in_background(app, nas.id)
    user = make_user(session, "auditor", username="camille")
    update_user(session=session, user_id=user.id, locale="fr")
    page.goto("/login")
    page.get_by_label("User name").fill("camille")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name=_french(french, "Log out"))).to_be_visible()
    page.goto("/findings")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", level=1)).to_have_text(_french(french, "Findings"))
    expect(rows(page)).to_have_count(3)
    expect(page.get_by_role("button", name=_french(french, "Apply"))).to_be_visible()
    expect(page.get_by_role("link", name=_french(french, "Accept the risk"))).to_have_count(3)
    snap(page, artifacts, "findings-09-list-fr")
    rows(page).first.locator("a.row-link").click()
    expect(page.get_by_role("heading", name=_french(french, "What to do"))).to_be_visible()
    snap(page, artifacts, "findings-10-detail-fr")
    page.get_by_role("link", name=_french(french, "Accept the risk")).click()
    expect(page.get_by_label(_french(french, "Accepted until"))).to_be_visible()
    snap(page, artifacts, "findings-11-accept-fr")
