"""Import in the UI (upload, preview, confirm; every bad row listed; all or nothing) and export."""

from __future__ import annotations

import csv
import html as html_lib
import io
import json
import re

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from inventory.models import Asset, AssetChange
from inventory.services import assets as asset_service
from inventory.services.transfer import COLUMNS
from tests.conftest import FormClient
from tests.factories import PASSWORD, make_asset, make_user

pytestmark = pytest.mark.usefixtures("fast_hashing")

GOOD_CSV = (
    "name,addresses,kind,criticality,holds_patient_data,expected_services,tags,audit_interval\n"
    "PACS radiology,192.168.10.5,pacs,critical,yes,4242/tcp dicom; 443/tcp https,"
    "dicom imaging,24h\n"
    "Accounting NAS,10.1.0.30,nas,low,no,445/tcp smb,office,7d\n"
)
BAD_CSV = (
    "name,addresses,kind,audit_interval\n"
    "Good one,10.0.0.1,pacs,7d\n"
    "Bad address,10.0.0.300,nas,\n"
    "Bad kind and interval,10.0.0.3,toaster,soon\n"
    "Also good,10.0.0.4,server,\n"
    ",10.0.0.5,server,\n"
)


def login_admin(client: FormClient, session: Session) -> None:
    make_user(session, "admin", username="alice")
    assert client.login("alice", PASSWORD).status_code == 302


def upload(client: FormClient, content: bytes | str, filename: str = "assets.csv"):
    data = content.encode() if isinstance(content, str) else content
    return client.submit(
        "/assets/import", {"file": (io.BytesIO(data), filename)}, page="/assets/import"
    )


def confirm(client: FormClient, token: str):
    return client.submit("/assets/import/confirm", {"token": token}, page="/assets/import")


def token_of(response) -> str:
    found = re.search(r'name="token" value="([^"]+)"', response.get_data(as_text=True))
    assert found, "no confirmation form on the preview"
    return found.group(1)


def problems(response) -> list[tuple[int, str, str]]:
    """(line, column, reason) for each row of the problems table."""
    html = response.get_data(as_text=True)
    rows = re.findall(
        r"<tr>\s*<td[^>]*>(\d+)</td>\s*<td[^>]*>(.*?)</td>\s*<td[^>]*>(.*?)</td>\s*</tr>",
        html,
        re.S,
    )
    return [
        (int(line), html_lib.unescape(column), html_lib.unescape(re.sub(r"<[^>]+>", "", reason)))
        for line, column, reason in rows
    ]


