"""Known vulnerabilities at full size: a synthetic 300,000-CVE NVD feed, its import, the database
size, and matching 10,000 assets: all at once, and after a day of feed changes.

Not a timed test: it prints a table and writes bench/results/vulns-<backend>.json.

    .venv/bin/python bench/bench_vulns.py                          # SQLite, full size
    .venv/bin/python bench/bench_vulns.py --backend postgresql     # fresh database, dropped after
    .venv/bin/python bench/bench_vulns.py --cves 20000 --assets 1000   # quick look

The feed is shaped like the real sample (shared/data/vulns/nvd-sample.json): each synthetic
record copies the configurations of a randomly drawn real record (so the mix of single-node ORs,
"running on" ANDs, platform criteria, exact versions and ranges, and records without any
configuration is the sample's), with the products renamed to synthetic ones drawn from a
Zipf-like popularity (a few products with thousands of CVEs, a long tail with one or two).
Versions follow time: a record of year Y has its ranges end at a version released in Y, and the
criteria that match every version (what the NVD writes when it cannot tell) name tail products.
Descriptions, references and CVSS blocks are copied too. The files are written gzip-compressed
(the importer reads gzip as it is) in pages of 2,000 records, as `inventory feeds update` would
store them, with a KEV catalog of 1,500 of the CVEs.

The fleet: 10,000 assets with 1 to 4 CPE names each; four in five share one of 500 set-ups (a
workstation image, a modality model); three set-ups in four run versions of this year or last,
the others older ones (legacy systems, which collect most findings).

Steps, each timed: (1) import of the whole feed and the KEV catalog (one transaction, as
`inventory feeds import`), and the database size; (2) the first match of the fleet (every
finding new); (3) `--repeat` full re-matches with nothing new (`inventory feeds rematch`, what a
settings change costs: every asset matched again against every record, its findings compared
through the digest kept per asset), median reported; (4) a day of changes, `--update` records
analysed again plus 20 new KEV entries, imported and matched as `inventory feeds import` does
(only what changed is matched), then that re-match alone again; (5) the same files once more
(nothing changed). On PostgreSQL the import, the new fleet and the first match are each followed by
VACUUM ANALYZE, as autovacuum would do within a minute (the test server runs with autovacuum off).
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from inventory.db import make_engine, upgrade_schema  # noqa: E402
from inventory.models import Finding, VulnCpeMatch  # noqa: E402
from inventory.services import assets as asset_service  # noqa: E402
from inventory.services import vulns  # noqa: E402
from inventory.services.vuln_import import import_files  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "vulns" / "nvd-sample.json"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_CVES = 300_000
DEFAULT_ASSETS = 10_000
PAGE = 2000


# --- the synthetic feed ---------------------------------------------------------------------


FIRST_YEAR, THIS_YEAR = 1999, 2026


def _major(year: int) -> int:
    """Versions grow with time: major 1 in 1999, 12 now (every synthetic product alike)."""
    return 1 + (year - FIRST_YEAR) * 11 // (THIS_YEAR - FIRST_YEAR)


def _version(rng: random.Random, year: int) -> str:
    """A version some product shipped in `year`."""
    return f"{_major(year)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}"


def _open_ended(match: dict[str, Any]) -> bool:
    """A criterion that every later version matches: `*` with no upper bound."""
    version = match["criteria"].split(":")[5]
    return version == "*" and not any(k.startswith("versionEnd") for k in match)


class Feed:
    """Synthetic records shaped like the sample's."""

    def __init__(self, products: int, seed: int) -> None:
        self.rng = random.Random(seed)
        sample = json.loads(SAMPLE.read_text())["vulnerabilities"]
        self.templates = [v["cve"] for v in sample]
        self.products = [
            ("o" if i % 17 == 0 else "a", f"vendor{i // 3}", f"product{i}") for i in range(products)
        ]
        # Zipf-like popularity: product i gets weight 1/(i+10).
        self.weights = [1.0 / (i + 10) for i in range(products)]
        self.cumulative: list[float] = []
        total = 0.0
        for w in self.weights:
            total += w
            self.cumulative.append(total)

    def product(self) -> tuple[str, str, str]:
        point = self.rng.random() * self.cumulative[-1]
        lo, hi = 0, len(self.cumulative) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self.cumulative[mid] < point:
                lo = mid + 1
            else:
                hi = mid
        return self.products[lo]

    def tail_product(self) -> tuple[str, str, str]:
        """A product from the long tail (one with few records)."""
        return self.products[self.rng.randrange(len(self.products) // 10, len(self.products))]

    def record(self, n: int) -> dict[str, Any]:
        template = self.rng.choice(self.templates)
        cve = copy.deepcopy(template)
        year = FIRST_YEAR + n % (THIS_YEAR - FIRST_YEAR + 1)
        cve["id"] = f"CVE-{year}-{100000 + n}"
        cve["lastModified"] = f"{2000 + n % 26}-0{1 + n % 9}-1{n % 10}T10:00:00.000"
        matches = [
            match
            for conf in cve.get("configurations", [])
            for node in conf["nodes"]
            for match in node["cpeMatch"]
        ]
        # Criteria that every version matches are what the NVD writes when it cannot tell
        # (mostly small vendors' firmware); the popular products it has analysed get ranges.
        # Keeping those criteria on tail products keeps the synthetic feed like the real one.
        open_ended = {tuple(m["criteria"].split(":")[3:5]) for m in matches if _open_ended(m)}
        names: dict[tuple[str, str], tuple[str, str, str]] = {}
        for match in matches:
            parts = match["criteria"].split(":")
            key = (parts[3], parts[4])
            if key not in names:
                names[key] = self.tail_product() if key in open_ended else self.product()
            part, vendor, product = names[key]
            parts[2], parts[3], parts[4] = part, vendor, product
            if parts[5] not in {"*", "-"}:
                parts[5] = _version(self.rng, max(FIRST_YEAR, year - self.rng.randint(0, 3)))
            match["criteria"] = ":".join(parts)
            # A range ends at the version of the record's year (the fix), and starts a few
            # years earlier.
            for bound in ("versionStartIncluding", "versionStartExcluding"):
                if bound in match:
                    match[bound] = f"{_major(max(FIRST_YEAR, year - self.rng.randint(1, 8)))}.0"
            for bound in ("versionEndIncluding", "versionEndExcluding"):
                if bound in match:
                    match[bound] = _version(self.rng, year)
            match["matchCriteriaId"] = str(uuid.UUID(int=self.rng.getrandbits(128)))
        return {"cve": cve}

    def write(self, folder: Path, count: int) -> list[Path]:
        files = []
        for start in range(0, count, PAGE):
            size = min(PAGE, count - start)
            page = {
                "resultsPerPage": size,
                "startIndex": start,
                "totalResults": count,
                "format": "NVD_CVE",
                "version": "2.0",
                "timestamp": "2026-11-25T00:00:00.000",
                "vulnerabilities": [self.record(start + i) for i in range(size)],
            }
            path = folder / f"nvd-{start // PAGE:05d}.json.gz"
            with gzip.open(path, "wt", compresslevel=1) as handle:
                json.dump(page, handle)
            files.append(path)
        return files

    def kev(self, folder: Path, count: int, entries: int, name: str, released: str) -> Path:
        """A KEV catalog naming `entries` of the feed's CVEs (CISA's holds about 1,500); a later
        catalog keeps the earlier one's entries and adds some, as CISA's does."""
        picks = getattr(self, "kev_picks", [])
        while len(picks) < min(entries, count):
            n = self.rng.randrange(count)
            if n not in picks:
                picks.append(n)
        self.kev_picks = picks
        vulnerabilities = [
            {
                "cveID": f"CVE-{FIRST_YEAR + n % (THIS_YEAR - FIRST_YEAR + 1)}-{100000 + n}",
                "vendorProject": "Synthetic",
                "product": "Product",
                "vulnerabilityName": "Synthetic exploited vulnerability",
                "dateAdded": "2024-05-20",
                "shortDescription": "Synthetic.",
                "requiredAction": "Apply updates per vendor instructions.",
                "dueDate": "2024-06-10",
                "knownRansomwareCampaignUse": "Unknown",
            }
            for n in sorted(picks)
        ]
        path = folder / name
        path.write_text(
            json.dumps(
                {
                    "title": "CISA Catalog of Known Exploited Vulnerabilities",
                    "catalogVersion": released[:10].replace("-", "."),
                    "dateReleased": released,
                    "count": len(vulnerabilities),
                    "vulnerabilities": vulnerabilities,
                }
            )
        )
        return path

    def update(self, folder: Path, count: int, changed: int) -> Path:
        """A day of NVD changes: `changed` records of the feed analysed again (new
        lastModified, their versions moved), as `inventory feeds update` downloads them."""
        picks = sorted(self.rng.sample(range(count), min(changed, count)))
        records = []
        for n in picks:
            record = self.record(n)
            record["cve"]["lastModified"] = "2026-11-26T10:00:00.000"
            records.append(record)
        page = {
            "resultsPerPage": len(records),
            "startIndex": 0,
            "totalResults": len(records),
            "format": "NVD_CVE",
            "version": "2.0",
            "timestamp": "2026-11-26T12:00:00.000",
            "vulnerabilities": records,
        }
        path = folder / "nvd-update.json.gz"
        with gzip.open(path, "wt", compresslevel=1) as handle:
            json.dump(page, handle)
        return path

    def fleet(self, assets: int, profiles: int) -> list[list[str]]:
        """Software of each asset: most run one of `profiles` shared set-ups (a workstation
        image, a modality model, a PACS release); one in five has a set-up of its own."""
        shared = [self.software() for _ in range(profiles)]
        return [
            self.rng.choice(shared) if self.rng.random() < 0.8 else self.software()
            for _ in range(assets)
        ]

    def software(self) -> list[str]:
        """One to four products with their versions: three set-ups in four run versions of
        this year or last (a maintained fleet), the others older ones (legacy systems)."""
        legacy = self.rng.random() < 0.25
        names = []
        for _ in range(self.rng.randint(1, 4)):
            part, vendor, product = self.product()
            year = self.rng.randint(2008, 2023) if legacy else self.rng.randint(2025, THIS_YEAR)
            version = _version(self.rng, year)
            name = f"cpe:2.3:{part}:{vendor}:{product}:{version}:*:*:*:*:*:*:*"
            if name not in names:
                names.append(name)
        return names


# --- databases ------------------------------------------------------------------------------


@contextmanager
def fresh_database(backend: str, pg_admin_url: str) -> Iterator[tuple[str, Path | None]]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="vigie-bench-") as folder:
            path = Path(folder) / "bench.db"
            yield f"sqlite:///{path}", path
        return
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    name = f"vigie_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield re.sub(r"/[^/]*$", f"/{name}", pg_admin_url), None
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def database_bytes(engine: Any, path: Path | None) -> int:
    if path is not None:
        return path.stat().st_size + sum(
            p.stat().st_size for p in path.parent.glob(path.name + "-*")
        )
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_database_size(current_database())")).scalar())


def analyze(engine: Any) -> None:
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))


