"""The asset pages: the form with every field, errors next to fields, history, archive, the list."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from inventory import create_app
from inventory.models import Asset, AssetChange
from inventory.services import assets as asset_service
from inventory.settings import load_settings
from tests.conftest import TEST_SECRET, FormClient
from tests.factories import PASSWORD, make_asset, make_user
from tests.html import element, field_errors

pytestmark = pytest.mark.usefixtures("fast_hashing")

FULL = {
    "name": "PACS radiologie",
    "kind": "pacs",
    "addresses": "192.168.10.5\n2001:db8::5",
    "hostnames": "pacs.clinic.local\npacs-backup.clinic.local",
    "mac": "00-1B-63-84-45-E6",
    "site": "Lyon - main clinic",
    "zone": "radiology",
    "owner": "Dr Martin, 04 72 00 00 00",
    "criticality": "critical",
    "holds_patient_data": "y",
    "exposure": "vpn",
    "expected_services": "4242/tcp dicom\n443/tcp https",
    "ae_titles": "PACS_RADIO\nSTORE SCP",
    "software": "cpe:2.3:a:orthanc-server:orthanc:1.12.1",
    "tags": "radiology dicom",
    "audit_interval": "3d",
    "notes": "Behind the VPN since 2024.\nCall before rebooting.",
}
MINIMAL = {
    "name": "Modality CT",
    "kind": "modality",
    "criticality": "medium",
    "exposure": "internal",
}
XSS = "<script>alert(1)</script>"


def login_admin(client: FormClient, session: Session, username: str = "alice") -> None:
    make_user(session, "admin", username=username)
    assert client.login(username, PASSWORD).status_code == 302


def text_of(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def count_assets(engine, *, live_only: bool = False) -> int:
    with Session(engine) as check:
        statement = select(func.count()).select_from(Asset)
        if live_only:
            statement = statement.where(Asset.archived_at.is_(None))
        return check.scalar(statement)


def history(engine, asset_id: int) -> list[AssetChange]:
    with Session(engine) as check:
        return list(asset_service.asset_history(session=check, asset_id=asset_id))


def names_in_list(html: str) -> list[str]:
    """Asset names in the list table, in the order shown."""
    tables = re.findall(r"<tbody>.*?</tbody>", html, re.S)
    return [
        html_lib.unescape(n)
        for body in tables
        for n in re.findall(r'<a [^>]*href="/assets/\d+"[^>]*>([^<]*)</a>', body)
    ]


# --- creating -------------------------------------------------------------------------------


def test_create_with_every_field_and_see_it_all(client, session, engine):
    login_admin(client, session)
    assert client.get("/assets/new").status_code == 200
    response = client.submit("/assets/new", FULL)
    assert response.status_code == 302, field_errors_summary(response)
    page = client.get(response.headers["Location"])
    shown = text_of(page)
    assert "PACS radiologie was added to the inventory." in shown
    for expected in [
        "PACS radiologie",
        "PACS (image archive)",
        "192.168.10.5",
        "2001:db8::5",
        "pacs.clinic.local",
        "pacs-backup.clinic.local",
        "00:1b:63:84:45:e6",
        "Lyon - main clinic",
        "radiology",
        "Dr Martin, 04 72 00 00 00",
        "Critical",
        "Through the VPN",
        "4242/tcp dicom",
        "443/tcp https",
        "PACS_RADIO",
        "STORE SCP",
        "cpe:2.3:a:orthanc-server:orthanc:1.12.1:*:*:*:*:*:*:*",
        "dicom",
        "3d",
        "Behind the VPN since 2024.",
        "Call before rebooting.",
    ]:
        assert expected in shown, expected
    assert "badge-patient" in page.get_data(as_text=True)  # holds patient data
    assert "alice" in element(page.get_data(as_text=True), "history")
    with Session(engine) as check:
        asset = check.scalars(select(Asset)).one()
        data = asset_service.asset_to_data(asset)
    assert (
        data.holds_patient_data is True
        and data.exposure == "vpn"
        and data.audit_interval == 3 * 86400
    )
    assert data.tags == ["dicom", "radiology"]


def field_errors_summary(response) -> str:
    html = response.get_data(as_text=True)
    return "; ".join(re.findall(r'<ul class="errors"[^>]*>(.*?)</ul>', html, re.S))[:500]


def test_create_with_only_a_name(client, session, engine):
    login_admin(client, session)
    response = client.submit(
        "/assets/new",
        {"name": "Printer", "kind": "other", "criticality": "low", "exposure": "internal"},
    )
    assert response.status_code == 302
    assert count_assets(engine) == 1


def test_new_form_offers_known_sites_and_zones(client, session):
    make_asset(session, site="Lyon", zone="radiology")
    login_admin(client, session)
    html = client.get("/assets/new").get_data(as_text=True)
    assert '<option value="Lyon">' in element(html, "site-list")
    assert '<option value="radiology">' in element(html, "zone-list")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "A name is required."),
        ("name", "x" * 201, "Use at most 200 characters."),
        (
            "addresses",
            "192.168.1.0/24",
            "192.168.1.0/24 is a network range, not one machine's address",
        ),
        ("addresses", "192.168.1.300", "192.168.1.300 is not an IP address"),
        ("addresses", "10.0.0.1\n10.0.0.1", "10.0.0.1 is listed twice."),
        ("hostnames", "pacs_server!", "is not a valid host name"),
        ("hostnames", "10.0.0.8", "is an address; put it under Addresses."),
        ("mac", "00:1b:63:84:45", "00:1b:63:84:45 is not a MAC address"),
        ("expected_services", "70000/tcp dicom", "Port 70000 is out of range"),
        ("expected_services", "104/sctp dicom", "Protocol sctp is unknown"),
        ("expected_services", "dicom", "dicom is not a service"),
        ("ae_titles", "PACS\\RADIO", "An AE title cannot contain a backslash"),
        ("ae_titles", "A_VERY_LONG_AE_TITLE", "DICOM allows at most 16 characters."),
        ("software", "cpe:/a:orthanc-server:orthanc:1.12.1", "uses the old CPE 2.2 form"),
        ("software", "orthanc 1.12", "is not a CPE 2.3 name"),
        ("audit_interval", "sometimes", "sometimes is not a duration"),
        ("audit_interval", "1m", "Choose a duration between 15 minutes and 366 days."),
        ("tags", "bad<tag>", "is not a valid tag"),
        ("site", "Lyon\u2028main", "Remove the line breaks and invisible characters."),
        ("kind", "toaster", "Not a valid choice"),
    ],
)
def test_validation_error_next_to_the_field_and_nothing_written(
    client, session, engine, field, value, message
):
    login_admin(client, session)
    response = client.submit("/assets/new", {**FULL, field: value})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in field_errors(html, field), field_errors_summary(response)
    for other in (
        "name",
        "addresses",
        "hostnames",
        "mac",
        "expected_services",
        "ae_titles",
        "software",
        "audit_interval",
        "tags",
        "site",
        "zone",
        "owner",
    ):
        if other != field:
            assert field_errors(html, other) == "", other
    assert 'role="alert"' in html and "Some fields need correcting" in html
    assert count_assets(engine) == 0
    # What the user typed is still there to correct.
    if field != "kind":
        assert value.split("\n")[0] in text_of(response)


def test_a_truncated_mac_is_refused(client, session, engine):
    login_admin(client, session)
    response = client.submit("/assets/new", {**FULL, "mac": "00:1b:63"})
    assert response.status_code == 400
    assert "is not a MAC address" in field_errors(response.get_data(as_text=True), "mac")
    assert count_assets(engine) == 0


def test_several_errors_at_once(client, session, engine):
    login_admin(client, session)
    response = client.submit(
        "/assets/new", {**FULL, "addresses": "not-an-ip", "mac": "nope", "audit_interval": "soon"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert (
        field_errors(html, "addresses")
        and field_errors(html, "mac")
        and field_errors(html, "audit_interval")
    )
    assert count_assets(engine) == 0


def test_error_fields_are_marked_for_screen_readers(client, session):
    login_admin(client, session)
    html = client.submit("/assets/new", {**FULL, "mac": "nope"}).get_data(as_text=True)
    block = element(html, "field-mac")
    assert 'aria-invalid="true"' in block and 'aria-describedby="' in block and "mac-error" in block


def test_duplicate_address_links_to_the_other_asset(client, session, engine):
    other = make_asset(session, name="Old PACS", addresses="192.168.10.5")
    login_admin(client, session)
    response = client.submit("/assets/new", FULL)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    errors = element(html, "field-addresses")
    assert "192.168.10.5 is already the address of Old PACS." in html_lib.unescape(errors)
    assert f'href="/assets/{other.id}"' in errors
    assert count_assets(engine) == 1


def test_duplicate_name_links_to_the_other_asset(client, session, engine):
    other = make_asset(session, name="PACS Radiologie", addresses="10.1.1.1")
    login_admin(client, session)
    response = client.submit("/assets/new", FULL)
    assert response.status_code == 400
    errors = element(response.get_data(as_text=True), "field-name")
    assert "Another asset is already called PACS Radiologie." in html_lib.unescape(errors)
    assert f'href="/assets/{other.id}"' in errors
    assert count_assets(engine) == 1


def test_an_archived_assets_address_is_free_again(client, session, engine):
    old = make_asset(session, name="Old PACS", addresses="192.168.10.5")
    asset_service.archive_asset(session=session, asset_id=old.id, actor="tests")
    login_admin(client, session)
    assert client.submit("/assets/new", FULL).status_code == 302
    assert count_assets(engine, live_only=True) == 1


# --- editing and history --------------------------------------------------------------------


def test_edit_form_is_prefilled(client, session):
    asset = make_asset(
        session,
        **{k: v for k, v in FULL.items() if k != "holds_patient_data"},
        holds_patient_data=True,
    )
    login_admin(client, session)
    html = client.get(f"/assets/{asset.id}/edit").get_data(as_text=True)
    shown = html_lib.unescape(html)
    for value in [
        "PACS radiologie",
        "192.168.10.5\n2001:db8::5",
        "00:1b:63:84:45:e6",
        "3d",
        "443/tcp https\n4242/tcp dicom",
        "Behind the VPN since 2024.",
    ]:
        assert value in shown, value
    assert "checked" in element(html, "field-holds_patient_data")
    assert re.search(r'<option selected value="pacs">|<option value="pacs" selected', html)


def test_edit_records_who_changed_what_with_old_and_new_values(client, session, engine):
    asset = make_asset(session, name="PACS", addresses="10.0.0.5", criticality="medium", tags="old")
    login_admin(client, session, username="bob")
    response = client.submit(
        f"/assets/{asset.id}/edit",
        {
            "name": "PACS",
            "kind": "pacs",
            "addresses": "10.0.0.6",
            "criticality": "high",
            "exposure": "internal",
            "tags": "old new",
        },
    )
    assert response.status_code == 302 and response.headers["Location"].endswith(
        f"/assets/{asset.id}"
    )
    page = client.get(f"/assets/{asset.id}")
    assert "Changes to PACS were saved." in text_of(page)
    timeline = html_lib.unescape(element(page.get_data(as_text=True), "history"))
    assert "bob" in timeline and "changed" in timeline and "tests" in timeline
    row = (
        r'<th scope="row">([^<]+)</th>\s*'
        r'<td class="old[^"]*">([^<]*)</td>\s*<td class="new[^"]*">([^<]*)</td>'
    )
    rows = {name: (old, new) for name, old, new in re.findall(row, timeline)}
    assert rows["Addresses"] == ("10.0.0.5", "10.0.0.6")
    assert rows["Criticality"] == ("Medium", "High")
    assert rows["Kind"] == ("Other", "PACS (image archive)")
    assert rows["Tags"] == ("old", "new; old")
    assert "Name" not in rows  # unchanged fields are not listed
    changes = history(engine, asset.id)
    assert [c.action for c in changes] == ["updated", "created"]
    assert changes[0].actor == "bob"
    assert changes[0].changes["criticality"] == ["medium", "high"]


def test_saving_without_changes_records_nothing(client, session, engine):
    asset = make_asset(session, name="PACS", addresses="10.0.0.5")
    login_admin(client, session)
    form = {
        "name": "PACS",
        "kind": "other",
        "addresses": "10.0.0.5",
        "criticality": "medium",
        "exposure": "internal",
    }
    assert client.submit(f"/assets/{asset.id}/edit", form).status_code == 302
    assert len(history(engine, asset.id)) == 1


def test_edit_with_an_error_changes_nothing(client, session, engine):
    asset = make_asset(session, name="PACS", addresses="10.0.0.5")
    make_asset(session, name="NAS", addresses="10.0.0.7")
    login_admin(client, session)
    response = client.submit(
        f"/assets/{asset.id}/edit",
        {
            "name": "PACS",
            "kind": "pacs",
            "addresses": "10.0.0.7",
            "criticality": "high",
            "exposure": "internal",
        },
    )
    assert response.status_code == 400
    assert "10.0.0.7 is already the address of NAS." in field_errors(
        response.get_data(as_text=True), "addresses"
    )
    with Session(engine) as check:
        stored = asset_service.asset_to_data(check.get(Asset, asset.id))
    assert stored.addresses == ["10.0.0.5"] and stored.criticality == "medium"
    assert len(history(engine, asset.id)) == 1


def test_archived_asset_cannot_be_edited(client, session, engine):
    asset = make_asset(session, name="PACS")
    asset_service.archive_asset(session=session, asset_id=asset.id, actor="tests")
    login_admin(client, session)
    for response in (
        client.get(f"/assets/{asset.id}/edit"),
        client.submit(f"/assets/{asset.id}/edit", {**MINIMAL, "name": "Changed"}, page="/assets"),
    ):
        assert response.status_code == 302
    assert "restore it before editing" in text_of(client.get(f"/assets/{asset.id}"))
    with Session(engine) as check:
        assert check.get(Asset, asset.id).name == "PACS"


# --- archive and restore --------------------------------------------------------------------


def test_archive_asks_for_confirmation_then_keeps_the_history(client, session, engine):
    asset = make_asset(session, name="Old NAS", addresses="10.0.0.9")
    login_admin(client, session)
    confirm = client.get(f"/assets/{asset.id}/archive")
    assert confirm.status_code == 200
    assert "Archive Old NAS?" in text_of(confirm) and 'method="post"' in confirm.get_data(
        as_text=True
    )
    assert count_assets(engine, live_only=True) == 1  # a GET archives nothing

    response = client.submit(f"/assets/{asset.id}/archive")
    assert response.status_code == 302
    listing = client.get("/assets")
    assert "Old NAS was archived. Its history is kept." in text_of(listing)
    assert "Old NAS" not in names_in_list(listing.get_data(as_text=True))
    assert "Old NAS" in names_in_list(client.get("/assets?archived=1").get_data(as_text=True))
    page = client.get(f"/assets/{asset.id}")
    assert page.status_code == 200 and "Archived" in text_of(page)
    assert [c.action for c in history(engine, asset.id)] == ["archived", "created"]
    assert f"/assets/{asset.id}/restore" in page.get_data(as_text=True)

    restored = client.submit(f"/assets/{asset.id}/restore", page=f"/assets/{asset.id}")
    assert restored.status_code == 302
    assert "Old NAS is back in the inventory." in text_of(client.get(f"/assets/{asset.id}"))
    assert "Old NAS" in names_in_list(client.get("/assets").get_data(as_text=True))
    assert [c.action for c in history(engine, asset.id)] == ["restored", "archived", "created"]


def test_restore_refused_when_the_address_is_taken_again(client, session, engine):
    old = make_asset(session, name="Old NAS", addresses="10.0.0.9")
    asset_service.archive_asset(session=session, asset_id=old.id, actor="tests")
    new = make_asset(session, name="New NAS", addresses="10.0.0.9")
    login_admin(client, session)
    response = client.submit(f"/assets/{old.id}/restore", page=f"/assets/{old.id}")
    assert response.status_code == 302
    page = client.get(f"/assets/{old.id}")
    shown = text_of(page)
    assert "This asset cannot be restored" in shown
    assert "10.0.0.9 is already the address of New NAS." in shown
    assert f'href="/assets/{new.id}"' in page.get_data(as_text=True)
    assert count_assets(engine, live_only=True) == 1


# --- the list -------------------------------------------------------------------------------


@pytest.fixture
def inventory(session):
    """A small inventory with something different about each asset."""
    make_asset(
        session,
        name="PACS radiology",
        kind="pacs",
        zone="radiology",
        site="Lyon",
        criticality="critical",
        holds_patient_data=True,
        addresses="192.168.10.5",
        hostnames="pacs.clinic.local",
        tags="dicom imaging",
    )
    make_asset(
        session,
        name="CT scanner",
        kind="modality",
        zone="radiology",
        site="Lyon",
        criticality="high",
        holds_patient_data=True,
        addresses="192.168.10.20",
        tags="dicom",
    )
    make_asset(
        session,
        name="Accounting NAS",
        kind="nas",
        zone="office",
        site="Villeurbanne",
        criticality="low",
        addresses="10.1.0.30",
        hostnames="nas.office.local",
    )
    make_asset(
        session,
        name="Web viewer",
        kind="web-viewer",
        zone="dmz",
        site="Lyon",
        criticality="medium",
        holds_patient_data=True,
        addresses="172.16.0.8",
        tags="imaging",
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["Accounting NAS", "CT scanner", "PACS radiology", "Web viewer"]),
        ("q=pacs", ["PACS radiology"]),
        ("q=192.168.10", ["CT scanner", "PACS radiology"]),
        ("q=nas.office", ["Accounting NAS"]),
        ("q=imaging", ["PACS radiology", "Web viewer"]),
        ("q=PACS+radio", ["PACS radiology"]),
        ("q=nothing-like-this", []),
        ("kind=modality", ["CT scanner"]),
        ("zone=radiology", ["CT scanner", "PACS radiology"]),
        ("site=Villeurbanne", ["Accounting NAS"]),
        ("criticality=critical", ["PACS radiology"]),
        ("patient=yes", ["CT scanner", "PACS radiology", "Web viewer"]),
        ("patient=no", ["Accounting NAS"]),
        ("tag=dicom", ["CT scanner", "PACS radiology"]),
        ("tag=dicom&zone=radiology&q=ct", ["CT scanner"]),
        (
            "sort=criticality&dir=desc",
            ["PACS radiology", "CT scanner", "Web viewer", "Accounting NAS"],
        ),
        ("sort=criticality", ["Accounting NAS", "Web viewer", "CT scanner", "PACS radiology"]),
        ("sort=name&dir=desc", ["Web viewer", "PACS radiology", "CT scanner", "Accounting NAS"]),
        ("sort=zone", ["Web viewer", "Accounting NAS", "CT scanner", "PACS radiology"]),
        ("sort=kind", ["CT scanner", "Accounting NAS", "PACS radiology", "Web viewer"]),
    ],
)
def test_search_filter_and_sort(client, session, inventory, query, expected):
    login_admin(client, session)
    response = client.get(f"/assets?{query}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert names_in_list(html) == expected
    if not expected:
        assert "No asset matches these filters." in text_of(response)


def test_filters_are_kept_in_the_form_and_sort_links(client, session, inventory):
    login_admin(client, session)
    html = client.get(
        "/assets?q=pacs&zone=radiology&kind=pacs&patient=yes&sort=site&dir=desc"
    ).get_data(as_text=True)
    assert 'value="pacs"' in element(html, "q")
    assert re.search(r'<option value="pacs"\s+selected', html)
    assert re.search(r"<option[^>]*selected[^>]*>radiology</option>", html)
    sort_links = re.findall(r'href="(/assets\?[^"]*sort=[^"]*)"', html)
    assert sort_links and all("q=pacs" in link and "zone=radiology" in link for link in sort_links)


@pytest.fixture
def paged_client(engine, database_url, tmp_path, session):
    """An app showing 5 assets a page, with 12 assets in it."""
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
    for n in range(1, 13):
        make_asset(
            session, name=f"asset-{n:02d}", addresses=f"10.0.0.{n}", zone="z" if n % 2 else "y"
        )
    login_admin(client, session)
    return client


def test_pagination(paged_client):
    first = paged_client.get("/assets").get_data(as_text=True)
    assert names_in_list(first) == [f"asset-{n:02d}" for n in range(1, 6)]
    assert "12 assets" in first and "Page 1 of 3" in first
    third = paged_client.get("/assets?page=3").get_data(as_text=True)
    assert names_in_list(third) == ["asset-11", "asset-12"]
    assert 'rel="prev"' in third and 'rel="next"' not in third
    next_link = html_lib.unescape(re.search(r'href="([^"]+)" rel="next"', first).group(1))
    assert names_in_list(paged_client.get(next_link).get_data(as_text=True))[0] == "asset-06"


def test_pagination_keeps_filters_and_sort(paged_client):
    html = paged_client.get("/assets?zone=z&sort=name&dir=desc").get_data(as_text=True)
    assert names_in_list(html) == ["asset-11", "asset-09", "asset-07", "asset-05", "asset-03"]
    next_link = html_lib.unescape(re.search(r'href="([^"]+)" rel="next"', html).group(1))
    assert "zone=z" in next_link and "dir=desc" in next_link
    assert names_in_list(paged_client.get(next_link).get_data(as_text=True)) == ["asset-01"]


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("page=-5", "asset-01"),
        ("page=0", "asset-01"),
        ("page=abc", "asset-01"),
        ("page=1e3", "asset-01"),
        ("page=99999999999", "asset-11"),
        ("page=99999999999999999999999999999999", "asset-11"),
    ],
)
def test_hostile_page_numbers(paged_client, query, first):
    response = paged_client.get(f"/assets?{query}")
    assert response.status_code == 200
    assert names_in_list(response.get_data(as_text=True))[0] == first


HOSTILE = [
    "sort=drop",
    "sort=name;DROP TABLE asset",
    "dir=sideways",
    "kind=<script>alert(1)</script>",
    "criticality=%00",
    "q=%00",
    "zone=%00",
    "site=a%00b",
    "tag=%00",
    "patient=maybe",
    "archived=yes",
    "q=%25",
    "q=_",
    "q=%5C",
    "q=" + "a" * 5000,
    "tag=" + "t" * 500,
    "q=%FF%FE",
    "q=%F0%9F%92%A9",
    "endpoint=x",
    "_scheme=javascript",
    "_external=1",
    "_anchor=x",
    "_method=POST",
    "sort=name&sort=kind",
    "page=1&page=2",
    "q[]=1",
    "zone=" + "%0A" * 3,
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_query_strings_never_break_the_list(client, session, inventory, query):
    login_admin(client, session)
    response = client.get(f"/assets?{query}")
    assert response.status_code == 200, query
    html = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "Something went wrong" not in html
    # Links built from the query string stay plain links to this page.
    for link in re.findall(r'href="([^"]*)"', html):
        assert not re.match(r"\s*(javascript|data|vbscript):", link, re.I), link
        assert not link.startswith("//")


def test_search_treats_wildcards_literally(client, session, inventory):
    make_asset(session, name="100% uptime box", addresses="10.9.9.9")
    login_admin(client, session)
    assert names_in_list(client.get("/assets?q=%25").get_data(as_text=True)) == ["100% uptime box"]
    assert names_in_list(client.get("/assets?q=_").get_data(as_text=True)) == []


def test_empty_inventory_invites_to_add(client, session):
    login_admin(client, session)
    shown = text_of(client.get("/assets"))
    assert "Your inventory is empty" in shown and "/assets/new" in shown


# --- XSS ------------------------------------------------------------------------------------


def test_hostile_text_is_escaped_everywhere(client, session, engine):
    login_admin(client, session)
    created = client.submit(
        "/assets/new",
        {
            **MINIMAL,
            "name": XSS,
            "site": XSS,
            "zone": XSS,
            "owner": XSS,
            "notes": XSS,
            "addresses": "10.6.6.6",
        },
    )
    assert created.status_code == 302
    asset_id = int(created.headers["Location"].rsplit("/", 1)[1])
    pages = {
        "detail (with flash)": client.get(f"/assets/{asset_id}"),
        "list": client.get("/assets"),
        "search": client.get(
            "/assets", query_string={"q": XSS, "zone": XSS, "site": XSS, "tag": XSS}
        ),
        "filtered": client.get("/assets", query_string={"zone": XSS}),
        "edit": client.get(f"/assets/{asset_id}/edit"),
        "archive": client.get(f"/assets/{asset_id}/archive"),
        "new (datalists)": client.get("/assets/new"),
        "duplicate name error": client.submit("/assets/new", {**MINIMAL, "name": XSS}),
        "bad address error": client.submit(
            "/assets/new", {**MINIMAL, "name": "x", "addresses": XSS}
        ),
    }
    edited = client.submit(
        f"/assets/{asset_id}/edit",
        {**MINIMAL, "name": XSS + "2", "addresses": "10.6.6.6", "site": XSS},
    )
    assert edited.status_code == 302
    pages["history"] = client.get(f"/assets/{asset_id}")
    for where, response in pages.items():
        html = response.get_data(as_text=True)
        assert "<script>" not in html, where
        assert "&lt;script&gt;" in html, where
    assert names_in_list(pages["filtered"].get_data(as_text=True)) == [XSS]


def test_expired_form_token_says_so_instead_of_blaming_fields(client, session):
    from tests.factories import PASSWORD, make_user

    make_user(session, "admin", username="expiry")
    client.login("expiry", PASSWORD)
    response = client.post("/assets/new", data={"name": "x", "csrf_token": "stale"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "This form has expired" in html
    assert "Some fields need correcting" not in html


def test_asset_page_shows_the_default_interval_it_will_get(client, session):
    login_admin(client, session, username="interval")
    critical = make_asset(session, criticality="critical")
    weekly = make_asset(session, criticality="low", audit_interval="12h")
    assert "1d (the default for its criticality)" in text_of(client.get(f"/assets/{critical.id}"))
    page = text_of(client.get(f"/assets/{weekly.id}"))
    assert "12h" in page and "the default for its criticality" not in page


def test_optional_checks_are_off_by_default_and_can_be_turned_on(client, session, engine):
    login_admin(client, session)
    form = client.get("/assets/new").get_data(as_text=True)
    boxes = re.findall(r'<input[^>]*name="optional_checks"[^>]*>', form)
    assert len(boxes) == 2 and not any("checked" in b for b in boxes)
    response = client.submit("/assets/new", MINIMAL)
    with Session(engine) as check:
        assert check.scalars(select(Asset)).one().optional_checks == []
    assert "None (off by default)" in text_of(client.get(response.headers["Location"]))
    asset_id = response.headers["Location"].rstrip("/").split("/")[-1]
    response = client.submit(
        f"/assets/{asset_id}/edit", {**MINIMAL, "optional_checks": ["ae-title-guessing"]}
    )
    assert response.status_code == 302, field_errors_summary(response)
    shown = text_of(client.get(response.headers["Location"]))
    assert "Guess common called AE titles" in shown
    with Session(engine) as check:
        assert check.scalars(select(Asset)).one().optional_checks == ["ae-title-guessing"]


def test_an_unknown_optional_check_is_refused_and_nothing_changes(client, session, engine):
    login_admin(client, session)
    response = client.submit("/assets/new", {**MINIMAL, "optional_checks": ["brute-force"]})
    assert response.status_code == 400
    shown = field_errors(response.get_data(as_text=True), "optional_checks")
    assert "brute-force is not one of: default-credentials, ae-title-guessing." in shown
    assert count_assets(engine) == 0
