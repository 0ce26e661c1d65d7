"""Asset rules: create, edit, archive and restore with history; clashes; the list query.

Every test runs on SQLite and on PostgreSQL (the `session` fixture is parametrized).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from inventory.errors import Conflict, InvalidInput, NotFound
from inventory.models import Asset, AssetAddress, AssetChange
from inventory.services import assets as svc
from tests.factories import make_asset


def data(**fields):
    return svc.validate_asset(fields)


def history(session: Session, asset_id: int) -> list[AssetChange]:
    return list(svc.asset_history(session=session, asset_id=asset_id))


# --- create, update, archive, restore -------------------------------------------------------


def test_create_stores_normalised_fields(session):
    asset = svc.create_asset(
        session=session,
        data=data(
            name=" PACS radiologie ",
            addresses="::ffff:192.168.10.5 2001:DB8::5",
            hostnames="PACS.clinic.local",
            mac="00-1B-63-84-45-E6",
            kind="PACS",
            criticality="high",
            holds_patient_data="oui",
            exposure="vpn",
            expected_services="4242/tcp dicom; 443/tcp https",
            ae_titles="STORE SCP",
            software="cpe:2.3:a:orthanc-server:orthanc:1.12.1",
            tags="Radiology pacs",
            audit_interval="1d",
            notes="rack B\r\nshelf 2",
        ),
        actor="alice",
    )
    session.expunge_all()
    stored = session.get(Asset, asset.id)
    record = svc.data_to_record(svc.asset_to_data(stored))
    assert record == {
        "name": "PACS radiologie",
        "kind": "pacs",
        "site": "",
        "zone": "",
        "owner": "",
        "criticality": "high",
        "holds_patient_data": True,
        "exposure": "vpn",
        "mac": "00:1b:63:84:45:e6",
        "notes": "rack B\nshelf 2",
        "audit_interval": "1d",
        "addresses": ["192.168.10.5", "2001:db8::5"],
        "hostnames": ["pacs.clinic.local"],
        "expected_services": ["443/tcp https", "4242/tcp dicom"],
        "ae_titles": ["STORE SCP"],
        "software": ["cpe:2.3:a:orthanc-server:orthanc:1.12.1:*:*:*:*:*:*:*"],
        "tags": ["pacs", "radiology"],
        "optional_checks": [],
    }
    assert stored.name_key == "pacs radiologie"
    assert stored.created_at.tzinfo is not None and stored.archived_at is None


def test_create_records_who_when_and_initial_values(session):
    before = datetime.now(UTC)
    asset = make_asset(session, actor="alice", name="Echo 1", addresses="10.1.0.1", site="Lyon")
    after = datetime.now(UTC)
    session.expunge_all()
    [entry] = history(session, asset.id)
    assert entry.action == "created" and entry.actor == "alice" and entry.source == "web"
    assert before - timedelta(seconds=1) <= entry.at <= after + timedelta(seconds=1)
    assert entry.at.tzinfo is not None
    # Initial values as [None, new]; empty fields are left out.
    assert entry.changes == {
        "name": [None, "Echo 1"],
        "addresses": [None, ["10.1.0.1"]],
        "site": [None, "Lyon"],
        "kind": [None, "other"],
        "criticality": [None, "medium"],
        "exposure": [None, "internal"],
    }


def test_update_records_old_and_new_values(session):
    asset = make_asset(session, name="Echo 1", addresses="10.1.0.1", site="Lyon", tags="b a")
    svc.update_asset(
        session=session,
        asset_id=asset.id,
        actor="bob",
        source="api",
        data=data(
            name="Echo 1",
            addresses="10.1.0.2 10.1.0.1",
            site="Lyon Est",
            tags="a b",
            audit_interval="3d",
        ),
    )
    session.expunge_all()
    entry = history(session, asset.id)[0]
    assert (entry.action, entry.actor, entry.source) == ("updated", "bob", "api")
    assert entry.changes == {
        "site": ["Lyon", "Lyon Est"],
        "addresses": [["10.1.0.1"], ["10.1.0.2", "10.1.0.1"]],
        "audit_interval": ["", "3d"],
    }
    stored = session.get(Asset, asset.id)
    assert [str(a) for a in stored.address_list] == ["10.1.0.2", "10.1.0.1"]
    assert stored.updated_at >= stored.created_at


def test_update_without_change_adds_no_history(session):
    asset = make_asset(
        session, name="Echo 1", addresses="10.1.0.1", tags="zeta alpha", expected_services="443; 80"
    )
    svc.update_asset(
        session=session,
        asset_id=asset.id,
        actor="bob",
        data=data(
            name="Echo 1",
            addresses="10.1.0.1",
            tags="zeta, alpha",
            expected_services="80/tcp; 443/tcp",
        ),
    )
    assert [e.action for e in history(session, asset.id)] == ["created"]


def test_rename_changes_only_case(session):
    asset = make_asset(session, name="pacs", addresses="10.1.0.1")
    svc.update_asset(
        session=session,
        asset_id=asset.id,
        actor="bob",
        data=data(name="PACS", addresses="10.1.0.1"),
    )
    assert session.get(Asset, asset.id).name == "PACS"
    assert history(session, asset.id)[0].changes == {"name": ["pacs", "PACS"]}


def test_archive_keeps_history_and_restore_brings_back(session):
    asset = make_asset(session, name="NAS", addresses="10.1.0.9")
    svc.archive_asset(session=session, asset_id=asset.id, actor="carol")
    svc.archive_asset(session=session, asset_id=asset.id, actor="carol")  # twice: no new entry
    session.expunge_all()
    archived = session.get(Asset, asset.id)
    assert archived.is_archived and archived.archived_at.tzinfo is not None
    assert [e.action for e in history(session, asset.id)] == ["archived", "created"]
    assert history(session, asset.id)[0].actor == "carol"
    # archived assets leave the list but are kept
    assert svc.list_assets(session=session, query=svc.AssetQuery()).total == 0
    assert svc.list_assets(session=session, query=svc.AssetQuery(archived=True)).total == 1
    assert svc.find_live_asset(session=session, name="nas") is None

    svc.restore_asset(session=session, asset_id=asset.id, actor="dave")
    session.expunge_all()
    assert not session.get(Asset, asset.id).is_archived
    assert [(e.action, e.actor) for e in history(session, asset.id)] == [
        ("restored", "dave"),
        ("archived", "carol"),
        ("created", "tests"),
    ]
    assert svc.find_live_asset(session=session, name=" NAS ").id == asset.id


def test_archived_asset_cannot_be_edited(session):
    asset = make_asset(session, name="NAS", addresses="10.1.0.9")
    svc.archive_asset(session=session, asset_id=asset.id, actor="carol")
    with pytest.raises(InvalidInput, match="restore it before editing"):
        svc.update_asset(
            session=session, asset_id=asset.id, actor="carol", data=data(name="NAS", site="Paris")
        )
    assert session.get(Asset, asset.id).site == ""


@pytest.mark.parametrize("asset_id", [4242, 0, -1, 2**31, 2**63, 10**20])
def test_unknown_asset(session, asset_id):
    """Any id a URL can carry is "not found", never a database error."""
    with pytest.raises(NotFound):
        svc.get_asset(session=session, asset_id=asset_id)
    with pytest.raises(NotFound):
        svc.archive_asset(session=session, asset_id=asset_id, actor="x")


# --- clashes --------------------------------------------------------------------------------


def test_same_address_on_two_live_assets_is_refused(session):
    first = make_asset(session, name="PACS", addresses="10.2.0.1 2001:db8::1")
    with pytest.raises(Conflict) as caught:
        svc.create_asset(
            session=session, actor="x", data=data(name="Viewer", addresses="10.2.0.7 2001:DB8:0::1")
        )
    [(message, params)] = caught.value.fields["addresses"]
    assert params == {"address": "2001:db8::1", "name": "PACS", "asset_id": first.id}
    assert "already the address of" in message
    assert session.scalar(select(func.count()).select_from(Asset)) == 1


def test_ipv4_mapped_form_clashes_with_the_ipv4(session):
    first = make_asset(session, name="PACS", addresses="192.168.1.20")
    with pytest.raises(Conflict) as caught:
        svc.create_asset(
            session=session, actor="x", data=data(name="Other", addresses="::ffff:192.168.1.20")
        )
    assert caught.value.fields["addresses"][0][1]["asset_id"] == first.id


def test_same_name_any_case_is_refused(session):
    first = make_asset(session, name="PACS Radiologie")
    with pytest.raises(Conflict) as caught:
        make_asset(session, name="pacs radiologie")
    assert caught.value.fields["name"][0][1] == {"name": "PACS Radiologie", "asset_id": first.id}


def test_update_into_another_assets_address_or_name_is_refused(session):
    first = make_asset(session, name="PACS", addresses="10.2.0.1")
    second = make_asset(session, name="Viewer", addresses="10.2.0.2")
    with pytest.raises(Conflict) as caught:
        svc.update_asset(
            session=session,
            asset_id=second.id,
            actor="x",
            data=data(name="pacs", addresses="10.2.0.1"),
        )
    assert caught.value.fields["addresses"][0][1]["asset_id"] == first.id
    assert caught.value.fields["name"][0][1]["asset_id"] == first.id
    session.expunge_all()
    assert [str(a) for a in session.get(Asset, second.id).address_list] == ["10.2.0.2"]
    assert [e.action for e in history(session, second.id)] == ["created"]


def test_archived_asset_frees_its_name_and_address(session):
    old = make_asset(session, name="PACS", addresses="10.2.0.1")
    svc.archive_asset(session=session, asset_id=old.id, actor="x")
    new = make_asset(session, name="pacs", addresses="10.2.0.1")
    assert new.id != old.id
    # ... and then the archived one cannot come back while they are taken
    with pytest.raises(Conflict) as caught:
        svc.restore_asset(session=session, asset_id=old.id, actor="x")
    assert caught.value.fields["name"][0][1]["asset_id"] == new.id
    assert caught.value.fields["addresses"][0][1]["asset_id"] == new.id
    session.expire_all()
    assert session.get(Asset, old.id).is_archived
    assert [e.action for e in history(session, old.id)] == ["archived", "created"]


def test_database_refuses_two_live_assets_with_one_name(session):
    """The partial unique index backs the service check (two writers racing)."""
    make_asset(session, name="PACS")
    with pytest.raises(IntegrityError):
        svc.create_asset(session=session, actor="x", data=data(name="pacs"), check=False)
    session.rollback()


def test_foreign_keys_are_enforced(session):
    session.add(AssetAddress(asset_id=999_999, address="10.9.9.9"))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


# --- the list -------------------------------------------------------------------------------


def names(page: svc.Page) -> list[str]:
    return [asset.name for asset in page.items]


def listing(session: Session, **query) -> svc.Page:
    return svc.list_assets(session=session, query=svc.AssetQuery(**query))


@pytest.fixture
def fleet(session):
    make_asset(
        session,
        name="PACS central",
        addresses="10.3.0.1",
        hostnames="pacs.hop.local",
        kind="pacs",
        site="Lyon",
        zone="imaging",
        criticality="critical",
        holds_patient_data="yes",
        tags="radiology dicom",
    )
    make_asset(
        session,
        name="Echograph 2",
        addresses="2001:db8::22",
        kind="modality",
        site="Paris",
        zone="imaging",
        criticality="high",
        holds_patient_data="yes",
        tags="cardiology",
        ae_titles="ECHO 2",
    )
    make_asset(
        session,
        name="nas-backup",
        addresses="10.3.0.9",
        hostnames="nas.hop.local",
        kind="nas",
        site="Lyon",
        zone="office",
        criticality="low",
        tags="backup",
    )
    make_asset(
        session,
        name="Accueil PC",
        addresses="10.4.0.1",
        kind="workstation",
        site="Annecy",
        zone="office",
        criticality="medium",
        mac="00:1b:63:84:45:e6",
    )
    return session


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["Accueil PC", "Echograph 2", "nas-backup", "PACS central"]),
        ("pacs", ["PACS central"]),
        ("CENTRAL pacs", ["PACS central"]),  # every word must match, any case
        ("10.3.0", ["nas-backup", "PACS central"]),  # address
        ("2001:db8::22", ["Echograph 2"]),
        ("nas.hop", ["nas-backup"]),  # host name
        ("cardiology", ["Echograph 2"]),  # tag
        ("echo 2", ["Echograph 2"]),  # AE title words
        ("00:1b:63", ["Accueil PC"]),  # MAC
        ("lyon", []),  # site is a filter, not search text
        ("missing", []),
    ],
)
def test_search(fleet, text, expected):
    page = listing(fleet, text=text)
    assert names(page) == expected and page.total == len(expected)


def test_search_treats_like_wildcards_literally(session):
    make_asset(session, name="uptime 100% ok")
    make_asset(session, name="uptime 1000 ok")
    make_asset(session, name="pacs_a")
    make_asset(session, name="pacsXa")
    make_asset(session, name="back\\slash")
    assert names(listing(session, text="100%")) == ["uptime 100% ok"]
    assert names(listing(session, text="%")) == ["uptime 100% ok"]
    assert names(listing(session, text="pacs_a")) == ["pacs_a"]
    assert names(listing(session, text="_")) == ["pacs_a"]
    assert names(listing(session, text="k\\s")) == ["back\\slash"]
    assert names(listing(session, text="\\")) == ["back\\slash"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"kind": "pacs"}, ["PACS central"]),
        ({"kind": "nas"}, ["nas-backup"]),
        ({"site": "Lyon"}, ["nas-backup", "PACS central"]),
        ({"zone": "office"}, ["Accueil PC", "nas-backup"]),
        ({"criticality": "high"}, ["Echograph 2"]),
        ({"patient_data": True}, ["Echograph 2", "PACS central"]),
        ({"patient_data": False}, ["Accueil PC", "nas-backup"]),
        ({"tag": "Radiology"}, ["PACS central"]),
        ({"tag": "dicom", "site": "Paris"}, []),
        ({"site": "Lyon", "zone": "imaging", "text": "10.3"}, ["PACS central"]),
        ({"archived": True}, []),
    ],
)
def test_filters(fleet, filters, expected):
    assert names(listing(fleet, **filters)) == expected


@pytest.mark.parametrize(
    ("sort", "ascending", "descending"),
    [
        (
            "name",
            ["Accueil PC", "Echograph 2", "nas-backup", "PACS central"],
            ["PACS central", "nas-backup", "Echograph 2", "Accueil PC"],
        ),
        (
            "kind",
            ["Echograph 2", "nas-backup", "PACS central", "Accueil PC"],
            ["Accueil PC", "PACS central", "nas-backup", "Echograph 2"],
        ),
        # Ties (two assets in Lyon, two per zone) stay in name order whichever the direction.
        (
            "site",
            ["Accueil PC", "nas-backup", "PACS central", "Echograph 2"],
            ["Echograph 2", "nas-backup", "PACS central", "Accueil PC"],
        ),
        (
            "zone",
            ["Echograph 2", "PACS central", "Accueil PC", "nas-backup"],
            ["Accueil PC", "nas-backup", "Echograph 2", "PACS central"],
        ),
        # By rank (low < medium < high < critical), not alphabetically.
        (
            "criticality",
            ["nas-backup", "Accueil PC", "Echograph 2", "PACS central"],
            ["PACS central", "Echograph 2", "Accueil PC", "nas-backup"],
        ),
    ],
)
def test_sort_both_directions(fleet, sort, ascending, descending):
    assert names(listing(fleet, sort=sort)) == ascending
    assert names(listing(fleet, sort=sort, descending=True)) == descending


def test_sort_by_last_change(fleet):
    now = datetime.now(UTC)
    order = ["nas-backup", "PACS central", "Accueil PC", "Echograph 2"]
    for age, name in enumerate(reversed(order)):
        asset = svc.find_live_asset(session=fleet, name=name)
        asset.updated_at = now - timedelta(hours=age)
    fleet.commit()
    assert names(listing(fleet, sort="updated")) == order
    assert names(listing(fleet, sort="updated", descending=True)) == order[::-1]


def test_unknown_sort_key_falls_back_to_name(fleet):
    assert names(listing(fleet, sort="password")) == names(listing(fleet))


def test_pagination(session):
    for n in range(7):
        make_asset(session, name=f"host-{n}")
    first = listing(session, per_page=3)
    assert (names(first), first.total, first.page, first.pages) == (
        ["host-0", "host-1", "host-2"],
        7,
        1,
        3,
    )
    assert names(listing(session, per_page=3, page=2)) == ["host-3", "host-4", "host-5"]
    last = listing(session, per_page=3, page=3)
    assert names(last) == ["host-6"] and last.page == 3
    beyond = listing(session, per_page=3, page=99)
    assert names(beyond) == ["host-6"] and beyond.page == 3
    assert listing(session, per_page=3, page=-4).page == 1
    assert names(listing(session, per_page=3, page=2, descending=True)) == [
        "host-3",
        "host-2",
        "host-1",
    ]


def test_empty_list_has_one_empty_page(session):
    page = listing(session, text="nothing", page=5)
    assert (page.items, page.total, page.page, page.pages) == ([], 0, 1, 1)


def test_filter_menus(fleet):
    assert svc.distinct_values(session=fleet, column="site") == ["Annecy", "Lyon", "Paris"]
    assert svc.distinct_values(session=fleet, column="zone") == ["imaging", "office"]
    assert svc.all_tags(session=fleet) == ["backup", "cardiology", "dicom", "radiology"]
    assert [a.name for a in svc.live_assets(session=fleet)] == [
        "Accueil PC",
        "Echograph 2",
        "nas-backup",
        "PACS central",
    ]


def test_search_finds_ipv6_in_any_spelling(session):
    from inventory.services.assets import AssetQuery, list_assets
    from tests.factories import make_asset

    make_asset(session, name="v6-host", addresses="2001:db8::1")
    for spelling in ("2001:0db8::1", "2001:DB8:0:0:0:0:0:1", "2001:db8::1"):
        page = list_assets(session=session, query=AssetQuery(text=spelling))
        assert [a.name for a in page.items] == ["v6-host"], spelling
