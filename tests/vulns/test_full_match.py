"""A full re-match reads from the database only the criteria some asset's version can fall in
(`vuln_cpe_match.version_sort`) and only the configurations about the assets' products: on a
feed of every shape of configuration, it must find exactly what evaluating every record in
full for every asset finds, on both databases, including after the migration that fills
`version_sort` for criteria imported before it."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import func, select, update
from sqlmodel import Session

from inventory.db import alembic_config, make_engine
from inventory.models import Finding, FindingStatus, VulnCpeMatch
from inventory.services import vulns
from inventory.services.vuln_import import import_files
from inventory.vulns.cpe import parse
from inventory.vulns.matching import applies, parse_configurations
from inventory.vulns.versions import compare_versions, sort_text
from tests.factories import make_asset

VERSIONS = [
    "0.9",
    "1.0",
    "1.2",
    "1.2.0",
    "1.2.3-beta2",
    "1.2.3",
    "1.9.7",
    "1.10.1",
    "2.0b",
    "2.0",
    "2:4.17.12+dfsg",
    "3.6.7",
    "3.6.10",
    "7.0.15",
    "9.7p1",
    "10",
]
PRODUCTS = [("acme", "pacs"), ("acme", "viewer"), ("orthanc-server", "orthanc")]
PLATFORMS = [
    "cpe:2.3:o:linux:linux_kernel:*:*:*:*:*:*:*:*",
    "cpe:2.3:o:microsoft:windows_10:-:*:*:*:*:*:*:*",
]


def _criterion(rng: random.Random, vendor: str, product: str) -> dict[str, Any]:
    shape = rng.choice(
        ["exact", "exact", "range", "range", "start", "every", "dash", "pattern", "update"]
    )
    version, update = "*", "*"
    entry: dict[str, Any] = {"vulnerable": True}
    if shape == "exact":
        version = rng.choice(VERSIONS).replace(":", "\\:")
    elif shape == "range":
        start, end = sorted(rng.sample(VERSIONS, 2), key=_order)
        if rng.random() < 0.5:
            entry["versionStart" + rng.choice(["Including", "Excluding"])] = start
        entry["versionEnd" + rng.choice(["Including", "Excluding"])] = end
    elif shape == "start":
        entry["versionStartIncluding"] = rng.choice(VERSIONS)
    elif shape == "dash":
        version = "-"
    elif shape == "pattern":
        version = "1.*"
    elif shape == "update":
        version, update = rng.choice(VERSIONS[:6]), "p1"
    entry["criteria"] = f"cpe:2.3:a:{vendor}:{product}:{version}:{update}:*:*:*:*:*:*"
    return entry


def _order(version: str) -> Any:
    from inventory.vulns.versions import version_key

    return version_key(version)


def _record(rng: random.Random, number: int) -> dict[str, Any]:
    configurations = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        vendor, product = rng.choice(PRODUCTS)
        node = {
            "operator": "OR",
            "negate": False,
            "cpeMatch": [_criterion(rng, vendor, product) for _ in range(rng.randint(1, 4))],
        }
        shape = rng.choice(["simple", "simple", "running-on", "negated", "and"])
        if shape == "simple":
            configurations.append({"nodes": [node]})
        elif shape == "running-on":
            platform = {
                "operator": "OR",
                "negate": False,
                "cpeMatch": [{"vulnerable": False, "criteria": rng.choice(PLATFORMS)}],
            }
            configurations.append({"operator": "AND", "nodes": [node, platform]})
        elif shape == "negated":
            other = {
                "operator": "OR",
                "negate": True,
                "cpeMatch": [_criterion(rng, vendor, product)],
            }
            configurations.append({"operator": "AND", "nodes": [node, other]})
        else:
            node["operator"] = "AND"
            configurations.append({"nodes": [node]})
    return {
        "id": f"CVE-2026-{number:05d}",
        "sourceIdentifier": "tests",
        "published": "2026-01-01T00:00:00.000",
        "lastModified": "2026-01-02T00:00:00.000",
        "vulnStatus": "Analyzed",
        "descriptions": [{"lang": "en", "value": f"Synthetic record {number}."}],
        "metrics": {},
        "references": [],
        "configurations": configurations,
    }


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    """An NVD API 2.0 file of these records."""
    vulnerabilities = [{"cve": r} for r in records]
    document = {"format": "NVD_CVE", "version": "2.0", "vulnerabilities": vulnerabilities}
    path.write_text(json.dumps(document))
    return path


def _feed(tmp_path: Path, seed: int = 11, count: int = 160) -> tuple[Path, list[dict[str, Any]]]:
    rng = random.Random(seed)
    records = [_record(rng, n) for n in range(count)]
    path = _write(tmp_path / "synthetic-nvd.json", records)
    return path, records


def _fleet(seed: int = 3, count: int = 40) -> list[list[str]]:
    rng = random.Random(seed)
    # No epoch: the asset form takes no escaped colon (the records' criteria have some).
    versions = [v for v in VERSIONS if ":" not in v]
    versions += ["4.17.12\\+dfsg", "*", "-", "1." + "9" * 120, "1.2.3.4.5", "v2.0"]
    fleet = []
    for _ in range(count):
        software = []
        for vendor, product in rng.sample(PRODUCTS, rng.randint(1, 2)):
            version = rng.choice(versions)
            software.append(f"cpe:2.3:a:{vendor}:{product}:{version}:*:*:*:*:*:*:*")
        if rng.random() < 0.5:
            software.append(
                rng.choice(
                    [
                        "cpe:2.3:o:linux:linux_kernel:6.1:*:*:*:*:*:*:*",
                        "cpe:2.3:o:microsoft:windows_10:-:*:*:*:*:*:*:*",
                    ]
                )
            )
        fleet.append(software)
    return fleet


def _expected(records: list[dict[str, Any]], software: list[str]) -> set[str]:
    names = [parse(name) for name in software]
    return {
        r["id"]
        for r in records
        if applies(parse_configurations(r["configurations"]), names, aliases=True) is not None
    }


def _found(session: Session, asset_id: int) -> set[str]:
    return set(
        session.scalars(
            select(Finding.subject).where(
                Finding.asset_id == asset_id,
                Finding.check_id == "vuln.cve",
                Finding.status == FindingStatus.open,
            )
        )
    )


def test_a_full_match_finds_what_evaluating_every_record_finds(session, tmp_path):
    path, records = _feed(tmp_path)
    import_files(session=session, files=[(path, path.name)], actor="tests")
    fleet = _fleet()
    assets = [make_asset(session, software=",".join(software)) for software in fleet]
    vulns.rematch(session=session)
    matched = 0
    for asset, software in zip(assets, fleet, strict=True):
        expected = _expected(records, software)
        assert _found(session, asset.id) == expected, software
        matched += len(expected)
    assert matched > 100  # the feed is not so narrow that nothing matches


def test_version_sort_orders_the_criteria_as_their_versions(session, tmp_path):
    path, _ = _feed(tmp_path)
    import_files(session=session, files=[(path, path.name)], actor="tests")
    rows = session.execute(
        select(
            VulnCpeMatch.criteria,
            VulnCpeMatch.version_start,
            VulnCpeMatch.version_end,
            VulnCpeMatch.version_sort,
            VulnCpeMatch.vulnerable,
        )
    ).all()
    kinds = set()
    for criteria, start, end, stored, vulnerable in rows:
        version = criteria.split(":")[5]
        if not vulnerable or "\\" in criteria:
            assert stored is None
        elif end is not None:
            assert stored == "r" + sort_text(end)
            kinds.add("range")
        elif start is None and version not in {"*", "-"} and "*" not in version:
            assert stored == "e" + sort_text(version)
            kinds.add("exact")
        else:
            assert stored is None
            kinds.add("none")
    assert kinds == {"range", "exact", "none"}
    # The database orders them as versions order (on PostgreSQL, in the column's "C" collation).
    ends = session.scalars(
        select(VulnCpeMatch.version_end)
        .where(VulnCpeMatch.version_end.is_not(None), VulnCpeMatch.version_sort.is_not(None))
        .order_by(VulnCpeMatch.version_sort)
    ).all()
    assert len(set(ends)) > 5
    assert all(compare_versions(a, b) <= 0 for a, b in zip(ends, ends[1:], strict=False))


def test_the_migration_fills_what_matching_reads_for_criteria_imported_before(migrated, tmp_path):
    url, engine = migrated
    path, records = _feed(tmp_path, seed=5, count=60)
    with Session(engine) as session:
        import_files(session=session, files=[(path, path.name)], actor="tests")
        fleet = _fleet(seed=9, count=12)
        assets = [make_asset(session, software=",".join(s)).id for s in fleet]
        filled = session.scalar(
            select(func.count())
            .select_from(VulnCpeMatch)
            .where(VulnCpeMatch.version_sort.is_not(None))
        )
        assert filled
        flags = dict(session.execute(select(VulnCpeMatch.id, VulnCpeMatch.in_complex)).all())
        assert set(flags.values()) == {True, False}
        session.execute(update(VulnCpeMatch).values(version_sort=None, in_complex=True))
        session.commit()
    command.downgrade(alembic_config(engine), "0007")
    command.upgrade(alembic_config(engine), "head")
    again = make_engine(url)
    with Session(again) as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(VulnCpeMatch)
                .where(VulnCpeMatch.version_sort.is_not(None))
            )
            == filled
        )
        # Only the criteria that single-node ORs list are left out of full evaluations.
        refilled = session.execute(select(VulnCpeMatch.id, VulnCpeMatch.in_complex)).all()
        assert dict(refilled) == flags
        vulns.rematch(session=session)
        for asset_id, software in zip(assets, fleet, strict=True):
            assert _found(session, asset_id) == _expected(records, software), software
    again.dispose()


def _simple(number: int, **match: Any) -> dict[str, Any]:
    record = _record(random.Random(0), number)
    record["configurations"] = [
        {
            "nodes": [
                {"operator": "OR", "negate": False, "cpeMatch": [{"vulnerable": True, **match}]}
            ]
        }
    ]
    return record


def test_the_database_cut_keeps_what_sits_on_its_edges(session, tmp_path):
    """The oldest version an asset runs is exactly where a range ends (kept when the end is
    included), an exact version is written another way (1.2 for 1.2.0), a range starts past
    every version, a range ends just below."""
    ris = "cpe:2.3:a:acme:ris:{}:*:*:*:*:*:*:*"
    records = [
        _simple(1, criteria=ris.format("*"), versionEndIncluding="1.10.1"),
        _simple(2, criteria=ris.format("*"), versionEndExcluding="1.10.1"),
        _simple(3, criteria=ris.format("1.2")),
        _simple(4, criteria=ris.format("*"), versionStartIncluding="2.0"),
        _simple(5, criteria=ris.format("*"), versionEndIncluding="1.9.9"),
        _simple(6, criteria=ris.format("*")),
        _simple(7, criteria=ris.format("-")),
        _simple(8, criteria=ris.format("1.10.1")),
    ]
    path = _write(tmp_path / "edges.json", records)
    import_files(session=session, files=[(path, path.name)], actor="tests")
    oldest = make_asset(session, software=ris.format("1.10.1"))
    other = make_asset(session, software=ris.format("1.2.0"))
    unknown = make_asset(session, software=ris.format("-"))
    cve = "CVE-2026-{:05d}".format
    # Alone, 1.10.1 is the oldest version of the product the match is for.
    vulns.rematch(session=session, asset_ids=[oldest.id])
    assert _found(session, oldest.id) == {cve(1), cve(6), cve(8)}
    vulns.rematch(session=session)
    assert _found(session, oldest.id) == {cve(1), cve(6), cve(8)}
    assert _found(session, other.id) == {cve(1), cve(2), cve(3), cve(5), cve(6)}
    assert _found(session, unknown.id) == {cve(6), cve(7)}
