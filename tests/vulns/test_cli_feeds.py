"""`inventory feeds import|update|status` on a migrated database (SQLite and PostgreSQL); the
download runs against a loopback server imitating the NVD API, never the Internet."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from inventory.models import Finding, Vulnerability
from tests.factories import make_asset
from tests.vulns.conftest import inventory
from tests.vulns.data import KEV, NVD_SAMPLE
from tests.vulns.nvd_peer import nvd_peer


def run(url: str, tmp_path: Path, *args: str, **settings: str):
    # Through the main command: `inventory feeds ...` as PRODUCT.md's contract writes it.
    return inventory(url, tmp_path, "feeds", *args, **settings)


def test_import_reports_and_rematches(migrated, tmp_path):
    url, engine = migrated
    with Session(engine) as session:
        asset = make_asset(session, software="cpe:2.3:a:apache:http_server:2.4.49")
        asset_id = asset.id
    result = run(url, tmp_path, "import", str(NVD_SAMPLE), str(KEV))
    assert result.exit_code == 0, result.output
    assert (
        "nvd-sample.json: NVD CVE records, feed of 2025-08-25 00:00 UTC: 35 records (35 new"
        in result.output
    )
    assert "kev.json: CISA KEV catalog" in result.output and "1404 records" in result.output
    assert "Re-matched 1 assets: 2 new findings" in result.output
    with Session(engine) as session:
        checks = set(session.scalars(select(Finding.check_id).where(Finding.asset_id == asset_id)))
    assert checks == {"vuln.cve", "vuln.kev"}
    status = run(url, tmp_path, "status", "--format", "json")
    rows = {r["feed"]: r for r in json.loads(status.output)}
    assert rows["nvd"]["records"] == 35 and rows["kev"]["last_file"] == "kev.json"
    assert rows["kev"]["feed_date"].startswith("2025-08-25T17:04:19")


def test_bad_file_exits_1_and_writes_nothing(migrated, tmp_path):
    url, engine = migrated
    bad = tmp_path / "cut.json"
    bad.write_bytes(NVD_SAMPLE.read_bytes()[:5000])
    result = run(url, tmp_path, "import", str(NVD_SAMPLE), str(bad))
    assert result.exit_code == 1
    assert "cut.json ends before its JSON does" in result.output
    with Session(engine) as session:
        assert session.scalars(select(Vulnerability)).first() is None


def test_update_pages_through_the_api_with_key_and_rate_limit(migrated, tmp_path):
    url, engine = migrated
    with nvd_peer() as peer:
        args = [
            "update",
            "--api-key",
            "test-key",
            "--nvd-url",
            peer.url,
            "--kev-url",
            peer.kev_url,
            "--delay",
            "0",
        ]
        result = run(url, tmp_path, *args)
        assert result.exit_code == 0, result.output
        # 35 records in pages of 10 (4 pages), after one 429 answer that was retried.
        assert peer.refused == 1
        pages = [r for r in peer.requests if r["api_key"] == "test-key"]
        assert [int(r["query"]["startIndex"]) for r in pages[1:]] == [0, 10, 20, 30]
        assert "lastModStartDate" not in pages[1]["query"]
        with Session(engine) as session:
            assert len(session.scalars(select(Vulnerability.id)).all()) == 35
        # The next update asks only for what changed since the NVD's timestamp of the last one.
        peer.requests.clear()
        result = run(url, tmp_path, *args)
        assert result.exit_code == 0, result.output
        windows = [r["query"] for r in peer.requests if r["api_key"] == "test-key"]
        assert windows[0]["lastModStartDate"].startswith("2025-08-26T10:00:00")
        assert all("lastModEndDate" in q for q in windows)  # windows of at most 120 days
        assert "changed since 2025-08-26 10:00 UTC" in result.output


def test_update_with_a_broken_answer_imports_nothing(migrated, tmp_path):
    url, engine = migrated
    with nvd_peer() as peer:
        peer.broken_page = True
        result = run(
            url,
            tmp_path,
            "update",
            "--api-key",
            "test-key",
            "--nvd-url",
            peer.url,
            "--kev-url",
            peer.kev_url,
            "--delay",
            "0",
        )
    assert result.exit_code == 1
    assert "did not answer with an NVD API 2.0 page" in result.output
    with Session(engine) as session:
        assert session.scalars(select(Vulnerability)).first() is None


def test_update_gives_up_on_refusals(migrated, tmp_path):
    url, _ = migrated
    with nvd_peer() as peer:
        peer.api_key = "another key"
        result = run(
            url,
            tmp_path,
            "update",
            "--api-key",
            "wrong",
            "--nvd-url",
            peer.url,
            "--no-kev",
            "--delay",
            "0",
        )
    assert result.exit_code == 1
    assert "the server answered 404" in result.output


def test_update_takes_its_key_pacing_and_addresses_from_the_settings(migrated, tmp_path):
    url, engine = migrated
    with nvd_peer() as peer:
        peer.refuse_first = 0
        result = run(
            url,
            tmp_path,
            "update",
            nvd_api_key="test-key",
            nvd_url=peer.url,
            kev_url=peer.kev_url,
            nvd_page_size="7",
            nvd_delay_with_key="0",
        )
        assert result.exit_code == 0, result.output
        pages = [r["query"] for r in peer.requests]
        assert [p["resultsPerPage"] for p in pages] == ["7"] * 5
        assert [int(p["startIndex"]) for p in pages] == [0, 7, 14, 21, 28]
        assert all(r["api_key"] == "test-key" for r in peer.requests)
        assert "kev.json: CISA KEV catalog" in result.output
    with Session(engine) as session:
        assert len(session.scalars(select(Vulnerability.id)).all()) == 35


def test_rematch_applies_changed_settings(migrated, tmp_path):
    """Vendor aliases turned off in the settings: `feeds rematch` fixes what only matched
    through them (imports re-match only what they change, so settings need this command)."""
    url, engine = migrated
    with Session(engine) as session:
        asset_id = make_asset(session, software="cpe:2.3:a:offis:dcmtk:3.6.0").id
    assert run(url, tmp_path, "import", str(NVD_SAMPLE)).exit_code == 0
    with Session(engine) as session:
        aliased = session.scalars(
            select(Finding).where(Finding.asset_id == asset_id, Finding.subject == "CVE-2015-8979")
        ).one()
        assert aliased.status == "open" and aliased.evidence["vendor_alias"] == "dicom"
    result = run(url, tmp_path, "rematch", vendor_aliases="false")
    assert result.exit_code == 0, result.output
    assert "Re-matched 1 assets: 0 new findings, 0 reopened, 1 fixed." in result.output
    with Session(engine) as session:
        assert session.get(Finding, aliased.id).status == "fixed"
