"""Real-browser tests of known vulnerabilities: an administrator finds the feeds page in the menu
and uploads the real NVD and KEV files, declares an Orthanc with the product search of the asset
form, audits an asset whose real SSH greeting (a loopback peer) becomes detected software,
confirms it, and reads the vulnerability finding; then the same pages in French. Screenshots
under tests/artifacts/ (vulns-*.png).
"""

# ruff: noqa: F811 - the fixtures imported from test_browser and test_i18n are parameters here

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlmodel import Session

from inventory.services.vuln_import import import_files
from tests.factories import make_asset, make_user
from tests.loopback import greeting_peer
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
from tests.vulns.data import KEV, NVD_SAMPLE

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_hashing")]

PEER = "127.62.5.1"
SSH_BANNER = b"SSH-2.0-OpenSSH_9.7p1 Debian-5\r\n"


@pytest.fixture
def ssh_port(app: Flask) -> Iterator[int]:
    """A loopback peer greeting like OpenSSH 9.7p1; audits probe only its port."""
    with greeting_peer(PEER, SSH_BANNER) as port:
        settings = app.extensions["inventory.settings"]
        audit = settings.audit.model_copy(
            update={"default_ports": [port], "connect_timeout": 1.0, "read_timeout": 1.0}
        )
        app.extensions["inventory.settings"] = settings.model_copy(update={"audit": audit})
        yield port


def test_admin_imports_declares_confirms_and_reads(
    page: Any, session: Session, ssh_port: int, artifacts: Path
) -> None:
    make_user(session, "admin", username="alice")
    gateway = make_asset(session, name="SSH gateway", addresses=PEER, kind="server")
    login(page, "alice")

    # The feeds page, from the menu: nothing yet, then both real files at once.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="CVE feeds").click()
    expect(page.get_by_role("heading", name="Vulnerability feeds", level=1)).to_be_visible()
    expect(page.locator("#feeds")).to_contain_text("Never")
    page.get_by_label("Feed files").set_input_files([str(NVD_SAMPLE), str(KEV)])
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_text("nvd-sample.json: 35 records (35 new")).to_be_visible()
    expect(page.get_by_text("kev.json: 1404 records (1404 new")).to_be_visible()
    feeds = page.locator("#feeds tbody tr")
    expect(feeds.nth(0)).to_contain_text("35")
    expect(feeds.nth(1)).to_contain_text("1404")
    expect(feeds.nth(1)).to_contain_text("kev.json")
    expect(feeds.nth(1)).to_contain_text("alice")
    shoot(page, artifacts, "vulns-01-feeds-imported")

    # A bad file: the message names it, and nothing changes.
    page.get_by_label("Feed files").set_input_files(
        files=[{"name": "cut.json", "mimeType": "application/json", "buffer": b'{"format": "N'}]
    )
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#field-files")).to_contain_text("cut.json ends before its JSON does")
    expect(page.locator("#feeds tbody tr").nth(0)).to_contain_text("35")
    shoot(page, artifacts, "vulns-02-feeds-bad-file")

    # Declaring an Orthanc with the product search: "orth", pick, version, add, save.
    page.goto("/assets/new")
    page.get_by_label("Name", exact=True).fill("PACS Orthanc")
    page.get_by_label("Kind").select_option("pacs")
    page.get_by_label("Addresses").fill("10.20.0.5")
    search = page.get_by_label("Vendor or product")
    search.press_sequentially("orth", delay=30)
    found = page.locator("#cpe-results").get_by_role(
        "button", name=re.compile("^orthanc-server:orthanc")
    )
    expect(found).to_be_visible()
    expect(page.locator("#cpe-message")).to_contain_text("Products found: 1. Pick one.")
    shoot(page, artifacts, "vulns-03-form-product-search")
    found.click()
    expect(search).to_have_value("orthanc-server:orthanc")
    expect(page.get_by_label("Its version")).to_be_focused()
    page.keyboard.type("1.11.3")
    page.get_by_role("button", name="Add to the software list").click()
    software = page.get_by_label("Software (CPE 2.3)")
    expect(software).to_have_value("cpe:2.3:a:orthanc-server:orthanc:1.11.3:*:*:*:*:*:*:*")
    page.get_by_role("button", name="Add the asset").click()
    expect(page.get_by_role("heading", name="PACS Orthanc", level=1)).to_be_visible()
    findings = page.locator("#findings")
    expect(findings).to_contain_text("Known vulnerability CVE-2023-33466 in orthanc-server orthanc")

    # Detected software: the audit reads the SSH greeting; 60% waits for a person.
    page.goto(f"/assets/{gateway.id}")
    page.get_by_role("button", name="Audit now").click()
    detected = page.locator("#software")
    expect(detected).to_contain_text("cpe:2.3:a:openbsd:openssh:9.7:p1:*:*:*:*:*:*")
    expect(detected).to_contain_text("60%")
    expect(detected).to_contain_text("SSH banner: SSH-2.0-OpenSSH_9.7p1 Debian-5")
    expect(detected).to_contain_text("Waiting for a decision")
    expect(page.locator("#findings")).not_to_contain_text("CVE-2024-6387")
    shoot(page, artifacts, "vulns-04-detected-software")
    detected.get_by_role("button", name=re.compile(r"^Confirm")).click()
    expect(
        page.get_by_text("is confirmed: it is matched against known vulnerabilities")
    ).to_be_visible()
    expect(page.locator("#software")).to_contain_text("Confirmed")
    link = page.locator("#findings").get_by_role("link", name=re.compile("CVE-2024-6387"))
    expect(link).to_be_visible()
    expect(page.locator("#findings")).to_contain_text("CVSS 8.1 (v3.1)")
    shoot(page, artifacts, "vulns-05-confirmed")

    # The finding's page: CVSS, vector, description, references.
    link.click()
    section = page.locator("#vulnerability")
    expect(section).to_contain_text("Vulnerability CVE-2024-6387")
    expect(section).to_contain_text("8.1")
    expect(section).to_contain_text("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H")
    expect(section).to_contain_text("There is a race condition which can lead to sshd")
    expect(section).to_contain_text("detected by an audit")
    expect(section.locator("a[rel='noreferrer noopener']").first).to_be_visible()
    shoot(page, artifacts, "vulns-06-finding")


