"""Known vulnerabilities at full size: a synthetic 300,000-CVE NVD feed, its import, the database
size, and re-matching 10,000 assets.

Not a timed test: it prints a table and writes bench/results/vulns-<backend>.json.

    .venv/bin/python bench/bench_vulns.py                          # SQLite, full size
    .venv/bin/python bench/bench_vulns.py --backend postgresql     # fresh database, dropped after
    .venv/bin/python bench/bench_vulns.py --cves 20000 --assets 1000   # quick look

The feed is shaped like the real sample (shared/data/vulns/nvd-sample.json): each synthetic
record copies the configurations of a randomly drawn real record (so the mix of single-node ORs,
"running on" ANDs, platform criteria, exact versions and ranges, and records without any
configuration is the sample's), with the products renamed to synthetic ones drawn from a
Zipf-like popularity (a few products with thousands of CVEs, a long tail with one or two) and
the versions moved. Descriptions, references and CVSS blocks are copied too. The file is written
gzip-compressed (the importer reads gzip as it is) in pages of 2,000 records, as
`inventory feeds update` would store them.

Steps, each timed: import of the whole feed (one transaction, as `inventory feeds import`);
database size; 10,000 assets created with 1 to 4 CPE names each (versions mostly recent, like a
maintained fleet; four assets in five share one of 500 set-ups, as identical workstations and
modality models do); the first re-match (creates the findings); then `--repeat` re-matches with
nothing new (the figure that a feed import or a form edit pays), median reported.
On PostgreSQL the import is followed by VACUUM ANALYZE, as autovacuum would do within a minute
(the test server runs with autovacuum off).
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


def _version(rng: random.Random) -> str:
    return f"{rng.randint(1, 12)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}"


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

    def record(self, n: int) -> dict[str, Any]:
        template = self.rng.choice(self.templates)
        cve = copy.deepcopy(template)
        year = 1999 + n % 27
        cve["id"] = f"CVE-{year}-{100000 + n}"
        cve["lastModified"] = f"{2000 + n % 26}-0{1 + n % 9}-1{n % 10}T10:00:00.000"
        names: dict[tuple[str, str], tuple[str, str, str]] = {}
        for conf in cve.get("configurations", []):
            for node in conf["nodes"]:
                for match in node["cpeMatch"]:
                    parts = match["criteria"].split(":")
                    key = (parts[3], parts[4])
                    if key not in names:
                        names[key] = self.product()
                    part, vendor, product = names[key]
                    parts[2], parts[3], parts[4] = part, vendor, product
                    if parts[5] not in {"*", "-"}:
                        parts[5] = _version(self.rng)
                    match["criteria"] = ":".join(parts)
                    for bound in ("versionStartIncluding", "versionStartExcluding"):
                        if bound in match:
                            match[bound] = f"{self.rng.randint(1, 6)}.0"
                    for bound in ("versionEndIncluding", "versionEndExcluding"):
                        if bound in match:
                            match[bound] = _version(self.rng)
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

    def fleet(self, assets: int, profiles: int) -> list[list[str]]:
        """Software of each asset: most run one of `profiles` shared set-ups (a workstation
        image, a modality model, a PACS release); one in five has a set-up of its own."""
        shared = [self.software() for _ in range(profiles)]
        return [
            self.rng.choice(shared) if self.rng.random() < 0.8 else self.software()
            for _ in range(assets)
        ]

    def software(self) -> list[str]:
        names = []
        for _ in range(self.rng.randint(1, 4)):
            part, vendor, product = self.product()
            major = self.rng.choice([12, 12, 12, 11, 10, 8, 5])  # mostly recent versions
            version = f"{major}.{self.rng.randint(0, 20)}.{self.rng.randint(0, 30)}"
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    feed = Feed(products=args.products, seed=args.seed)
    result: dict[str, Any] = {
        "backend": args.backend,
        "cves": args.cves,
        "assets": args.assets,
        "products": args.products,
        "profiles": args.profiles,
    }
    with tempfile.TemporaryDirectory(prefix="vigie-feed-") as folder:
        started = time.perf_counter()
        files = feed.write(Path(folder), args.cves)
        result["generate_s"] = round(time.perf_counter() - started, 1)
        result["feed_gzip_mb"] = round(sum(f.stat().st_size for f in files) / 2**20, 1)
        print(f"feed: {len(files)} files, {result['feed_gzip_mb']} MB gzip", flush=True)
        with fresh_database(args.backend, args.pg_url) as (url, path):
            engine = make_engine(url)
            upgrade_schema(engine)
            with Session(engine) as session:
                started = time.perf_counter()
                results = import_files(
                    session=session, files=[(f, f.name) for f in files], actor="bench"
                )
                result["import_s"] = round(time.perf_counter() - started, 1)
                result["imported"] = sum(r.created for r in results)
                result["criteria_rows"] = session.scalar(
                    select(func.count()).select_from(VulnCpeMatch)
                )
            print(f"import: {result['import_s']} s", flush=True)
            analyze(engine)
            result["database_mb"] = round(database_bytes(engine, path) / 2**20, 1)
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
                started = time.perf_counter()
                first = vulns.rematch(session=session)
                result["first_rematch_s"] = round(time.perf_counter() - started, 2)
                result["findings"] = session.scalar(select(func.count()).select_from(Finding))
                result["first_rematch"] = first.__dict__
            analyze(engine)
            timings = []
            for _ in range(args.repeat):
                with Session(engine) as session:
                    started = time.perf_counter()
                    again = vulns.rematch(session=session)
                    timings.append(time.perf_counter() - started)
                    assert again.opened == again.fixed == 0, again
            result["rematch_s"] = [round(t, 2) for t in timings]
            result["rematch_median_s"] = round(statistics.median(timings), 2)
            engine.dispose()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--cves", type=int, default=DEFAULT_CVES)
    parser.add_argument("--assets", type=int, default=DEFAULT_ASSETS)
    parser.add_argument("--products", type=int, default=30_000, help="distinct synthetic products")
    parser.add_argument("--repeat", type=int, default=5, help="timed re-matches")
    parser.add_argument("--profiles", type=int, default=500, help="shared software set-ups")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--pg-url", default=os.environ.get("INVENTORY_BENCH_POSTGRES_URL", PG_ADMIN_URL)
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    result = run(args)
    for key, value in result.items():
        if key != "rematch_s":
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
