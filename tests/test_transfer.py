"""CSV and JSON import/export: all rows checked first, nothing written when one is bad, and
export then import gives the same inventory. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import netaddr
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select
from sqlmodel import Session

from inventory import validators as v
from inventory.errors import ImportRejected, InvalidInput
from inventory.models import Asset, AssetAddress, AssetChange, AssetTag
from inventory.services import assets as svc
from inventory.services import transfer
from tests.factories import make_asset

# --- helpers --------------------------------------------------------------------------------


def counts(session: Session) -> tuple[int, int, int]:
    """Assets, addresses and history entries: what an import may not touch when it fails."""
    return tuple(  # type: ignore[return-value]
        session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Asset, AssetAddress, AssetChange)
    )


def wipe(session: Session) -> None:
    for model in (AssetChange, AssetAddress, AssetTag, Asset):
        session.execute(delete(model))
    session.commit()
    session.expunge_all()


def export(session: Session, fmt: str) -> str:
    writer = transfer.export_csv if fmt == "csv" else transfer.export_json
    session.expire_all()
    return "".join(writer(svc.live_assets(session=session)))


def import_text(session: Session, text: str | bytes, fmt: str = "csv") -> transfer.ImportResult:
    content = text.encode("utf-8") if isinstance(text, str) else text
    return transfer.import_assets(session=session, content=content, fmt=fmt, actor="importer")


def rejected(session: Session, text: str | bytes, fmt: str = "csv") -> list[tuple[int, str, str]]:
    """Import, expect a refusal, and check that nothing at all was written."""
    before = counts(session)
    with pytest.raises(ImportRejected) as caught:
        import_text(session, text, fmt)
    session.rollback()
    assert counts(session) == before
    return [
        (p.line, p.field, v.FieldError(p.message, **p.params).render()) for p in caught.value.rows
    ]


def record(session: Session, name: str) -> dict[str, Any]:
    session.expire_all()
    asset = svc.find_live_asset(session=session, name=name)
    assert asset is not None, name
    return svc.data_to_record(svc.asset_to_data(asset))


# --- reading CSV ----------------------------------------------------------------------------


def test_csv_with_commas(session):
    result = import_text(
        session,
        "name,addresses,kind,holds_patient_data,audit_interval\r\n"
        "PACS,10.7.0.1 10.7.0.2,pacs,yes,24h\r\n"
        "Viewer,2001:db8::7,web-viewer,no,\r\n",
    )
    assert (result.created, result.updated, result.unchanged) == (2, 0, 0)
    pacs = record(session, "PACS")
    assert pacs["addresses"] == ["10.7.0.1", "10.7.0.2"] and pacs["holds_patient_data"] is True
    assert pacs["audit_interval"] == "1d" and pacs["kind"] == "pacs"
    assert record(session, "Viewer")["kind"] == "web-viewer"


def test_csv_with_semicolons_keeps_commas_in_cells(session):
    import_text(
        session,
        "name;addresses;notes;expected_services\n"
        "PACS;10.7.0.1, 10.7.0.2;a, b, c;4242/tcp dicom, 443/tcp https\n",
    )
    pacs = record(session, "PACS")
    assert pacs["notes"] == "a, b, c"
    assert pacs["addresses"] == ["10.7.0.1", "10.7.0.2"]
    assert pacs["expected_services"] == ["443/tcp https", "4242/tcp dicom"]


def test_csv_with_tabs(session):
    import_text(session, "name\taddresses\nPACS\t10.7.0.1\n")
    assert record(session, "PACS")["addresses"] == ["10.7.0.1"]


def test_csv_header_spelling_is_forgiving(session):
    import_text(session, "Name; Holds Patient Data ;AE-Titles\nPACS;oui;STORE SCP\n")
    pacs = record(session, "PACS")
    assert pacs["holds_patient_data"] is True and pacs["ae_titles"] == ["STORE SCP"]


def test_csv_with_utf8_bom(session):
    import_text(session, b"\xef\xbb\xbfname,site\r\n\xc3\x89chographe,H\xc3\xb4pital\r\n")
    assert record(session, "Échographe")["site"] == "Hôpital"


def test_csv_in_windows_1252(session):
    content = "name;site;notes\r\nÉchographe cœur;Hôpital Nord;prix 5 €\r\n".encode("cp1252")
    import_text(session, content)
    echo = record(session, "échographe cœur")
    assert (echo["name"], echo["site"], echo["notes"]) == (
        "Échographe cœur",
        "Hôpital Nord",
        "prix 5 €",
    )


def test_csv_blank_lines_are_skipped(session):
    result = import_text(session, "name,addresses\n\nPACS,10.7.0.1\n,\n\n")
    assert result.created == 1


# --- refusing CSV ---------------------------------------------------------------------------


def test_unknown_columns_are_refused(session):
    problems = rejected(session, "name,adresses,colour\nPACS,10.7.0.1,blue\n")
    assert [(line, field) for line, field, _ in problems] == [(1, "adresses"), (1, "colour")]
    assert "Unknown column adresses" in problems[0][2] and "addresses" in problems[0][2]


def test_name_column_is_required(session):
    problems = rejected(session, "addresses,site\n10.7.0.1,Lyon\n")
    assert problems == [(1, "name", "The file needs a name column.")]


def test_column_twice(session):
    problems = rejected(session, "name,site,Site\nPACS,Lyon,Paris\n")
    assert problems == [(1, "site", "Column site appears twice.")]


def test_every_bad_row_is_reported_and_nothing_is_written(session):
    existing = make_asset(session, name="Keep", addresses="10.8.0.1", site="Lyon")
    content = (
        "name,addresses,site,notes\n"  # 1
        'Keep,10.8.0.1,Paris,"changed\n'  # 2  (valid, updates Keep: must not happen)
        'over two lines"\n'  # 3
        "bad-range,10.8.0.0/24,,\n"  # 4
        "good,10.8.0.2,,\n"  # 5
        ",10.8.0.3,,\n"  # 6  no name
        "short,10.8.0.4\n"  # 7  too few cells
        'bad-multi,10.8.0.5,"Ly\non",\n'  # 8  site with a line break (ends on 9)
        "also-good,10.8.0.6,,\n"  # 10
        "bad-several,fe80::1%eth0,,\n"  # 11
    )
    problems = rejected(session, content)
    assert [(line, field) for line, field, _ in problems] == [
        (4, "addresses"),
        (6, "name"),
        (7, ""),
        (8, "site"),
        (11, "addresses"),
    ]
    reasons = [reason for _, _, reason in problems]
    assert "not one machine's address" in reasons[0]
    assert "name is required" in reasons[1]
    assert "2 cells; the header has 4" in reasons[2]
    assert "line breaks" in reasons[3]
    assert "interface suffix" in reasons[4]
    session.expire_all()
    assert session.get(Asset, existing.id).site == "Lyon"


def test_several_problems_on_one_row_are_all_listed(session):
    problems = rejected(session, "name,mac,kind\nPACS,nope,toaster\n")
    assert sorted((line, field) for line, field, _ in problems) == [(2, "kind"), (2, "mac")]


def test_duplicates_inside_the_file(session):
    problems = rejected(
        session,
        "name,addresses\nPACS,10.9.0.1\nViewer,10.9.0.2\npacs,10.9.0.3\nNAS,::ffff:10.9.0.2\n",
    )
    assert problems == [
        (4, "name", "pacs is already on line 2."),
        (5, "addresses", "10.9.0.2 is also on line 3."),
    ]


def test_address_held_by_a_live_asset(session):
    holder = make_asset(session, name="Holder", addresses="10.9.1.1")
    with pytest.raises(ImportRejected) as caught:
        import_text(session, "name,addresses\nNewcomer,10.9.1.1\n")
    [problem] = caught.value.rows
    assert (problem.line, problem.field) == (2, "addresses")
    assert problem.params == {"address": "10.9.1.1", "name": "Holder", "asset_id": holder.id}


def test_address_of_an_archived_asset_is_free(session):
    old = make_asset(session, name="Old", addresses="10.9.1.1")
    svc.archive_asset(session=session, asset_id=old.id, actor="x")
    assert import_text(session, "name,addresses\nNew,10.9.1.1\nold,10.9.1.2\n").created == 2


def test_addresses_may_move_between_assets_of_the_same_file(session):
    make_asset(session, name="A", addresses="10.9.2.1")
    make_asset(session, name="B", addresses="10.9.2.2")
    result = import_text(session, "name,addresses\nA,10.9.2.2\nB,10.9.2.1\n")
    assert (result.created, result.updated) == (0, 2)
    assert record(session, "A")["addresses"] == ["10.9.2.2"]
    assert record(session, "B")["addresses"] == ["10.9.2.1"]


def test_import_updates_by_name_and_records_history(session):
    asset = make_asset(session, name="PACS", addresses="10.9.3.1", site="Lyon")
    plan = transfer.plan_import(
        session=session, content=b"name,site\npacs,Paris\nNew,\n", fmt="csv"
    )
    assert (plan.creates, plan.updates, plan.problems) == (1, 1, [])
    assert counts(session)[0] == 1  # planning writes nothing
    result = transfer.apply_import(session=session, plan=plan, actor="bob")
    assert (result.created, result.updated, result.unchanged) == (1, 1, 0)
    entry = svc.asset_history(session=session, asset_id=asset.id)[0]
    assert (entry.action, entry.actor, entry.source) == ("updated", "bob", "import")
    assert entry.changes["site"] == ["Lyon", "Paris"]
    # A column left out of the file is emptied, like an empty cell: the file is the whole asset.
    assert entry.changes["addresses"] == [["10.9.3.1"], []]


def test_importing_the_same_file_twice_changes_nothing(session):
    content = (
        "name,addresses,tags,expected_services,software\n"
        "PACS,10.9.4.1,zeta alpha,443/tcp https; 80/tcp,cpe:2.3:a:b:c\n"
    )
    import_text(session, content)
    before = counts(session)
    result = import_text(session, content)
    assert (result.created, result.updated, result.unchanged) == (0, 0, 1)
    assert counts(session) == before


def test_apply_refuses_a_plan_with_problems(session):
    plan = transfer.plan_import(session=session, content=b"name\n\n,\nok\n", fmt="csv")
    assert plan.problems == []
    bad = transfer.plan_import(session=session, content=b"name,mac\nx,bad\n", fmt="csv")
    with pytest.raises(ImportRejected):
        transfer.apply_import(session=session, plan=bad, actor="x")
    assert counts(session) == (0, 0, 0)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "The file is empty."),
        (b"  \r\n ", "The file is empty."),
        (b"name,addresses\r\n", "The file has no assets."),
        (b"name\n\x81\x8d\n", "not text"),
        (b'name,notes\nPACS,"unclosed\n', "malformed"),
        (b'name,notes\nPACS,"x"y\n', "malformed"),
    ],
)
def test_unusable_csv_files(session, content, words):
    problems = rejected(session, content)
    assert any(words in reason for _, _, reason in problems), problems


def test_unknown_format(session):
    with pytest.raises(InvalidInput, match="Unknown format"):
        import_text(session, "name\nx\n", fmt="xlsx")


def test_guess_format():
    assert transfer.guess_format("assets.JSON", b"") == "json"
    assert transfer.guess_format("assets.csv", b"[") == "csv"
    assert transfer.guess_format("upload", b"  [{}]") == "json"
    assert transfer.guess_format("upload", b"name\n") == "csv"


# --- JSON -----------------------------------------------------------------------------------


def test_json_export_document(session):
    document = {
        "format": "vigie-assets",
        "version": 1,
        "assets": [
            {
                "name": "PACS",
                "addresses": ["10.9.5.1", "2001:db8::5"],
                "holds_patient_data": True,
                "expected_services": [
                    "4242/tcp dicom",
                    {"port": 443, "protocol": "tcp", "name": "https"},
                ],
                "audit_interval": 86400,
                "tags": ["b", "a"],
            },
        ],
    }
    assert import_text(session, json.dumps(document), "json").created == 1
    pacs = record(session, "PACS")
    assert pacs["addresses"] == ["10.9.5.1", "2001:db8::5"]
    assert pacs["expected_services"] == ["443/tcp https", "4242/tcp dicom"]
    assert pacs["audit_interval"] == "1d" and pacs["tags"] == ["a", "b"]


def test_json_bare_list(session):
    result = import_text(
        session, '[{"name": "A", "addresses": "10.9.5.1; 10.9.5.2"}, {"Name": "B"}]', "json"
    )
    assert result.created == 2
    assert record(session, "A")["addresses"] == ["10.9.5.1", "10.9.5.2"]


def test_json_bad_items_are_numbered(session):
    content = json.dumps(
        [
            {"name": "ok", "addresses": ["10.9.6.1"]},
            "just text",
            {"name": "x", "colour": "red"},
            {"name": 5, "addresses": 10, "tags": {"a": 1}, "notes": ["n"]},
            {"name": "y", "addresses": ["10.9.6.0/30"]},
        ]
    )
    problems = rejected(session, content, "json")
    assert [(line, field) for line, field, _ in problems] == [
        (2, ""),
        (3, ""),
        (4, "name"),
        (4, "addresses"),
        (4, "tags"),
        (4, "notes"),
        (5, "addresses"),
    ]
    assert "must be an object" in problems[0][2]
    assert "Unknown fields: colour" in problems[1][2]
    assert "Expected text, got 5" in problems[2][2]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"assets": {"name": "x"}}', "Expected a list"),
        (b'{"format": "vigie-assets"}', "Expected a list"),
        (b'"PACS"', "Expected a list"),
        (b"[]", "The file has no assets."),
        (b"[" * 100_000, "not valid JSON"),
        (b'[{"name": "x\\ud800"}]', "invisible"),
        (b'[{"name": "x", "notes": "a\\u0000b"}, {"name": "x"}]', "already on line 1"),
    ],
)
def test_unusable_json_files(session, content, words):
    problems = rejected(session, content, "json")
    assert any(words in reason for _, _, reason in problems), problems


def test_json_nul_and_lone_surrogates_never_reach_the_database(session):
    import_text(session, b'[{"name": "x", "notes": "a\\u0000b\\udc00c"}]', "json")
    assert record(session, "x")["notes"] == "abc"


# --- export then import ---------------------------------------------------------------------

TRICKY = [
    {
        "name": 'Say "hello", world; ok',
        "addresses": "10.10.0.1 2001:db8:0:0::a",
        "notes": 'line one, with "quotes"; and semicolons\nline two\n\n  indented line\ttab',
    },
    {
        "name": "Échographe cœur 心臓",
        "site": "Hôpital Nord-Est",
        "zone": "imagerie",
        "owner": "Dr Zoë O'Brien <zoe@example.org>",
        "criticality": "critical",
        "holds_patient_data": "yes",
        "exposure": "vpn",
        "kind": "modality",
        "addresses": "::ffff:10.10.0.2",
        "mac": "00-1B-63-84-45-E6",
        "expected_services": "4242/tcp dicom; 104/tcp; 161/udp snmp",
        "ae_titles": "STORE  SCP; FIND SCP; ECHO_1",
        "hostnames": "echo.clinic.local; echo2",
        "software": "cpe:2.3:a:orthanc-server:orthanc:1.12.1; cpe:2.3:a:acme:foo\\:bar:2.0, "
        "cpe:2.3:a:acme\\,_inc:foo\\;bar",
        "tags": "cardio, site:lyon zone/dmz",
        "audit_interval": "90m",
        "notes": "=SUM(A1:A2)",
    },
    {"name": "minimal"},
    {"name": "  padded  ", "notes": "trailing\r\nwindows\r\nlines"},
    {"name": "-starts with dash", "audit_interval": "2w", "exposure": "public"},
]


def fill(session: Session, raws: list[dict[str, Any]]) -> None:
    for raw in raws:
        svc.create_asset(session=session, data=svc.validate_asset(raw), actor="tests")


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_then_import_round_trips_exactly(session, fmt):
    fill(session, TRICKY)
    first = {f: export(session, f) for f in ("csv", "json")}
    wipe(session)
    result = import_text(session, first[fmt], fmt)
    assert result.created == len(TRICKY)
    assert {f: export(session, f) for f in ("csv", "json")} == first


def test_export_formats(session):
    fill(session, TRICKY[:2])
    document = json.loads(export(session, "json"))
    assert (document["format"], document["version"]) == ("vigie-assets", 1)
    assert [a["name"] for a in document["assets"]] == [
        'Say "hello", world; ok',
        "Échographe cœur 心臓",
    ]
    echo = document["assets"][1]
    assert list(echo) == list(transfer.COLUMNS)
    assert echo["addresses"] == ["10.10.0.2"] and echo["holds_patient_data"] is True
    assert echo["ae_titles"] == ["STORE  SCP", "FIND SCP", "ECHO_1"]
    lines = export(session, "csv").split("\r\n")
    assert lines[0] == ",".join(transfer.COLUMNS)
    assert "4242/tcp dicom" in export(session, "csv")
    assert "104/tcp; 161/udp snmp; 4242/tcp dicom" in export(session, "csv")


def test_export_leaves_out_archived_assets(session):
    fill(session, [{"name": "kept"}, {"name": "gone"}])
    gone = svc.find_live_asset(session=session, name="gone")
    svc.archive_asset(session=session, asset_id=gone.id, actor="x")
    assert [a["name"] for a in json.loads(export(session, "json"))["assets"]] == ["kept"]


def test_large_export_is_streamed_in_chunks(session):
    for n in range(600):
        session.add(Asset(name=f"host-{n:04}-" + "x" * 100, name_key=f"host-{n:04}-" + "x" * 100))
    session.commit()
    chunks = list(transfer.export_csv(svc.live_assets(session=session)))
    assert len(chunks) > 1
    assert "".join(chunks).count("\r\n") == 601


# --- generated inventories ------------------------------------------------------------------

SAFE = st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp"))
LABEL = st.text(SAFE, max_size=20)
HOST_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9_-]{0,8}[a-z0-9])?", fullmatch=True)
AE = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters="\\;"),
    min_size=1,
    max_size=16,
).filter(lambda t: t.strip())
CPE_WORD = st.from_regex(r"[a-z0-9_]([a-z0-9._-]{0,8})", fullmatch=True).filter(
    lambda w: w not in {"*", "-"}
)


def _address(value: int) -> str:
    address = netaddr.IPAddress(value, 6 if value > 2**32 else 4)
    return str(address)


ADDRESS = st.one_of(
    st.integers(0x0A000001, 0x0AFFFFFE),  # 10/8
    st.integers(2**112 * 0x2001, 2**112 * 0x2001 + 2**96 - 1).map(lambda n: n + 2**32 + 1),
).map(_address)


@st.composite
def raw_assets(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "name": draw(st.text(SAFE, min_size=1, max_size=40).filter(lambda t: t.strip())),
        "addresses": draw(st.lists(ADDRESS, max_size=3, unique=True)),
        "hostnames": draw(
            st.lists(
                st.lists(HOST_LABEL, min_size=1, max_size=3).map(".".join), max_size=2, unique=True
            ).filter(lambda hs: not any(v._is_address(h) for h in hs))
        ),
        "mac": draw(
            st.one_of(st.just(""), st.integers(0, 2**48 - 1).map(lambda n: str(netaddr.EUI(n))))
        ),
        "kind": draw(st.sampled_from(["pacs", "nas", "web-viewer", "other", ""])),
        "site": draw(LABEL),
        "zone": draw(LABEL),
        "owner": draw(LABEL),
        "criticality": draw(st.sampled_from(["low", "medium", "high", "critical"])),
        "holds_patient_data": draw(st.booleans()),
        "exposure": draw(st.sampled_from(["internal", "vpn", "public"])),
        "expected_services": draw(
            st.lists(
                st.tuples(
                    st.integers(1, 65535),
                    st.sampled_from(["tcp", "udp"]),
                    st.from_regex(r"([a-z][a-z0-9]{0,6})?", fullmatch=True),
                ),
                max_size=3,
                unique_by=lambda s: (s[0], s[1]),
            ).map(lambda ss: [f"{p}/{proto} {n}".strip() for p, proto, n in ss])
        ),
        "ae_titles": draw(st.lists(AE, max_size=3, unique_by=str.strip)),
        "software": draw(
            st.lists(
                st.tuples(st.sampled_from("aho"), CPE_WORD, CPE_WORD).map(
                    lambda t: f"cpe:2.3:{t[0]}:{t[1]}:{t[2]}"
                ),
                max_size=2,
                unique=True,
            )
        ),
        "tags": draw(
            st.lists(st.from_regex(r"[a-z0-9][a-z0-9._:/+-]{0,12}", fullmatch=True), max_size=3)
        ),
        "audit_interval": draw(
            st.one_of(
                st.none(),
                st.integers(15, 366 * 24 * 60).map(lambda minutes: v.format_interval(minutes * 60)),
            )
        ),
        "optional_checks": draw(
            st.lists(st.sampled_from(list(v.OPTIONAL_CHECKS)), max_size=2, unique=True)
        ),
        "notes": draw(st.text(max_size=80)),
    }


def _distinct(raws: list[dict[str, Any]]) -> bool:
    addresses = [a for raw in raws for a in raw["addresses"]]
    return len(set(addresses)) == len(addresses)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    raws=st.lists(
        raw_assets(), min_size=1, max_size=4, unique_by=lambda raw: raw["name"].strip().lower()
    ).filter(_distinct)
)
def test_generated_inventories_round_trip(session, raws):
    wipe(session)
    fill(session, raws)
    first = {f: export(session, f) for f in ("csv", "json")}
    for fmt in ("csv", "json"):
        wipe(session)
        assert import_text(session, first[fmt], fmt).created == len(raws)
        assert {f: export(session, f) for f in ("csv", "json")} == first
    # and importing the export over itself changes nothing
    assert import_text(session, first["csv"]).unchanged == len(raws)


# --- spreadsheet formulas -------------------------------------------------------------------


def test_csv_export_neutralises_formulas_and_import_restores_them(session):
    """A note like =HYPERLINK(...) must not run when the export is opened in a spreadsheet."""
    from inventory.services import transfer
    from inventory.services.assets import live_assets
    from tests.factories import make_asset

    make_asset(
        session, name="=cmd|' /C calc'!A0", notes="@SUM(1+1)", owner="-2+3", addresses="10.9.9.9"
    )
    exported = "".join(transfer.export_csv(live_assets(session=session)))
    row = exported.splitlines()[1]
    assert row.startswith("'=cmd")
    assert ",'@SUM(1+1)" in row and ",'-2+3," in row
    plan = transfer.plan_import(session=session, content=exported.encode(), fmt="csv")
    assert not plan.problems
    ((_, data, _),) = plan.rows
    assert data.name == "=cmd|' /C calc'!A0" and data.notes == "@SUM(1+1)" and data.owner == "-2+3"


def test_a_name_used_twice_is_reported_even_when_the_row_has_other_problems(session):
    from inventory.services import transfer

    content = b"name;addresses;kind\nPACS;10.0.0.0/24;pacs\npacs;10.0.0.1;scanner\n"
    plan = transfer.plan_import(session=session, content=content, fmt="csv")
    reported = {(p.line, p.field) for p in plan.problems}
    assert reported == {(2, "addresses"), (3, "kind"), (3, "name")}
