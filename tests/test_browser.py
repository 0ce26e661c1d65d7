"""Real-browser tests: Debian's chromium driven by Playwright against a live Vigie.

The app is the one of the `app` fixture (SQLite and PostgreSQL), served by werkzeug on a random
loopback port. Every test checks that the browser asked nothing of any other host (hospital
networks are often offline: no CDN), that the page logged no error (a CSP violation is one), and
the main pages are saved as full-page screenshots under tests/artifacts/ to be looked at.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.factories import PASSWORD, make_asset, make_user

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")  # never fetch a browser build
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

CHROMIUM = os.environ.get("INVENTORY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LAPTOP = {"width": 1366, "height": 768}
LOCAL_SCHEMES = {"data", "blob", "about"}

pytestmark = pytest.mark.browser


# --- browser and live server ------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One chromium for the whole module; each test gets its own context."""
    if not os.access(CHROMIUM, os.X_OK):
        message = f"no chromium at {CHROMIUM} (`make browser` installs Debian's)"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run the browser tests)")
        pytest.skip(message)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class LiveServer:
    url: str
    app: Flask


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """The test's app (same database as the `session` fixture) on a random loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=f"http://127.0.0.1:{server.server_port}", app=app)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Traffic:
    """What the page asked for and complained about, checked after each test."""

    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def traffic() -> Traffic:
    return Traffic()


def _is_foreign(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme not in LOCAL_SCHEMES and parts.hostname != "127.0.0.1"


def new_context(browser: Any, live_server: LiveServer, traffic: Traffic, **options: Any) -> Any:
    """A laptop-sized English context that records, and refuses, any request off the loopback."""
    context = browser.new_context(
        viewport=LAPTOP, locale="en-US", base_url=live_server.url, **options
    )
    context.set_default_timeout(10_000)

    def block_foreign(route: Any) -> None:
        if _is_foreign(route.request.url):
            route.abort()  # recorded by the request listener; nothing leaves the machine
        else:
            route.continue_()

    def on_request(request: Any) -> None:
        if _is_foreign(request.url):
            traffic.foreign.append(request.url)

    context.on("request", on_request)
    context.route("**/*", block_foreign)
    return context


def check_traffic(traffic: Traffic) -> None:
    assert not traffic.foreign, f"requests to other hosts than 127.0.0.1: {traffic.foreign}"
    assert not traffic.errors, f"errors in the browser console: {traffic.errors}"


@pytest.fixture
def context(browser: Any, live_server: LiveServer, traffic: Traffic) -> Iterator[Any]:
    context = new_context(browser, live_server, traffic)
    yield context
    context.close()
    check_traffic(traffic)


@pytest.fixture
def page(context: Any, traffic: Traffic) -> Any:
    page = context.new_page()

    def on_console(message: Any) -> None:
        # A form page answered with 400 logs "Failed to load resource": that status is on purpose.
        # Failed sub-resources (a missing stylesheet) are caught by on_response instead.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            traffic.errors.append(message.text)

    def on_response(response: Any) -> None:
        if response.status >= 400 and response.request.resource_type != "document":
            traffic.errors.append(f"{response.status} {response.url}")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda exc: traffic.errors.append(str(exc)))
    return page


@pytest.fixture
def admin(session: Any, fast_hashing: None) -> str:
    make_user(session, "admin", username="alice")
    return "alice"


# --- helpers ----------------------------------------------------------------------------------


def login(page: Any, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def shoot(page: Any, artifacts: Path, name: str) -> None:
    """A full-page screenshot at laptop size, and the page's own checks of what a user sees."""
    assert_readable(page)
    page.evaluate("window.scrollTo(0, 0)")  # else the sticky header lands mid-page in the picture
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


# WCAG 2.1 AA contrast for every visible piece of text: 4.5:1, or 3:1 for large text.
CONTRAST_CHECK = (Path(__file__).parent / "wcag_contrast.js").read_text(encoding="utf-8")


def assert_readable(page: Any) -> None:
    """Enough contrast everywhere, and no text wider than the laptop screen."""
    low = page.evaluate(CONTRAST_CHECK)
    assert not low, f"text below WCAG AA contrast on {page.url}: {low}"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= LAPTOP["width"], f"{page.url} scrolls sideways ({width}px)"


def field_block(page: Any, name: str) -> Any:
    return page.locator(f"#field-{name}")


# --- the scenario ---------------------------------------------------------------------