def shown(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def asset_count(engine) -> int:
    with Session(engine) as check:
        return check.scalar(select(func.count()).select_from(Asset))


def live_names(engine) -> list[str]:
    with Session(engine) as check:
        return sorted(
            a.name for a in check.scalars(select(Asset).where(Asset.archived_at.is_(None)))
        )


# --- upload and preview ---------------------------------------------------------------------


def test_import_page(client, session):
    login_admin(client, session)
    response = client.get("/assets/import")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'type="file"' in html and 'enctype="multipart/form-data"' in html


def test_every_bad_row_is_listed_and_nothing_is_written(client, session, engine):
    login_admin(client, session)
    response = upload(client, BAD_CSV, "bad.csv")
    assert response.status_code == 400
    found = problems(response)
    lines = {line for line, _, _ in found}
    assert lines == {3, 4, 6}, found
    assert any(
        line == 3 and col == "addresses" and "10.0.0.300 is not an IP address" in why
        for line, col, why in found
    )
    assert any(
        line == 4 and col == "kind" and "toaster is not one of" in why for line, col, why in found
    )
    assert any(
        line == 4 and col == "audit_interval" and "soon is not a duration" in why
        for line, col, why in found
    )
    assert any(
        line == 6 and col == "name" and "A name is required." in why for line, col, why in found
    )
    assert "4 problems in bad.csv: nothing was imported" in shown(response)
    assert 'name="token"' not in response.get_data(as_text=True)  # nothing to confirm
    assert asset_count(engine) == 0


def test_good_file_is_previewed_then_written_on_confirm(client, session, engine):
    login_admin(client, session)
    preview = upload(client, GOOD_CSV, "clinic.csv")
    assert preview.status_code == 200
    text = shown(preview)
    assert "Preview of clinic.csv" in text
    assert "PACS radiology" in text and "Accounting NAS" in text and "192.168.10.5" in text
    assert "2 new assets and 0 existing ones" in text
    assert asset_count(engine) == 0  # nothing until confirmed

    done = confirm(client, token_of(preview))
    assert done.status_code == 302 and done.headers["Location"].endswith("/assets")
    assert "Import done: 2 added, 0 updated, 0 unchanged." in shown(client.get("/assets"))
    assert live_names(engine) == ["Accounting NAS", "PACS radiology"]
    with Session(engine) as check:
        pacs = check.scalars(select(Asset).where(Asset.name == "PACS radiology")).one()
        data = asset_service.asset_to_data(pacs)
        changes = check.scalars(select(AssetChange).where(AssetChange.asset_id == pacs.id)).all()
    assert (
        data.criticality == "critical" and data.holds_patient_data and data.audit_interval == 86400
    )
    assert data.expected_services == ["443/tcp https", "4242/tcp dicom"]
    assert [(c.actor, c.action, c.source) for c in changes] == [("alice", "created", "import")]


def test_confirm_twice_imports_once(client, session, engine):
    login_admin(client, session)
    token = token_of(upload(client, GOOD_CSV))
    assert confirm(client, token).status_code == 302
    again = confirm(client, token)
    assert again.status_code == 302 and again.headers["Location"].endswith("/assets/import")
    assert "This import preview has expired. Upload the file again." in shown(
        client.get("/assets/import")
    )
    assert asset_count(engine) == 2


def test_forged_token_writes_nothing(client, session, engine):
    login_admin(client, session)
    upload(client, GOOD_CSV)
    response = confirm(client, "forged-token")
    assert response.status_code == 302
    assert "This import preview has expired. Upload the file again." in shown(
        client.get("/assets/import")
    )
    assert asset_count(engine) == 0


def test_token_from_another_session_writes_nothing(app, client, session, engine):
    login_admin(client, session)
    token = token_of(upload(client, GOOD_CSV))
    app.test_client_class = FormClient
    other = app.test_client()
    make_user(session, "admin", username="bob")
    other.login("bob", PASSWORD)
    response = confirm(other, token)
    assert response.status_code == 302
    assert "This import preview has expired." in shown(other.get("/assets/import"))
    assert asset_count(engine) == 0


def test_expired_upload_writes_nothing(client, session, engine, settings):
    login_admin(client, session)
    token = token_of(upload(client, GOOD_CSV))
    for stored in (settings.var_dir / "uploads").glob("*"):
        stored.unlink()  # what the hourly clean-up does to an abandoned preview
    response = confirm(client, token)
    assert response.status_code == 302
    assert "This import preview has expired. Upload the file again." in shown(
        client.get("/assets/import")
    )
    assert asset_count(engine) == 0


def test_confirm_rechecks_what_changed_since_the_preview(client, session, engine):
    login_admin(client, session)
    token = token_of(upload(client, GOOD_CSV))
    other = make_asset(session, name="Someone else", addresses="192.168.10.5")
    response = confirm(client, token)
    assert response.status_code == 400
    found = problems(response)
    assert [(line, col) for line, col, _ in found] == [(2, "addresses")]
    assert "192.168.10.5 is already the address of Someone else." in found[0][2]
    assert f'href="/assets/{other.id}"' in response.get_data(as_text=True)
    assert live_names(engine) == ["Someone else"]


def test_rows_matching_a_name_update_that_asset(client, session, engine):
    pacs = make_asset(
        session, name="PACS radiology", addresses="192.168.10.5", criticality="medium"
    )
    login_admin(client, session)
    preview = upload(client, GOOD_CSV)
    assert "1 new assets and 1 existing ones" in shown(preview)
    assert re.search(r"PACS radiology.*?update", shown(preview), re.S)
    assert confirm(client, token_of(preview)).status_code == 302
    assert "1 added, 1 updated, 0 unchanged" in shown(client.get("/assets"))
    with Session(engine) as check:
        assert check.get(Asset, pacs.id).criticality == "critical"
    history = asset_service.asset_history(session=Session(engine), asset_id=pacs.id)
    assert [(c.action, c.source) for c in history] == [("updated", "import"), ("created", "web")]


def test_address_of_another_asset_is_refused_with_a_link(client, session, engine):
    other = make_asset(session, name="Old PACS", addresses="192.168.10.5")
    login_admin(client, session)
    response = upload(client, GOOD_CSV)
    assert response.status_code == 400
    assert [(line, col) for line, col, _ in problems(response)] == [(2, "addresses")]
    assert f'href="/assets/{other.id}"' in response.get_data(as_text=True)
    assert asset_count(engine) == 1


def test_duplicates_inside_the_file(client, session, engine):
    login_admin(client, session)
    response = upload(client, "name,addresses\nA,10.0.0.1\nB,10.0.0.1\na,10.0.0.2\n")
    assert response.status_code == 400
    found = problems(response)
    assert any(line == 3 and "10.0.0.1 is also on line 2." in why for line, _, why in found)
    assert any(line == 4 and "a is already on line 2." in why for line, _, why in found)
    assert asset_count(engine) == 0


def test_json_upload(client, session, engine):
    login_admin(client, session)
    document = {
        "format": "vigie-assets",
        "version": 1,
        "assets": [
            {
                "name": "Web viewer",
                "addresses": ["172.16.0.8"],
                "kind": "web-viewer",
                "exposure": "public",
                "holds_patient_data": True,
                "expected_services": ["443/tcp https"],
                "tags": ["imaging"],
            },
            {
                "name": "Orthanc",
                "addresses": "10.2.0.1",
                "software": ["cpe:2.3:a:orthanc-server:orthanc:1.12.1"],
            },
        ],
    }
    preview = upload(client, json.dumps(document), "assets.json")
    assert preview.status_code == 200
    assert "Web viewer" in shown(preview) and "Orthanc" in shown(preview)
    assert confirm(client, token_of(preview)).status_code == 302
    assert live_names(engine) == ["Orthanc", "Web viewer"]


def test_json_with_bad_items(client, session, engine):
    login_admin(client, session)
    document = {
        "assets": [
            {"name": "Fine", "addresses": "10.0.0.1"},
            "not an object",
            {"name": "Colour", "colour": "blue"},
            {"name": 5, "addresses": {"ip": "10.0.0.4"}, "notes": ["a"]},
            {"name": "Bad", "audit_interval": True},
        ]
    }
    response = upload(client, json.dumps(document), "assets.json")
    assert response.status_code == 400
    found = problems(response)
    assert {line for line, _, _ in found} == {2, 3, 4, 5}, found
    assert any(line == 2 and "Each asset must be an object" in why for line, _, why in found)
    assert any(line == 3 and "Unknown fields: colour." in why for line, _, why in found)
    assert any(line == 4 and col == "name" for line, col, _ in found)
    assert asset_count(engine) == 0


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (b"", "empty.csv", "The file is empty."),
        (b"   \n\n", "blank.csv", "The file is empty."),
        (b"name,addresses\n", "header-only.csv", "The file has no assets."),
        (b"name,colour\nPACS,blue\n", "colour.csv", "Unknown column colour"),
        (b"addresses\n10.0.0.1\n", "no-name.csv", "The file needs a name column."),
        (b"name,name\nA,B\n", "twice.csv", "Column name appears twice."),
        (
            b"name,addresses\nA,10.0.0.1,extra\n",
            "cells.csv",
            "This row has 3 cells; the header has 2.",
        ),
        (b'name,addresses\n"A,10.0.0.1\n', "quote.csv", ""),
        (b"{not json", "broken.json", "The file is not valid JSON"),
        (b'{"assets": 5}', "shape.json", "Expected a list of assets"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x81\x8d\x8f\x90\x9d\xff\xfe" * 20, "photo.csv", ""),
        (bytes(range(256)) * 8, "garbage.bin", ""),
        (b"\x00" * 1000, "zeros.csv", ""),
    ],
)
def test_unusable_files_get_a_message_and_change_nothing(
    client, session, engine, content, filename, message
):
    make_asset(session, name="Existing", addresses="10.0.0.200")
    login_admin(client, session)
    response = upload(client, content, filename)
    assert response.status_code == 400
    text = shown(response)
    assert "Something went wrong" not in text
    assert problems(response), "the reason is listed"
    assert message in text
    assert 'name="token"' not in response.get_data(as_text=True)
    assert asset_count(engine) == 1