def test_kev_finding_in_the_list_and_in_french(
    page: Any, session: Session, compiled_french: Path, french: Any, artifacts: Path
) -> None:
    from inventory.services import vulns
    from inventory.services.users import update_user

    import_files(session=session, files=[(NVD_SAMPLE, "nvd"), (KEV, "kev")], actor="tests")
    samba = make_asset(session, name="Serveur Samba", software="cpe:2.3:a:samba:samba:4.5.9")
    vulns.rematch(session=session)
    user = make_user(session, "viewer", username="victor")
    login(page, "victor")
    page.goto("/findings?check=vuln.kev")
    row = page.locator("table.findings tbody tr").first
    expect(row).to_contain_text("is being exploited by attackers")
    expect(row).to_contain_text("CVSS 9.8 (v3.1)")
    shoot(page, artifacts, "vulns-07-findings-list-kev")
    row.locator("a.row-link").click()
    section = page.locator("#vulnerability")
    expect(section).to_contain_text("In the KEV catalog since")
    expect(section).to_contain_text("2023-03-30")
    expect(section).to_contain_text("Known to be used in ransomware campaigns")
    shoot(page, artifacts, "vulns-08-kev-finding")
    finding_url = page.url

    # In French: the words around the feed's own (English) text are translated.
    update_user(session=session, user_id=user.id, locale="fr")
    page.goto(finding_url)
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(section).to_contain_text(_french(french, "In the KEV catalog since"))
    expect(section).to_contain_text(_french(french, "CVSS score"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("CVE-2017-7494")
    shoot(page, artifacts, "vulns-09-kev-finding-fr")
    page.goto(f"/assets/{samba.id}")
    expect(page.locator("#software")).to_contain_text(_french(french, "Detected software"))
    shoot(page, artifacts, "vulns-10-asset-fr")