def test_add_find_edit_and_history(page: Any, admin: str, artifacts: Path) -> None:
    login(page, admin)
    expect(page).to_have_url(re.compile(r"/assets$"))
    expect(page.get_by_role("heading", name="Your inventory is empty")).to_be_visible()
    shoot(page, artifacts, "02-assets-empty")

    page.get_by_role("link", name="Add an asset").first.click()
    expect(page.get_by_role("heading", name="Add an asset", level=1)).to_be_visible()
    page.get_by_label("Name", exact=True).fill("PACS radiologie")
    page.get_by_label("Kind").select_option("pacs")
    page.get_by_label("Criticality").select_option("high")
    page.get_by_label("Holds patient data").check()
    page.get_by_label("Addresses").fill("10.0.0.0/24")
    page.get_by_label("Expected services").fill("4242/tcp dicom\n443/tcp https")
    page.get_by_label("DICOM AE titles").fill("THIS_AE_TITLE_IS_FAR_TOO_LONG")
    page.get_by_role("button", name="Add the asset").click()

    # The error sits next to the field, tied to its input for screen readers.
    addresses = field_block(page, "addresses")
    expect(addresses.locator(".errors")).to_contain_text("10.0.0.0/24 is a network range")
    box = addresses.locator("textarea")
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(box).to_have_attribute("aria-describedby", re.compile(r"\baddresses-error\b"))
    ae_errors = field_block(page, "ae_titles").locator(".errors")
    expect(ae_errors).to_contain_text("at most 16 characters")
    expect(field_block(page, "name").locator(".errors")).to_have_count(0)
    # The summary at the top links to each field to correct.
    summary = page.locator("#form-problems")
    expect(summary.get_by_role("link")).to_have_text(["Addresses", "DICOM AE titles"])
    # What the user typed is kept.
    expect(page.get_by_label("Name", exact=True)).to_have_value("PACS radiologie")
    expect(page.get_by_label("Holds patient data")).to_be_checked()
    shoot(page, artifacts, "04-asset-form-errors")

    page.get_by_label("Addresses").fill("10.0.0.5")
    page.get_by_label("DICOM AE titles").fill("PACS_RADIO")
    page.get_by_label("Tags").fill("radiology imaging")
    page.get_by_role("button", name="Add the asset").click()
    expect(page.get_by_role("heading", name="PACS radiologie", level=1)).to_be_visible()
    expect(page.locator(".flash-success")).to_contain_text("PACS radiologie was added")

    # Find it in the list with the search box.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Assets").click()
    page.get_by_role("searchbox", name="Search").fill("10.0.0.5")
    page.get_by_role("searchbox", name="Search").press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]q=10\.0\.0\.5"))
    expect(page.locator("#result-count")).to_have_text("1 asset")
    row = page.locator("tbody tr").filter(has_text="PACS radiologie")
    expect(row).to_contain_text("10.0.0.5")
    expect(row.locator(".badge")).to_contain_text(["High", "Yes"])
    row.get_by_role("link", name="PACS radiologie").click()

    # Edit it.
    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page.get_by_label("Addresses")).to_have_value("10.0.0.5")
    page.get_by_label("Criticality").select_option("critical")
    page.get_by_label("Addresses").fill("10.0.0.5\n10.0.0.6")
    page.get_by_label("Owner / contact").fill("Dr Martin, radiology")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator(".flash-success")).to_contain_text("Changes to PACS radiologie were saved")

    # The history shows who changed what, with the old and the new value.
    history = page.locator("#history")
    entries = history.locator(".timeline > li")
    expect(entries).to_have_count(2)
    latest = entries.first
    expect(latest).to_contain_text(f"{admin} changed (web form)")
    crit = latest.locator("tr").filter(has_text="Criticality")
    expect(crit.locator(".old")).to_have_text("High")
    expect(crit.locator(".new")).to_have_text("Critical")
    owner = latest.locator("tr").filter(has_text="Owner / contact")
    expect(owner.locator(".old")).to_have_text("—")
    expect(owner.locator(".new")).to_have_text("Dr Martin, radiology")
    addr = latest.locator("tr").filter(has_text="Addresses")
    expect(addr.locator(".old")).to_have_text("10.0.0.5")
    expect(addr.locator(".new")).to_have_text("10.0.0.5; 10.0.0.6")
    expect(entries.last).to_contain_text(f"{admin} created")
    expect(page.locator(".props")).to_contain_text(["Critical", "10.0.0.6"])
    shoot(page, artifacts, "05-asset-detail-history")


def test_same_address_twice_links_to_the_other_asset(page: Any, admin: str, session: Any) -> None:
    other = make_asset(session, name="NAS archives", addresses="192.168.1.20", kind="nas")
    login(page, admin)
    page.goto("/assets/new")
    page.get_by_label("Name", exact=True).fill("Viewer room 2")
    page.get_by_label("Addresses").fill("192.168.1.20")
    page.get_by_role("button", name="Add the asset").click()
    errors = field_block(page, "addresses").locator(".errors")
    expect(errors).to_contain_text("192.168.1.20 is already the address of NAS archives")
    errors.get_by_role("link", name="Open it").click()
    expect(page).to_have_url(re.compile(rf"/assets/{other.id}$"))


