"""/api/v1/reports: list, one report with its deliveries, its content in each format, and
running a schedule now (auditors); errors as JSON. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

import pytest

from inventory.services import report_schedules as schedule_service
from tests.factories import make_asset
from tests.test_api_findings import auth

pytestmark = pytest.mark.usefixtures("fast_hashing")


def test_reports_through_the_api(client, session, settings):
    make_asset(session, name="PACS", kind="pacs")
    data = schedule_service.validate_schedule(
        {
            "name": "Weekly",
            "scope": "kind",
            "scope_value": "pacs",
            "cron": "0 7 * * mon",
            "formats": ["pdf"],
            "language": "en",
            "recipients": "dpo@clinic.example",
        },
        languages=["en", "fr"],
    )
    schedule = schedule_service.create_schedule(
        session=session, data=data, actor="t", settings=settings
    )
    viewer, auditor = auth(session, "viewer"), auth(session, "auditor")
    assert (
        client.post(f"/api/v1/report-schedules/{schedule.id}/run", headers=viewer).status_code
        == 403
    )
    made = client.post(f"/api/v1/report-schedules/{schedule.id}/run", headers=auditor)
    assert made.status_code == 201
    body = made.get_json()
    assert body["schedule"] == {"id": schedule.id, "name": "Weekly"}
    assert body["totals"]["assets"] == 1 and body["trigger"] == "api"
    (delivery,) = body["deliveries"]
    assert delivery["status"] == "failed" and "no SMTP server" in delivery["last_error"]
    listed = client.get("/api/v1/reports", headers=viewer).get_json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == body["id"]
    content = client.get(f"/api/v1/reports/{body['id']}/json", headers=viewer)
    assert hashlib.sha256(content.data).hexdigest() == body["sha256"]
    assert client.get(f"/api/v1/reports/{body['id']}/pdf", headers=viewer).data.startswith(b"%PDF")
    missing = client.get("/api/v1/reports/4242", headers=viewer)
    assert missing.status_code == 404 and missing.get_json()["code"] == "not_found"
    assert client.get(f"/api/v1/reports/{body['id']}/docx", headers=viewer).status_code == 404
    assert client.get("/api/v1/reports").status_code == 401