# --- the run --------------------------------------------------------------------------------


def _timed(action: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = action()
    return value, time.perf_counter() - started


def run(args: argparse.Namespace) -> dict[str, Any]:
    feed = Feed(products=args.products, seed=args.seed)
    result: dict[str, Any] = {
        "backend": args.backend,
        "cves": args.cves,
        "assets": args.assets,
        "products": args.products,
        "profiles": args.profiles,
        "daily_update_records": args.update,
    }
    with tempfile.TemporaryDirectory(prefix="vigie-feed-") as folder:
        started = time.perf_counter()
        files = feed.write(Path(folder), args.cves)
        kev = feed.kev(Path(folder), args.cves, 1500, "kev.json", "2026-11-25T17:00:00.000Z")
        result["generate_s"] = round(time.perf_counter() - started, 1)
        result["feed_gzip_mb"] = round(sum(f.stat().st_size for f in files) / 2**20, 1)
        print(f"feed: {len(files)} files, {result['feed_gzip_mb']} MB gzip", flush=True)
        with fresh_database(args.backend, args.pg_url) as (url, path):
            engine = make_engine(url)
            upgrade_schema(engine)
            # 1. The whole feed and the KEV catalog, in one transaction (no asset yet).
            with Session(engine) as session:
                results, seconds = _timed(
                    lambda: import_files(
                        session=session,
                        files=[(f, f.name) for f in [*files, kev]],
                        actor="bench",
                    )
                )
                result["import_s"] = round(seconds, 1)
                result["imported"] = sum(r.created for r in results)
                result["criteria_rows"] = session.scalar(
                    select(func.count()).select_from(VulnCpeMatch)
                )
            print(f"import: {result['import_s']} s", flush=True)
            analyze(engine)
            result["database_mb_after_import"] = round(database_bytes(engine, path) / 2**20, 1)
            # 2. The fleet, then its first match (every finding is new).
            with Session(engine) as session:
                items = [
                    asset_service.validate_asset(
                        {
                            "name": f"asset-{n}",
                            "addresses": f"10.{n // 65000}.{(n // 250) % 250}.{n % 250 + 1}",
                            "software": software,
                        }
                    )
                    for n, software in enumerate(feed.fleet(args.assets, args.profiles))
                ]
                asset_service.create_assets(session=session, items=items, actor="bench")
                session.commit()
            analyze(engine)
            with Session(engine) as session:
                first, seconds = _timed(lambda: vulns.rematch(session=session))
                result["first_match_s"] = round(seconds, 1)
                result["first_match"] = first.__dict__
                result["findings"] = session.scalar(select(func.count()).select_from(Finding))
            print(f"first match: {result['first_match_s']} s, {first}", flush=True)
            analyze(engine)
            result["database_mb_with_findings"] = round(database_bytes(engine, path) / 2**20, 1)
            # 3. Every asset against every record again, nothing new (after a settings change).
            timings = []
            for _ in range(args.repeat):
                with Session(engine) as session:
                    again, seconds = _timed(lambda: vulns.rematch(session=session))
                    timings.append(seconds)
                    assert again.opened == again.fixed == 0, again
            result["full_rematch_s"] = [round(t, 2) for t in timings]
            result["full_rematch_median_s"] = round(statistics.median(timings), 2)
            print(f"full re-match: median {result['full_rematch_median_s']} s", flush=True)
            # 4. A day of feed changes: the import re-matches every asset against what changed.
            update = feed.update(Path(folder), args.cves, args.update)
            newer_kev = feed.kev(
                Path(folder), args.cves, 1520, "kev-next.json", "2026-11-26T17:00:00.000Z"
            )
            with Session(engine) as session:
                (results, daily), seconds = _timed(
                    lambda: vulns.import_and_rematch(
                        session=session,
                        files=[(update, update.name), (newer_kev, "kev")],
                        actor="b",
                    )
                )
                result["daily_update_s"] = round(seconds, 2)
                result["daily_update"] = {
                    "changed_records": sum(len(r.changed) for r in results),
                    **daily.__dict__,
                }
            with Session(engine) as session:
                again, seconds = _timed(
                    lambda: vulns.rematch(
                        session=session, cves=set().union(*(r.changed for r in results))
                    )
                )
                result["daily_rematch_s"] = round(seconds, 2)
            print(f"daily update: {result['daily_update_s']} s", flush=True)
            # 5. The same files again: nothing changed, nothing to match.
            with Session(engine) as session:
                _, seconds = _timed(
                    lambda: vulns.import_and_rematch(
                        session=session,
                        files=[(update, update.name), (newer_kev, "kev")],
                        actor="b",
                    )
                )
                result["same_files_again_s"] = round(seconds, 2)
            engine.dispose()
    result["machine"] = {
        "cpus": os.cpu_count(),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--cves", type=int, default=DEFAULT_CVES)
    parser.add_argument("--assets", type=int, default=DEFAULT_ASSETS)
    parser.add_argument("--products", type=int, default=30_000, help="distinct synthetic products")
    parser.add_argument("--repeat", type=int, default=3, help="timed full re-matches")
    parser.add_argument("--update", type=int, default=2000, help="records in the daily update")
    parser.add_argument("--profiles", type=int, default=500, help="shared software set-ups")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--pg-url", default=os.environ.get("INVENTORY_BENCH_POSTGRES_URL", PG_ADMIN_URL)
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    result = run(args)
    for key, value in result.items():
        if key != "full_rematch_s":
            print(f"{key:>18}: {value}")
    output = args.output
    if output is None:
        if args.cves != DEFAULT_CVES or args.assets != DEFAULT_ASSETS:
            return 0
        output = RESULTS / f"vulns-{args.backend}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