def test_works_without_javascript(
    browser: Any, live_server: LiveServer, admin: str, traffic: Traffic
) -> None:
    """Nothing needs JavaScript: some hospital workstations lock it down."""
    context = new_context(browser, live_server, traffic, java_script_enabled=False)
    try:
        page = context.new_page()
        login(page, admin)
        page.goto("/assets/new")
        page.get_by_label("Name", exact=True).fill("Echograph 1")
        page.get_by_label("Addresses").fill("fe80::1%eth0")
        page.get_by_role("button", name="Add the asset").click()
        errors = field_block(page, "addresses").locator(".errors")
        expect(errors).to_contain_text("interface suffix")
        page.get_by_label("Addresses").fill("192.168.20.7")
        page.get_by_role("button", name="Add the asset").click()
        expect(page.get_by_role("heading", name="Echograph 1", level=1)).to_be_visible()
    finally:
        context.close()
    check_traffic(traffic)


# --- login, language, logout ------------------------------------------------------------------


def test_login_page_switches_to_french(page: Any, admin: str, artifacts: Path) -> None:
    page.goto("/assets")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    shoot(page, artifacts, "01-login")

    page.get_by_role("button", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page).to_have_url(re.compile(r"/login"))
    shoot(page, artifacts, "01-login-fr")
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")

    page.get_by_label("User name").fill(admin)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".flash-error")).to_contain_text("Wrong user name or password")
    expect(page.get_by_label("User name")).to_have_value(admin)


def test_logout(page: Any, admin: str) -> None:
    login(page, admin)
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.locator(".flash-info")).to_contain_text("You are logged out")
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    page.goto("/assets")
    expect(page).to_have_url(re.compile(r"/login"))


def test_keyboard_user_sees_where_the_focus_is(page: Any, admin: str) -> None:
    login(page, admin)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box and box["x"] >= 0 and box["y"] >= 0, "the skip link stays off screen when focused"
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "the focused element has no visible outline"


# --- the list with data -----------------------------------------------------------------------

KINDS = [
    "pacs",
    "modality",
    "viewer-workstation",
    "web-viewer",
    "nas",
    "database",
    "server",
    "network-device",
    "workstation",
    "other",
]
CRITS = ["critical", "high", "medium", "low"]
SITES = ["Lyon - main clinic", "Villeurbanne imaging", "Bron annex"]
ZONES = ["radiology", "office", "DMZ", "servers"]
PATIENT_KINDS = {"pacs", "modality", "viewer-workstation", "nas"}
TAGS = ["radiology", "cardiology", "legacy", "vendor-managed", "backup", "windows7"]


def fill_inventory(session: Any, count: int = 30) -> None:
    for n in range(count):
        kind = KINDS[n % len(KINDS)]
        addresses = f"192.168.{10 + n % 3}.{20 + n}"
        if n % 7 == 0:
            addresses += f"; 192.168.{10 + n % 3}.{120 + n}"
        if n % 11 == 0:
            addresses += f"; fd00:10::{n + 1:x}"
        make_asset(
            session,
            name=f"{kind.replace('-', ' ').title()} {n + 1:02d}",
            addresses=addresses,
            kind=kind,
            criticality=CRITS[n % len(CRITS)],
            site=SITES[n % len(SITES)],
            zone=ZONES[n % len(ZONES)],
            holds_patient_data="yes" if kind in PATIENT_KINDS else "no",
            tags=" ".join(TAGS[(n + k) % len(TAGS)] for k in range(n % 3)),
        )


def test_list_search_filter_and_sort(page: Any, admin: str, session: Any, artifacts: Path) -> None:
    fill_inventory(session)
    login(page, admin)
    expect(page.locator("#result-count")).to_have_text("30 assets")
    expect(page.locator("tbody tr")).to_have_count(30)
    shoot(page, artifacts, "03-assets-list")

    page.get_by_label("Kind").select_option("pacs")
    page.get_by_label("Criticality").select_option("critical")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#result-count")).to_have_text("2 assets")
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.get_by_label("Kind")).to_have_value("pacs")

    page.get_by_role("link", name="Reset").click()
    expect(page.locator("#result-count")).to_have_text("30 assets")
    # The first click on Criticality puts the most critical first: what to look at first.
    page.locator("thead").get_by_role("link", name="Criticality").click()
    expect(page.locator("tbody tr").first.locator(".badge").first).to_have_text("Critical")
    expect(page.locator("tbody tr").last.locator(".badge").first).to_have_text("Low")
    page.locator("thead").get_by_role("link", name="Criticality").click()
    expect(page.locator("tbody tr").first.locator(".badge").first).to_have_text("Low")

    page.locator("tbody").get_by_role("link", name="legacy").first.click()
    expect(page.get_by_label("Tag")).to_have_value("legacy")
    assert page.locator("tbody tr").count() > 0
    page.get_by_role("searchbox", name="Search").fill("no such asset")
    page.get_by_role("searchbox", name="Search").press("Enter")
    expect(page.get_by_text("No asset matches these filters.")).to_be_visible()
    shoot(page, artifacts, "03-assets-list-no-match")


