"""Real-browser test of the schedule page: an administrator sets a maintenance window on the
radiology zone, sees the radiology modality held back by it while the other overdue asset waits
for a worker, a stale asset in red, a bad time refused next to its field; a viewer sees the page
without the controls. Screenshots under tests/artifacts/ (schedule-*.png).
"""

# ruff: noqa: F811 - the fixtures imported from test_browser are parameters here

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import Session

from inventory.models import AssetSchedule
from inventory.models.types import utcnow
from inventory.services.stale import check_stale
from inventory.settings import Settings
from tests.factories import make_asset, make_user
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


@pytest.fixture
def fleet(session: Session) -> dict[str, Any]:
    """A modality in radiology and a NAS, both due; a viewer not audited for three days."""
    modality = make_asset(session, name="Scanner CT", kind="modality", zone="Radiology")
    nas = make_asset(session, name="NAS archives", kind="nas", zone="Office")
    stale = make_asset(session, name="Web viewer", kind="web-viewer", audit_interval="1d")
    now = utcnow()
    session.execute(
        update(AssetSchedule)
        .where(AssetSchedule.asset_id == stale.id)
        .values(created_at=now - timedelta(days=3), next_due_at=now - timedelta(days=3))
    )
    session.commit()
    assert check_stale(session=session, now=now, defaults=Settings().assets) == (1, 0)
    return {"modality": modality, "nas": nas, "stale": stale}


def section(page: Any, key: str) -> Any:
    return page.locator(f"section:has(#{key}-title)")


def test_admin_holds_radiology_back_with_a_window(
    page: Any, session: Session, fleet: dict[str, Any], artifacts: Path
) -> None:
    make_user(session, "admin", username="alice")
    login(page, "alice")
    page.get_by_role("link", name="Schedule").first.click()
    expect(page.get_by_role("heading", name="Schedule", exact=True)).to_be_visible()
    overdue = section(page, "overdue")
    for name in ("Scanner CT", "NAS archives", "Web viewer"):
        expect(overdue).to_contain_text(name)
    # No scheduler runs in this test: the page says so rather than pretending.
    expect(page.get_by_text("No scheduler is running")).to_be_visible()

    # A window every day, all day, so that the test does not depend on the hour it runs at.
    page.get_by_role("link", name="Add a window").click()
    page.get_by_label("Name", exact=True).fill("Radiology opening hours")
    page.get_by_label("Applies to").select_option("zone")
    page.get_by_label("Zone or site").fill("radiology")
    page.get_by_label("During this time").select_option("blackout")
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"):
        page.get_by_label(day).check()
    page.get_by_label("From", exact=True).fill("00:00")
    page.get_by_label("To", exact=True).fill("23:59")
    # A mistyped time first: refused next to its field, nothing saved.
    page.locator("#end_time").evaluate("e => e.type = 'text'")
    page.get_by_label("To", exact=True).fill("7h")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#field-end_time")).to_contain_text("7h is not a time")
    expect(page.get_by_label("To", exact=True)).to_have_attribute("aria-invalid", "true")
    assert '="None"' not in page.content()  # no attribute left without a value
    shoot(page, artifacts, "schedule-02-window-error")
    page.locator("#end_time").evaluate("e => e.type = 'text'")
    page.get_by_label("To", exact=True).fill("23:59")
    page.get_by_role("button", name="Save").click()

    expect(page.locator("#windows")).to_contain_text("Radiology opening hours")
    modality_row = overdue.locator("tr", has_text="Scanner CT")
    expect(modality_row).to_contain_text("Waiting for its maintenance window")
    expect(overdue.locator("tr", has_text="NAS archives")).to_contain_text("A free worker")
    stale_row = overdue.locator("tr", has_text="Web viewer")
    expect(stale_row).to_have_class("row-stale")
    expect(section(page, "stale")).to_contain_text("Web viewer")
    # The stale row really looks different: its background is not the other rows'.
    colours = page.evaluate(
        """() => [...document.querySelectorAll('section:has(#overdue-title) tbody tr')]
             .map(r => [r.textContent.includes('Web viewer'),
                        getComputedStyle(r.cells[0]).backgroundColor])"""
    )
    stale_colour = {c for is_stale, c in colours if is_stale}
    other_colours = {c for is_stale, c in colours if not is_stale}
    assert stale_colour and not stale_colour & other_colours, colours
    shoot(page, artifacts, "schedule-01-overview")


def test_viewer_sees_the_schedule_without_controls(
    page: Any, session: Session, fleet: dict[str, Any], artifacts: Path
) -> None:
    make_user(session, "viewer", username="victor")
    login(page, "victor")
    page.goto("/schedule")
    expect(section(page, "overdue")).to_contain_text("Scanner CT")
    expect(page.get_by_role("link", name="Add a window")).to_have_count(0)
    shoot(page, artifacts, "schedule-03-viewer")
