"""The schedule page: who may see it and who may change windows, what it says about running,
overdue, held and stale assets, and the window form's checks (bad input changes nothing).
SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlmodel import Session

from inventory.models import AssetSchedule, MaintenanceWindow
from inventory.models.types import utcnow
from inventory.scheduler.clock import new_random
from inventory.services import schedule as schedule_service
from inventory.services.stale import check_stale
from inventory.settings import Settings
from tests.factories import PASSWORD, make_asset, make_user
from tests.test_i18n import _field_errors, _french, compiled_french, french  # noqa: F401 - fixtures
from tests.test_schedule_logic import reachable_report

pytestmark = pytest.mark.usefixtures("fast_hashing")

GOOD = {
    "name": "Radiology opening hours",
    "scope": "zone",
    "value": "Radiology",
    "mode": "blackout",
    "days": ["mon", "tue", "wed", "thu", "fri"],
    "start_time": "07:00",
    "end_time": "19:00",
}


def login(client, session: Session, role: str):
    user = make_user(session, role, username=f"the-{role}")
    assert client.login(user.username, PASSWORD).status_code == 302
    return user


def claim_only(session: Session, asset_id: int, now):
    """Hand this one asset to worker w-1 (as the dispatcher and a worker would)."""
    session.execute(
        update(AssetSchedule).where(AssetSchedule.asset_id == asset_id).values(queued_at=now)
    )
    session.commit()
    (claim,) = schedule_service.claim(
        session=session, worker_id="w-1", limit=1, now=now, claim_seconds=60
    )
    assert claim.asset_id == asset_id
    return claim


def windows(session: Session) -> list[MaintenanceWindow]:
    session.expire_all()
    return list(session.scalars(select(MaintenanceWindow).order_by(MaintenanceWindow.id)).all())


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.parametrize("role", ["viewer", "auditor", "admin"])
def test_every_role_sees_the_schedule_only_admins_change_windows(client, session, role):
    login(client, session, role)
    page = client.get("/schedule")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Maintenance windows" in html and 'href="/schedule"' in html  # nav link
    assert ("/schedule/windows/new" in html) == (role == "admin")
    new = client.get("/schedule/windows/new")
    assert new.status_code == (200 if role == "admin" else 403)
    if role != "admin":
        posted = client.post("/schedule/windows/new", data=GOOD)
        assert posted.status_code in {400, 403}
        assert windows(session) == []


def test_anonymous_visitors_are_sent_to_the_login(client):
    answer = client.get("/schedule")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_admin_adds_edits_and_removes_a_window(client, session):
    login(client, session, "admin")
    answer = client.submit("/schedule/windows/new", GOOD)
    assert answer.status_code == 302
    (window,) = windows(session)
    assert (window.scope, window.value, window.mode, window.days) == (
        "zone",
        "Radiology",
        "blackout",
        [0, 1, 2, 3, 4],
    )
    assert (window.start_time, window.end_time, window.created_by) == (
        "07:00",
        "19:00",
        "the-admin",
    )
    html = client.get("/schedule").get_data(as_text=True)
    assert "Radiology opening hours" in html and "07:00–19:00" in html
    assert "Zone: Radiology" in html and "No audits during this time" in html

    changed = dict(GOOD, mode="allowed", start_time="22:00", end_time="5:00", days=["sat"])
    assert client.submit(f"/schedule/windows/{window.id}", changed).status_code == 302
    (window,) = windows(session)
    assert (window.mode, window.start_time, window.end_time, window.days) == (
        "allowed",
        "22:00",
        "05:00",
        [5],
    )
    answer = client.submit(
        f"/schedule/windows/{window.id}/delete", {}, page=f"/schedule/windows/{window.id}"
    )
    assert answer.status_code == 302
    (window,) = windows(session)
    assert window.deleted_at is not None and window.deleted_by == "the-admin"  # kept on record
    assert "Radiology opening hours" not in client.get("/schedule").get_data(as_text=True)
    assert client.get(f"/schedule/windows/{window.id}").status_code == 404


@pytest.mark.parametrize(
    ("field", "changes", "message"),
    [
        ("name", {"name": "  "}, "Give the window a name."),
        ("value", {"value": ""}, "Enter the network zone, as written on the assets."),
        ("start_time", {"start_time": "7h"}, "7h is not a time (expected e.g. 07:00 or 19:30)."),
        ("end_time", {"end_time": "24:30"}, "24:30 is not a time (expected e.g. 07:00 or 19:30)."),
        ("end_time", {"end_time": "07:00"}, "The end must differ from the start"),
        ("days", {"days": []}, "Choose at least one day."),
        ("days", {"days": ["mon", "funday"]}, "funday is not a day of the week."),
        ("scope", {"scope": "building"}, "Choose what the window applies to."),
        ("mode", {"mode": "sometimes"}, "Choose whether audits are allowed."),
    ],
)
def test_bad_window_input_is_shown_next_to_its_field_and_changes_nothing(
    client, session, field, changes, message
):
    login(client, session, "admin")
    client.submit("/schedule/windows/new", GOOD)
    before = [(w.id, w.name, w.start_time, w.end_time, w.days) for w in windows(session)]
    (window,) = windows(session)
    for url in ("/schedule/windows/new", f"/schedule/windows/{window.id}"):
        answer = client.submit(url, dict(GOOD, **changes))
        assert answer.status_code == 400
        assert message in _field_errors(answer.get_data(as_text=True), field)
    after = [(w.id, w.name, w.start_time, w.end_time, w.days) for w in windows(session)]
    assert after == before


def test_a_window_form_without_its_csrf_token_is_refused(client, session):
    login(client, session, "admin")
    answer = client.post("/schedule/windows/new", data=GOOD)
    assert answer.status_code == 400
    assert windows(session) == []


def test_the_page_shows_running_overdue_held_and_stale_assets(client, session):
    settings = Settings()
    running = make_asset(session, name="pacs-running")
    make_asset(session, name="modality-held", zone="Radiology")
    make_asset(session, name="nas-waiting")
    stale = make_asset(session, name="viewer-stale", audit_interval="1d")
    done = make_asset(session, name="server-done")
    now = utcnow()
    # One audit done (next due in a week), one running now.
    done_claim = claim_only(session, done.id, now)
    schedule_service.complete(
        session=session,
        claim=done_claim,
        report=reachable_report(),
        worker_id="w-1",
        now=now,
        settings=settings,
        rng=new_random(1),
    )
    claim_only(session, running.id, now)
    # The stale one was created three days ago and never audited successfully.
    session.execute(
        update(AssetSchedule)
        .where(AssetSchedule.asset_id == stale.id)
        .values(created_at=now - timedelta(days=3), next_due_at=now - timedelta(days=3))
    )
    session.commit()
    assert check_stale(session=session, now=now, defaults=settings.assets) == (1, 0)
    # A blackout on Radiology all day, every day.
    login(client, session, "admin")
    client.submit(
        "/schedule/windows/new",
        dict(
            GOOD,
            days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            start_time="00:00",
            end_time="23:59",
        ),
    )
    html = client.get("/schedule").get_data(as_text=True)
    sections = {
        key: text(html.split(f'id="{key}-title"')[1].split("</section>")[0])
        for key in ("running", "overdue", "next", "runs", "stale")
    }
    assert "pacs-running" in sections["running"] and "w-1" in sections["running"]
    assert "modality-held" in sections["overdue"]
    assert "Waiting for its maintenance window" in sections["overdue"]
    assert "nas-waiting" in sections["overdue"] and "A free worker" in sections["overdue"]
    assert "server-done" in sections["next"] and "server-done" in sections["runs"]
    assert "Completed" in sections["runs"]
    assert "viewer-stale" in sections["stale"]
    # The stale asset's row is marked (shown in red) wherever it is listed.
    overdue_rows = html.split('id="overdue-title"')[1].split("</section>")[0]
    stale_row = [r for r in overdue_rows.split("<tr") if "viewer-stale" in r][0]
    assert 'class="row-stale"' in stale_row and "Stale" in stale_row
    assert "No scheduler is running" in html
    held_row = [r for r in overdue_rows.split("<tr") if "modality-held" in r][0]
    assert "row-stale" not in held_row and "A free worker" not in held_row
    assert session.scalar(select(func.count()).select_from(AssetSchedule)) == 5


def test_the_schedule_page_in_french(client, session, compiled_french, french):  # noqa: F811
    user = make_user(session, "admin", username="marie")
    from inventory.services.users import update_user

    update_user(session=session, user_id=user.id, locale="fr")
    client.login("marie", PASSWORD)
    html = client.get("/schedule").get_data(as_text=True)
    assert _french(french, "Maintenance windows") in html
    answer = client.submit("/schedule/windows/new", dict(GOOD, start_time="7h"))
    assert answer.status_code == 400
    expected = _french(
        french, "%(value)s is not a time (expected e.g. 07:00 or 19:30).", value="7h"
    )
    assert expected in _field_errors(answer.get_data(as_text=True), "start_time")