def test_server_side_pages(
    page: Any, admin: str, session: Any, settings: Any, artifacts: Path
) -> None:
    size = settings.web.page_size
    fill_inventory(session, size + 5)
    login(page, admin)
    expect(page.locator("#result-count")).to_have_text(f"{size + 5} assets · showing 1 to {size}")
    expect(page.locator("tbody tr")).to_have_count(size)
    pager = page.get_by_role("navigation", name="Pages")
    expect(pager).to_contain_text("Page 1 of 2")
    pager.get_by_role("link", name="Next").click()
    expect(page.locator("tbody tr")).to_have_count(5)
    expect(pager).to_contain_text("Page 2 of 2")
    expect(page.locator("#result-count")).to_contain_text(f"showing {size + 1} to {size + 5}")
    shoot(page, artifacts, "03-assets-list-page-2")


def test_list_in_french(page: Any, admin: str, session: Any, artifacts: Path) -> None:
    """Longer French words must fit the same laptop screen."""
    fill_inventory(session, 12)
    login(page, admin)
    page.locator(".usermenu").get_by_role("link", name=admin).click()
    shoot(page, artifacts, "08-account")
    language = page.get_by_label("Language", exact=True)
    language.select_option("fr")
    page.locator("form").filter(has=language).get_by_role("button").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.goto("/assets")
    shoot(page, artifacts, "03-assets-list-fr")
    page.goto("/assets/new")
    shoot(page, artifacts, "04-asset-form-fr")


# --- import, users --------------------------------------------------------------------------

BAD_CSV = b"""name,addresses,kind,criticality,expected_services,ae_titles
PACS main,192.168.10.5,pacs,high,4242/tcp dicom,PACS_MAIN
Modality CT,10.0.0.0/24,modality,high,104/tcp dicom,CT1
Viewer,192.168.10.7,viewer,medium,,
NAS,192.168.10.8,nas,urgent,99999/tcp smb,
Workstation,not-an-address,workstation,low,,AE\\WITH\\BACKSLASH
"""

GOOD_CSV = b"""name,addresses,kind,criticality,site,tags
PACS main,192.168.10.5,pacs,high,Lyon,radiology
Modality CT,192.168.10.6,modality,high,Lyon,radiology ct
Web viewer,192.168.10.7,web-viewer,medium,Lyon,
"""


def test_import_preview_lists_bad_rows_then_imports(page: Any, admin: str, artifacts: Path) -> None:
    login(page, admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Import").click()
    page.get_by_label("CSV or JSON file").set_input_files(
        {"name": "clinic.csv", "mimeType": "text/csv", "buffer": BAD_CSV}
    )
    page.get_by_role("button", name="Check the file").click()
    problems = page.locator(".problems")
    expect(problems.get_by_role("heading")).to_contain_text("nothing was imported")
    lines = problems.locator("tbody tr td:first-child").all_inner_texts()
    assert set(lines) == {"3", "4", "5", "6"}, lines
    expect(problems).to_contain_text("10.0.0.0/24 is a network range")
    page.locator("details.help summary").click()
    shoot(page, artifacts, "06-import-errors")

    page.get_by_label("CSV or JSON file").set_input_files(
        {"name": "clinic.csv", "mimeType": "text/csv", "buffer": GOOD_CSV}
    )
    page.get_by_role("button", name="Check the file").click()
    expect(page.locator(".preview tbody tr")).to_have_count(3)
    shoot(page, artifacts, "06-import-preview")
    page.get_by_role("button", name="Import 3 assets").click()
    expect(page.locator(".flash-success")).to_contain_text("3 added")
    expect(page.locator("#result-count")).to_have_text("3 assets")


def test_users_admin(page: Any, admin: str, session: Any, artifacts: Path) -> None:
    make_user(session, "auditor", username="bruno")
    make_user(session, "viewer", username="claire")
    login(page, admin)
    page.get_by_role("link", name="Users").click()
    expect(page.locator("tbody tr")).to_have_count(3)
    shoot(page, artifacts, "07-users")

    page.get_by_role("link", name="Add a user").click()
    page.get_by_label("User name").fill("denise")
    page.get_by_label("Role").select_option("viewer")
    page.get_by_role("button", name="Save").click()
    secret = page.locator("#generated-password")
    expect(secret).to_be_visible()
    assert len(secret.inner_text().strip()) >= 12
    shoot(page, artifacts, "07-users-password-once")
    page.get_by_role("link", name="Done").click()
    expect(page.locator("tbody tr")).to_have_count(4)