def test_upload_without_a_file(client, session):
    login_admin(client, session)
    response = client.submit("/assets/import", {}, page="/assets/import")
    assert response.status_code == 400
    assert "Choose a file to import." in shown(response)


def test_french_spreadsheet_csv(client, session, engine):
    """Semicolons and Windows-1252, as Excel saves "CSV (point-virgule)" on a French PC."""
    login_admin(client, session)
    content = "name;addresses;site\nÉchographe;10.3.0.1;Hôpital Nord\n".encode("cp1252")
    preview = upload(client, content, "export-excel.csv")
    assert preview.status_code == 200 and "Échographe" in shown(preview)
    assert confirm(client, token_of(preview)).status_code == 302
    with Session(engine) as check:
        assert check.scalars(select(Asset.site)).one() == "Hôpital Nord"


def test_hostile_names_in_a_file_are_escaped(client, session):
    login_admin(client, session)
    preview = upload(
        client, 'name,addresses\n"<script>alert(1)</script>",10.0.0.1\n', "<b>x</b>.csv"
    )
    bad = upload(
        client, 'name,addresses\n"<script>alert(1)</script>","<img src=x onerror=alert(1)>"\n'
    )
    for response in (preview, bad):
        html = response.get_data(as_text=True)
        assert (
            "<script>alert(1)</script>" not in html
            and "<img src=x" not in html
            and "<b>x</b>" not in html
        )


