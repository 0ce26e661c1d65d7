"""Feed import on both databases: the real files, re-imports that update in place, and bad files
that change nothing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from inventory.models import FeedImport, KevEntry, VulnCpeMatch, Vulnerability, VulnProduct
from inventory.models.types import utcnow
from inventory.services import vulns
from inventory.services.vuln_import import FeedError, import_files
from tests.vulns.data import KEV, NVD_RECENT, NVD_SAMPLE


def load(session, *paths: Path, source: str = "file"):
    return import_files(
        session=session, files=[(p, p.name) for p in paths], actor="tests", source=source
    )


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_real_files_import(session):
    results = load(session, NVD_SAMPLE, NVD_RECENT, KEV)
    assert [(r.feed, r.records, r.created) for r in results] == [
        ("nvd", 35, 35),
        ("nvd", 94, 94),
        ("kev", 1404, 1404),
    ]
    assert count(session, Vulnerability) == 129
    assert count(session, KevEntry) == 1404
    assert results[2].feed_date.isoformat().startswith("2025-08-25T17:04:19")
    orthanc = session.scalars(
        select(Vulnerability).where(Vulnerability.cve_id == "CVE-2023-33466")
    ).one()
    assert orthanc.cvss_score == 8.8 and orthanc.cvss_version == "3.1"
    assert orthanc.cvss_vector == "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"
    assert orthanc.references[0].startswith("https://discourse.orthanc-server.org/")
    rows = session.scalars(
        select(VulnCpeMatch).where(VulnCpeMatch.vulnerability_id == orthanc.id)
    ).all()
    assert [(r.vendor, r.product, r.version_end, r.end_including) for r in rows] == [
        ("orthanc-server", "orthanc", "1.12.0", False)
    ]
    kev = session.scalars(select(KevEntry).where(KevEntry.cve_id == "CVE-2014-3120")).one()
    assert (kev.date_added.isoformat(), kev.due_date.isoformat()) == ("2022-03-25", "2022-04-15")
    assert (
        session.scalars(select(KevEntry.ransomware).where(KevEntry.cve_id == "CVE-2017-0144")).one()
        == "Known"
    )
    assert "CVE-2025-6554" in set(session.scalars(select(KevEntry.cve_id)))
    # The search behind the asset form.
    found = vulns.search_products(session=session, text="orth")
    assert ("orthanc-server", "orthanc") in [(p.vendor, p.product) for p in found]
    assert [
        (p.vendor, p.product)
        for p in vulns.search_products(session=session, text="orthanc-server:orth")
    ] == [("orthanc-server", "orthanc")]
    assert vulns.search_products(session=session, text="o") == []
    assert vulns.search_products(session=session, text="%_%") == []
    states = {s.feed: s for s in vulns.feed_status(session=session)}
    assert states["nvd"].records == 129 and states["kev"].records == 1404
    assert states["kev"].last_import.filename == "kev.json"


def _rewrite(tmp_path: Path, name: str, change) -> Path:
    document = json.loads(NVD_SAMPLE.read_text())
    change(document)
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def _record(document, cve):
    return next(v["cve"] for v in document["vulnerabilities"] if v["cve"]["id"] == cve)


def test_reimport_updates_in_place_only_when_newer(session, tmp_path):
    load(session, NVD_SAMPLE)
    again = load(session, NVD_SAMPLE)[0]
    assert (again.created, again.updated, again.unchanged) == (0, 0, 35)

    def newer(document):
        record = _record(document, "CVE-2023-33466")
        record["lastModified"] = "2027-01-01T00:00:00.000"
        record["descriptions"][0]["value"] = "Corrected description."
        record["configurations"][0]["nodes"][0]["cpeMatch"][0]["versionEndExcluding"] = "1.12.1"

    result = load(session, _rewrite(tmp_path, "newer.json", newer))[0]
    assert (result.created, result.updated, result.unchanged) == (0, 1, 34)
    vuln = session.scalars(
        select(Vulnerability).where(Vulnerability.cve_id == "CVE-2023-33466")
    ).one()
    session.refresh(vuln)
    assert vuln.description == "Corrected description."
    ends = session.scalars(
        select(VulnCpeMatch.version_end).where(VulnCpeMatch.vulnerability_id == vuln.id)
    ).all()
    assert ends == ["1.12.1"]
    assert count(session, Vulnerability) == 35
    # The original (older) file again: the newer record stays.
    older = load(session, NVD_SAMPLE)[0]
    assert older.updated == 0
    session.refresh(vuln)
    assert vuln.description == "Corrected description."


def test_gzip_files_are_read_as_they_are(session, tmp_path):
    packed = tmp_path / "nvd.json.gz"
    packed.write_bytes(gzip.compress(NVD_SAMPLE.read_bytes()))
    assert load(session, packed)[0].created == 35


def test_older_kev_catalog_changes_nothing(session, tmp_path):
    load(session, KEV)
    document = json.loads(KEV.read_text())
    document["dateReleased"] = "2024-01-01T00:00:00.000Z"
    document["vulnerabilities"] = document["vulnerabilities"][:10]
    old = tmp_path / "old-kev.json"
    old.write_text(json.dumps(document))
    result = load(session, old)[0]
    assert result.older and result.created == result.updated == 0
    assert count(session, KevEntry) == 1404


def test_newer_kev_catalog_updates_and_drops_removed_entries(session, tmp_path):
    load(session, KEV)
    document = json.loads(KEV.read_text())
    document["dateReleased"] = "2026-01-01T00:00:00.000Z"
    document["vulnerabilities"] = document["vulnerabilities"][1:]
    document["vulnerabilities"][0]["dueDate"] = "2030-01-01"
    newer = tmp_path / "new-kev.json"
    newer.write_text(json.dumps(document))
    result = load(session, newer)[0]
    assert (result.created, result.updated) == (0, 1)
    assert count(session, KevEntry) == 1403


def truncated(tmp_path: Path) -> Path:
    path = tmp_path / "cut.json"
    path.write_bytes(NVD_SAMPLE.read_bytes()[: NVD_SAMPLE.stat().st_size // 2])
    return path


def _nvd(*records: dict) -> bytes:
    return json.dumps(
        {"format": "NVD_CVE", "version": "2.0", "vulnerabilities": [{"cve": r} for r in records]}
    ).encode()


def _criteria(*criteria: str) -> list:
    matches = [{"criteria": c, "vulnerable": True} for c in criteria]
    return [{"nodes": [{"operator": "OR", "cpeMatch": matches}]}]


_STAMP = "2024-01-01T00:00:00"
_APP = "cpe:2.3:a:acme:pacs:*:*:*:*:*:*:*:*"
BAD_FILES = {
    "not-json.json": (b"name,addresses\nPACS,10.0.0.1\n", "is not valid JSON"),
    "empty.json": (b"", "is empty"),
    "list.json": (b"[1, 2, 3]", "neither an NVD API 2.0 CVE file nor the CISA KEV catalog"),
    "other.json": (b'{"assets": []}', "neither an NVD API 2.0 CVE file nor the CISA KEV catalog"),
    "items.json": (b'{"vulnerabilities": [{"foo": 1}]}', "neither an NVD API 2.0"),
    "not-a-list.json": (b'{"format": "NVD_CVE", "vulnerabilities": {"cve": 1}}', "no `vulner"),
    "nvd11.json": (b'{"CVE_data_type": "CVE", "CVE_Items": []}', "NVD 1.1 data feed"),
    "nvd-v3.json": (b'{"format": "NVD_CVE", "version": "3.0", "vulnerabilities": []}', "3.0"),
    "bad-id.json": (
        _nvd({"id": "X-1", "lastModified": _STAMP}),
        "record 1 (X-1): `id` is not a CVE id",
    ),
    "no-date.json": (_nvd({"id": "CVE-2024-0001"}), "`lastModified` is missing or not a date"),
    "bad-cpe.json": (
        _nvd({"id": "CVE-2024-0001", "lastModified": _STAMP, "configurations": _criteria("x")}),
        "record 1 (CVE-2024-0001): configurations: not a CPE 2.3 name",
    ),
    "second-bad.json": (
        _nvd(
            {"id": "CVE-2024-0001", "lastModified": _STAMP, "configurations": _criteria(_APP)},
            {"id": "CVE-2024-0002", "lastModified": _STAMP, "configurations": "all"},
        ),
        "record 2 (CVE-2024-0002): configurations: configurations must be a list",
    ),
    "many-criteria.json": (
        _nvd(
            {
                "id": "CVE-2024-0003",
                "lastModified": _STAMP,
                "configurations": _criteria(*[_APP] * 50_001),
            }
        ),
        "more than 50000 CPE criteria",
    ),
    "bad-kev.json": (
        json.dumps(
            {
                "catalogVersion": "1",
                "dateReleased": "2025-01-01T00:00:00Z",
                "vulnerabilities": [{"cveID": "CVE-2024-0001", "dateAdded": "soon"}],
            }
        ).encode(),
        "`dateAdded` is not a date",
    ),
    "huge-kev.json": (
        json.dumps(
            {
                "catalogVersion": "1",
                "dateReleased": "2025-01-01T00:00:00Z",
                "vulnerabilities": [{"cveID": "CVE-2024-0001", "dateAdded": "2025-01-01"}]
                * 100_001,
            }
        ).encode(),
        "has more than 100000 entries",
    ),
    "trailing.json": (b'{"format": "NVD_CVE", "vulnerabilities": []} extra', "is not valid JSON"),
    "binary.json.gz": (b"\x1f\x8b\x08\x00garbage", "cannot be read"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_are_refused_and_nothing_is_written(session, tmp_path, name):
    content, message = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(FeedError) as caught:
        load(session, NVD_SAMPLE, path)  # a good file first: it must not stay either
    assert message in str(caught.value)
    assert name in str(caught.value) and "nothing was imported" in str(caught.value)
    for model in (Vulnerability, VulnCpeMatch, KevEntry, FeedImport, VulnProduct):
        assert count(session, model) == 0, model


def test_truncated_file_is_refused_and_nothing_is_written(session, tmp_path):
    with pytest.raises(FeedError, match="ends before its JSON does"):
        load(session, truncated(tmp_path))
    assert count(session, Vulnerability) == 0 and count(session, FeedImport) == 0


def test_an_import_racing_another_one_is_refused_cleanly(engine, database_url, db_backend):
    """While another transaction holds the same records (PostgreSQL: the same CVE ids; SQLite:
    the write lock), an import gives up with a message and writes nothing."""
    import threading

    from sqlmodel import Session as SqlSession

    from inventory.db import make_engine

    engine = make_engine(database_url, busy_timeout_ms=200)  # the tables are the fixture's
    holder = SqlSession(engine)
    holder.add(Vulnerability(cve_id="CVE-2023-33466", last_modified=utcnow()))
    holder.flush()  # the row (and, on SQLite, the write lock) is held, not committed
    outcome: list[BaseException | None] = []

    def other_import() -> None:
        with SqlSession(engine) as session:
            try:
                load(session, NVD_SAMPLE)
                outcome.append(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
                outcome.append(exc)

    thread = threading.Thread(target=other_import)
    thread.start()
    thread.join(0.5 if db_backend == "postgresql" else 10)  # PostgreSQL: it waits on the row
    holder.commit()
    thread.join(30)
    holder.close()
    [error] = outcome
    assert isinstance(error, FeedError), error
    assert "Another import ran at the same time; nothing was imported" in str(error)
    with SqlSession(engine) as session:
        assert count(session, Vulnerability) == 1 and count(session, FeedImport) == 0
    engine.dispose()
