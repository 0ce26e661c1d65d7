"""The Reports pages: schedules (admins change them, auditors run them, viewers read), the form's
checks in English and French (bad input changes nothing), past reports and their downloads,
deliveries with their status and a retry. SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from inventory.models import Report, ReportDelivery, ReportSchedule
from tests.factories import make_asset
from tests.reports.helpers import report_settings
from tests.test_i18n import _field_errors, _french, compiled_french, french  # noqa: F401
from tests.test_schedule_web import login

pytestmark = pytest.mark.usefixtures("fast_hashing")

GOOD = {
    "name": "Weekly re-audit",
    "scope": "site",
    "scope_value": "Lyon",
    "cron": "0 7 * * mon",
    "formats": ["pdf", "csv"],
    "language": "fr",
    "recipients": "dpo@clinic.example, it@clinic.example",
    "folder": "weekly",
    "enabled": "y",
}


def count(session, model) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_an_admin_adds_a_schedule_and_sees_it(client, session):
    login(client, session, "admin")
    answer = client.submit("/reports/schedules/new", GOOD)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    (schedule,) = session.scalars(select(ReportSchedule)).all()
    assert schedule.scope == "site" and schedule.scope_value == "Lyon"
    assert schedule.recipients == ["dpo@clinic.example", "it@clinic.example"]
    assert schedule.formats == ["pdf", "csv"] and schedule.next_run_at is not None
    assert schedule.next_run_at.weekday() == 0 and schedule.next_run_at.hour == 7  # UTC here
    page = client.get("/reports").get_data(as_text=True)
    assert "Weekly re-audit" in page and "every Monday at 07:00" in page
    assert "dpo@clinic.example" in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cron", "every monday", "Write five fields: minute hour day month weekday"),
        ("cron", "0 25 * * *", "25 is out of range for the hour (0 to 23)."),
        ("cron", "0 7 * * funday", "funday is not a valid weekday."),
        (
            "recipients",
            "dpo@clinic.example, not-an-address",
            "not-an-address is not an e-mail address.",
        ),
        ("recipients", "a@b.example\nBcc: x@evil.example", "Bcc: is not an e-mail address."),
        ("scope_value", "", "Enter the site, as written on the assets."),
        ("folder", "../etc", "Write a folder name inside the reports folder"),
        ("name", "", "Give the schedule a name."),
    ],
)
def test_bad_input_is_explained_and_changes_nothing(client, session, field, value, message):
    login(client, session, "admin")
    answer = client.submit("/reports/schedules/new", {**GOOD, field: value})
    assert answer.status_code == 400
    assert message in _field_errors(answer.get_data(as_text=True), field)
    assert count(session, ReportSchedule) == 0


def test_a_bad_kind_and_no_format(client, session):
    login(client, session, "admin")
    data = {**GOOD, "scope": "kind", "scope_value": "toaster"}
    data.pop("formats")
    answer = client.submit("/reports/schedules/new", data)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "toaster is not a kind of asset" in _field_errors(page, "scope_value")
    assert "Choose at least one format." in _field_errors(page, "formats")
    assert count(session, ReportSchedule) == 0


def test_the_form_in_french(client, session, compiled_french, french):  # noqa: F811
    from inventory.services.users import update_user
    from tests.factories import PASSWORD, make_user

    user = make_user(session, "admin", username="marie")
    update_user(session=session, user_id=user.id, locale="fr")
    client.login("marie", PASSWORD)
    data = {**GOOD, "cron": "0 25 * * *", "recipients": "pas-une-adresse", "scope_value": ""}
    answer = client.submit("/reports/schedules/new", data)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert _french(
        french,
        "%(value)s is out of range for the %(field)s (%(low)d to %(high)d).",
        value="25",
        field="heure",
        low=0,
        high=23,
    ) in _field_errors(page, "cron")
    assert _french(french, "%(value)s is not an e-mail address.", value="pas-une-adresse") in (
        _field_errors(page, "recipients")
    )
    assert _french(french, "Enter the site, as written on the assets.") in _field_errors(
        page, "scope_value"
    )
    assert count(session, ReportSchedule) == 0


def test_roles(client, session):
    login(client, session, "viewer")
    assert client.get("/reports").status_code == 200
    assert client.get("/reports/schedules/new").status_code == 403


def test_run_now_makes_a_report_and_shows_failed_deliveries(client, session, app):
    settings = app.extensions["inventory.settings"]
    make_asset(session, name="PACS <script>x</script>", site="Lyon", kind="pacs")
    login(client, session, "admin")
    assert client.submit("/reports/schedules/new", GOOD).status_code == 302
    schedule = session.scalars(select(ReportSchedule)).one()
    answer = client.submit(f"/reports/schedules/{schedule.id}/run", {}, page="/reports")
    assert answer.status_code == 302
    report = session.scalars(select(Report)).one()
    assert answer.headers["Location"].endswith(f"/reports/{report.id}")
    page = client.get(f"/reports/{report.id}").get_data(as_text=True)
    # No SMTP server is configured: both mails failed and say why; the folder got its files.
    assert page.count("no SMTP server is configured") == 2
    assert "Retry now" in page
    folder = settings.var_dir / "reports" / "weekly"
    assert sorted(p.suffix for p in folder.iterdir()) == [".csv", ".pdf"]
    statuses = sorted(d.status for d in session.scalars(select(ReportDelivery)))
    assert statuses == ["failed", "failed", "sent"]
    listing = client.get("/reports").get_data(as_text=True)
    assert "2 failed" in listing and "1 sent" in listing

    # Downloads: each format; the HTML inline with a policy that allows no script at all.
    html = client.get(f"/reports/{report.id}/report.html?inline=1")
    assert html.status_code == 200 and html.headers["Content-Disposition"].startswith("inline")
    assert "script-src" not in html.headers["Content-Security-Policy"]
    assert "default-src 'none'" in html.headers["Content-Security-Policy"]
    body = html.get_data(as_text=True)
    assert "<script>" not in body and "PACS &lt;script&gt;x&lt;/script&gt;" in body
    pdf = client.get(f"/reports/{report.id}/report.pdf")
    assert pdf.data.startswith(b"%PDF") and pdf.headers["Content-Disposition"].startswith(
        "attachment"
    )
    assert client.get(f"/reports/{report.id}/report.exe").status_code == 404
    assert client.get("/reports/999999/report.pdf").status_code == 404


def test_retry_after_configuring_the_folder(client, session, app, tmp_path):
    login(client, session, "admin")
    assert client.submit("/reports/schedules/new", {**GOOD, "recipients": ""}).status_code == 302
    schedule = session.scalars(select(ReportSchedule)).one()
    # The reports folder cannot be written (a file stands where the folder should be).
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    settings = app.extensions["inventory.settings"]
    app.extensions["inventory.settings"] = report_settings(settings, folder=str(blocked))
    client.submit(f"/reports/schedules/{schedule.id}/run", {}, page="/reports")
    delivery = session.scalars(select(ReportDelivery)).one()
    assert delivery.status == "failed" and "cannot write into" in delivery.last_error
    page = client.get(f"/reports/{delivery.report_id}").get_data(as_text=True)
    assert "cannot write into" in page
    # Fixed: the retry button delivers at once.
    app.extensions["inventory.settings"] = report_settings(settings, folder=str(tmp_path / "ok"))
    answer = client.submit(
        f"/reports/deliveries/{delivery.id}/retry", {}, page=f"/reports/{delivery.report_id}"
    )
    assert answer.status_code == 302
    session.refresh(delivery)
    assert delivery.status == "sent" and delivery.attempts == 2
    assert (tmp_path / "ok" / "weekly").is_dir()
    # Sending it again is refused with a message, not a second copy.
    client.submit(
        f"/reports/deliveries/{delivery.id}/retry", {}, page=f"/reports/{delivery.report_id}"
    )
    session.refresh(delivery)
    assert delivery.attempts == 2


def test_config_schedules_are_read_only(client, session, app):
    from inventory.settings import ReportScheduleSettings

    entry = ReportScheduleSettings(name="From config", cron="0 6 1 * *", scope="zone:radiology")
    app.extensions["inventory.settings"] = report_settings(
        app.extensions["inventory.settings"], schedules=[entry]
    )
    login(client, session, "admin")
    page = client.get("/reports").get_data(as_text=True)
    assert "From config" in page and "config file" in page
    schedule = session.scalars(select(ReportSchedule)).one()
    assert schedule.source == "config" and schedule.scope_value == "radiology"
    assert re.search(r"on day 1 of every month at 06:00", page)
    answer = client.get(f"/reports/schedules/{schedule.id}")
    assert answer.status_code == 302
    answer = client.submit(f"/reports/schedules/{schedule.id}/delete", {}, page="/reports")
    session.refresh(schedule)
    assert schedule.deleted_at is None
