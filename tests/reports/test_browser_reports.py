"""Real-browser test of the Reports pages: an administrator adds a weekly schedule (a bad timing
and a bad address refused next to their fields first), runs it now, sees the failed e-mail
delivery with its reason and a retry button, opens the report itself (the hostile asset name is
text, no script runs, nothing is fetched from elsewhere); a viewer sees the pages without the
controls. Screenshots under tests/artifacts/ (reports-*.png)."""

# ruff: noqa: F811 - the fixtures imported from test_browser are parameters here

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from tests.factories import make_user
from tests.reports.demo import HOSTILE, build
from tests.test_browser import (  # noqa: F401 - the live server, the browser and its checks
    browser,
    context,
    live_server,
    login,
    page,
    shoot,
    traffic,
)

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_hashing")]


def test_admin_schedules_runs_and_reads_a_report(
    page: Any, session: Session, settings, artifacts: Path, traffic
) -> None:
    build(session, settings)  # a clinic with findings, and two reports of a weekly schedule
    make_user(session, "admin", username="alice")
    login(page, "alice")
    page.get_by_role("link", name="Reports").first.click()
    expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    expect(page.locator("section:has(#schedules-title)")).to_contain_text("Weekly re-audit")
    shoot(page, artifacts, "reports-01-list")

    page.get_by_role("link", name="Add a schedule").click()
    page.get_by_label("Name", exact=True).fill("Monthly for the DPO")
    page.get_by_label("Covers").select_option("site")
    page.get_by_label("Site, zone, kind or tag").fill("Lyon")
    page.get_by_label("When").fill("0 7 1 * lundi")
    page.get_by_label("Send by e-mail to").fill("dpo@clinic.example\nnot an address")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#field-cron")).to_contain_text("lundi is not a valid weekday.")
    expect(page.locator("#field-recipients")).to_contain_text("not is not an e-mail address.")
    expect(page.get_by_label("When")).to_have_attribute("aria-invalid", "true")
    shoot(page, artifacts, "reports-02-form-errors")
    page.get_by_label("When").fill("0 7 1 * *")
    page.get_by_label("Send by e-mail to").fill("dpo@clinic.example")
    page.get_by_role("button", name="Save").click()
    row = page.locator("tr", has_text="Monthly for the DPO")
    expect(row).to_contain_text("on day 1 of every month at 07:00")

    row.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("heading", name="Report of")).to_be_visible()
    deliveries = page.locator("#deliveries")
    expect(deliveries).to_contain_text("dpo@clinic.example")
    expect(deliveries).to_contain_text("no SMTP server is configured")
    expect(deliveries.get_by_role("button", name="Retry now")).to_be_visible()
    shoot(page, artifacts, "reports-03-deliveries")

    with page.expect_popup() as opened:
        page.get_by_role("link", name="Read the report").click()
    report = opened.value
    report.wait_for_load_state()
    expect(report.get_by_role("heading", name="Monthly for the DPO")).to_be_visible()
    expect(report.locator("#asset-1")).to_contain_text(HOSTILE)  # shown as text
    assert report.evaluate("document.querySelectorAll('script').length") == 0
    report.get_by_role("link", name=HOSTILE).first.click()  # a finding's link to its asset
    assert report.url.endswith("#asset-1")
    shoot(report, artifacts, "reports-04-report-html")
    assert not traffic.errors and not traffic.foreign, (traffic.errors, traffic.foreign)


def test_viewer_reads_without_controls(
    page: Any, session: Session, settings, artifacts: Path
) -> None:
    build(session, settings)
    make_user(session, "viewer", username="victor")
    login(page, "victor")
    page.goto("/reports")
    expect(page.locator("section:has(#reports-title)")).to_contain_text("Weekly re-audit")
    assert page.get_by_role("button", name="Run now").count() == 0
    assert page.get_by_role("link", name="Add a schedule").count() == 0
    page.locator("section:has(#reports-title) a", has_text="PDF").first.wait_for()