# --- export ---------------------------------------------------------------------------------


@pytest.fixture
def stocked(session):
    """Assets using every field, one archived."""
    make_asset(
        session,
        name="PACS radiologie",
        kind="pacs",
        addresses="192.168.10.5; 2001:db8::5",
        hostnames="pacs.clinic.local",
        mac="00:1b:63:84:45:e6",
        site="Lyon",
        zone="radiology",
        owner="Dr Martin",
        criticality="critical",
        holds_patient_data=True,
        exposure="vpn",
        expected_services="4242/tcp dicom; 443/tcp https",
        ae_titles="PACS_RADIO; STORE SCP",
        software="cpe:2.3:a:orthanc-server:orthanc:1.12.1",
        tags="dicom imaging",
        audit_interval="36h",
        notes='Line one, with "quotes";\nline two',
    )
    make_asset(
        session, name="Échographe", kind="modality", addresses="10.3.0.1", site="Hôpital Nord"
    )
    old = make_asset(session, name="Old NAS", addresses="10.9.0.1")
    asset_service.archive_asset(session=session, asset_id=old.id, actor="tests")


def test_csv_export(client, session, stocked):
    make_user(session, "viewer", username="vera")
    client.login("vera", PASSWORD)
    response = client.get("/assets/export.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="vigie-assets-\d{8}\.csv"', response.headers["Content-Disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert list(rows[0]) == list(COLUMNS)
    assert sorted(r["name"] for r in rows) == [
        "PACS radiologie",
        "Échographe",
    ]  # not the archived one
    pacs = next(r for r in rows if r["name"] == "PACS radiologie")
    assert pacs["addresses"] == "192.168.10.5; 2001:db8::5"
    assert pacs["holds_patient_data"] == "yes" and pacs["audit_interval"] == "36h"
    assert pacs["notes"] == 'Line one, with "quotes";\nline two'


def test_json_export(client, session, stocked):
    make_user(session, "viewer", username="vera")
    client.login("vera", PASSWORD)
    response = client.get("/assets/export.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="vigie-assets-\d{8}\.json"', response.headers["Content-Disposition"]
    )
    document = json.loads(response.get_data(as_text=True))
    assert document["format"] == "vigie-assets"
    by_name = {a["name"]: a for a in document["assets"]}
    assert sorted(by_name) == ["PACS radiologie", "Échographe"]
    assert by_name["PACS radiologie"]["ae_titles"] == ["PACS_RADIO", "STORE SCP"]
    assert by_name["PACS radiologie"]["holds_patient_data"] is True


def test_export_of_an_empty_inventory(client, session):
    login_admin(client, session)
    assert client.get("/assets/export.csv").get_data(as_text=True).strip() == ",".join(COLUMNS)
    assert json.loads(client.get("/assets/export.json").get_data(as_text=True))["assets"] == []


def test_a_download_leaves_no_database_connection_open(client, session, engine, stocked):
    login_admin(client, session)
    for fmt in ("csv", "json"):
        assert "PACS radiologie" in client.get(f"/assets/export.{fmt}").get_data(as_text=True)
        assert engine.pool.checkedout() == 0
        abandoned = client.get(f"/assets/export.{fmt}")  # the browser goes away mid-download
        abandoned.close()
        assert engine.pool.checkedout() == 0


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_then_import_round_trips(client, session, engine, stocked, fmt):
    login_admin(client, session)
    first = client.get(f"/assets/export.{fmt}").get_data()

    # Into the same inventory: every row matches and nothing changes.
    preview = upload(client, first, f"export.{fmt}")
    assert preview.status_code == 200, problems(preview)
    assert "0 new assets and 2 existing ones" in shown(preview)
    confirm(client, token_of(preview))
    assert "Import done: 0 added, 0 updated, 2 unchanged." in shown(client.get("/assets"))

    # Into an inventory without them: the same export comes back out.
    with Session(engine) as other:
        for asset in other.scalars(select(Asset).where(Asset.archived_at.is_(None))).all():
            asset_service.archive_asset(session=other, asset_id=asset.id, actor="tests")
    preview = upload(client, first, f"export.{fmt}")
    assert "2 new assets and 0 existing ones" in shown(preview)
    confirm(client, token_of(preview))
    assert client.get(f"/assets/export.{fmt}").get_data() == first
