"""Asset benchmark: a 100,000-asset inventory, its list and search pages, CSV import and export.

Not a timed test: it prints a table and writes bench/results/assets-<backend>.json. See
bench/README.md for how to run it and read the figures.

    .venv/bin/python bench/bench_assets.py                        # SQLite, full size
    .venv/bin/python bench/bench_assets.py --backend postgresql   # fresh database, dropped after
    .venv/bin/python bench/bench_assets.py --assets 5000 --import-rows 2000 --repeat 5   # quick

Everything goes through the real code: assets are written by the import service (so search text,
name keys, address and tag rows are exactly what the services produce), pages are fetched from the
Flask app with its test client, logged in as an admin, so routing, queries and templates all count.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import platform
import random
import re
import resource
import secrets
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import netaddr
import sqlalchemy
from sqlalchemy import Engine, create_engine, text
from sqlmodel import SQLModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import inventory.models  # noqa: E402,F401 - registers the tables
from inventory import create_app  # noqa: E402
from inventory.db import make_engine, session_scope  # noqa: E402
from inventory.models import Role  # noqa: E402
from inventory.services import assets as asset_service  # noqa: E402
from inventory.services import transfer  # noqa: E402
from inventory.services.users import LoginPolicy, create_user  # noqa: E402
from inventory.settings import load_settings  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_ASSETS = 100_000
DEFAULT_IMPORT_ROWS = 50_000
TARGET_PAGE_MS = 100.0  # median, SQLite, 100k assets (issue 2)
TARGET_IMPORT_S = 15.0  # 50k rows (issue 2)
ADMIN, PASSWORD = "bench-admin", "bench-password-" + secrets.token_hex(4)

T = TypeVar("T")


# --- synthetic inventory ---------------------------------------------------------------------

SITES = [  # (name, code, DNS suffix)
    ("Lyon Nord", "lyn", "lyon-nord.clinique.local"),
    ("Lyon Sud", "lys", "lyon-sud.clinique.local"),
    ("Villeurbanne", "vil", "villeurbanne.clinique.local"),
    ("Bron", "bro", "bron.clinique.local"),
    ("Vénissieux", "ven", "venissieux.clinique.local"),
    ("Caluire", "cal", "caluire.clinique.local"),
]
ZONES = [
    "Imagerie",
    "Bloc",
    "Urgences",
    "Administration",
    "Laboratoire",
    "Serveurs",
    "DMZ",
    "Consultations",
    "",
]
KINDS = {  # kind: (weight, name prefixes, criticality weights low/medium/high/critical)
    "workstation": (34, ["PC", "Poste"], (5, 4, 1, 0)),
    "viewer-workstation": (10, ["Console", "Visu"], (1, 4, 4, 1)),
    "modality": (12, ["CT", "IRM", "Echo", "Mammo", "Radio", "TEP"], (0, 2, 5, 3)),
    "server": (10, ["SRV", "VM"], (1, 4, 4, 1)),
    "network-device": (8, ["SW", "FW", "AP"], (1, 4, 3, 2)),
    "nas": (3, ["NAS"], (0, 3, 5, 2)),
    "database": (3, ["DB"], (0, 2, 4, 4)),
    "pacs": (2, ["PACS"], (0, 0, 3, 7)),
    "web-viewer": (2, ["WebViewer"], (0, 3, 5, 2)),
    "other": (16, ["Imprimante", "Badgeuse", "Onduleur", "Borne"], (6, 3, 1, 0)),
}
CRITICALITIES = ["low", "medium", "high", "critical"]
TAGS = [
    "dicom",
    "hl7",
    "windows",
    "linux",
    "legacy",
    "biomed",
    "prod",
    "test",
    "backup",
    "vpn",
    "maintenance-ext",
    "rgpd",
    "hds",
    "win7",
    "esxi",
    "wifi",
    "astreinte",
]
OWNERS = [
    "DSI",
    "Service biomédical",
    "Radiologie",
    "Laboratoire",
    "Prestataire Agfa",
    "Prestataire GE",
    "",
]
SERVICES = {
    "modality": ["104/tcp dicom", "22/tcp ssh", "3389/tcp rdp"],
    "pacs": ["104/tcp dicom", "4242/tcp dicom", "443/tcp https", "8042/tcp http"],
    "viewer-workstation": ["104/tcp dicom", "3389/tcp rdp"],
    "web-viewer": ["443/tcp https", "80/tcp http"],
    "database": ["5432/tcp postgresql", "1433/tcp mssql"],
    "server": ["22/tcp ssh", "443/tcp https", "3389/tcp rdp", "161/udp snmp"],
    "network-device": ["22/tcp ssh", "161/udp snmp", "443/tcp https"],
    "nas": ["445/tcp smb", "2049/tcp nfs", "443/tcp https"],
}
CPES = {
    "pacs": [
        "cpe:2.3:a:orthanc-server:orthanc:1.12.1",
        "cpe:2.3:a:dcm4che:dcm4chee-arc-light:5.31.0",
    ],
    "web-viewer": ["cpe:2.3:a:ohif:viewers:3.7.0"],
    "database": ["cpe:2.3:a:postgresql:postgresql:15.4", "cpe:2.3:a:microsoft:sql_server:2019"],
    "server": ["cpe:2.3:o:debian:debian_linux:12", "cpe:2.3:o:microsoft:windows_server_2019:-"],
    "nas": ["cpe:2.3:o:synology:diskstation_manager:7.2"],
    "network-device": ["cpe:2.3:o:cisco:ios:15.2"],
}
DICOM_KINDS = {"modality", "pacs", "viewer-workstation"}
PATIENT_KINDS = {"modality", "pacs", "viewer-workstation", "database", "web-viewer"}


def synthetic_asset(n: int, rng: random.Random) -> dict[str, str]:
    """Asset number `n` as a CSV row (export notation); names and addresses are unique by `n`."""
    kind = rng.choices(list(KINDS), weights=[k[0] for k in KINDS.values()])[0]
    _, prefixes, crit_weights = KINDS[kind]
    site, code, domain = rng.choice(SITES)
    zone = rng.choice(ZONES)
    name = f"{rng.choice(prefixes)}-{code.upper()}-{n:06d}"
    # 10.b.c.d with four addresses reserved per asset, so no two assets share one.
    base = int(netaddr.IPAddress("10.0.0.1")) + 4 * n
    count = rng.choices([1, 2, 3], weights=[70, 22, 8])[0]
    addresses = [str(netaddr.IPAddress(base + i)) for i in range(count)]
    if rng.random() < 0.25:
        prefix = SITES.index((site, code, domain)) + 1
        addresses[-1] = str(netaddr.IPAddress(f"2001:db8:{prefix}::{n >> 16:x}:{n & 0xFFFF:x}"))
    hostnames = [f"{name.lower()}.{domain}"] if rng.random() < 0.6 else []
    if hostnames and rng.random() < 0.1:
        hostnames.append(f"alias-{n}.{domain}")
    dicom = kind in DICOM_KINDS
    tags = rng.sample(TAGS, rng.choice([0, 1, 1, 2, 3]))
    if dicom and "dicom" not in tags:
        tags.append("dicom")
    services = (
        rng.sample(SERVICES[kind], rng.randint(1, len(SERVICES[kind]))) if kind in SERVICES else []
    )
    ae_title = f"{name.split('-')[0].upper()[:5]}_{code.upper()}_{n % 10000:04d}"
    # (The order of the rng calls below is the data set: keep it.)
    return {
        "name": name,
        "addresses": "; ".join(addresses),
        "hostnames": "; ".join(hostnames),
        "mac": ":".join(f"{b:02x}" for b in (0, 0x1B, 0x63, n >> 16 & 255, n >> 8 & 255, n & 255))
        if rng.random() < 0.4
        else "",
        "kind": kind,
        "site": site,
        "zone": zone,
        "owner": rng.choice(OWNERS),
        "criticality": rng.choices(CRITICALITIES, weights=crit_weights)[0],
        "holds_patient_data": "yes" if kind in PATIENT_KINDS and rng.random() < 0.9 else "no",
        "exposure": rng.choices(["internal", "vpn", "public"], weights=[93, 6, 1])[0],
        "expected_services": "; ".join(services),
        "ae_titles": ae_title if dicom else "",
        "software": (
            "; ".join(rng.sample(CPES[kind], 1)) if kind in CPES and rng.random() < 0.7 else ""
        ),
        "tags": "; ".join(tags),
        "audit_interval": rng.choice(["", "", "", "", "24h", "3d"]),
        "notes": (
            f"Contrat de maintenance n°{rng.randint(1000, 9999)}.\nVoir le dossier."
            if rng.random() < 0.1
            else ""
        ),
    }


def synthetic_assets(start: int, count: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(f"{seed}:{start}")
    return [synthetic_asset(n, rng) for n in range(start, start + count)]


def to_csv(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=transfer.COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _split(value: str) -> list[str]:
    return [item for item in value.split("; ") if item]


def expected_matches(
    rows: list[dict[str, str]], *, word: str = "", tag: str = "", zone: str = "", kind: str = ""
) -> int:
    """The count a correct search must find, worked out from the generated rows themselves."""
    word = word.lower()
    found = 0
    for row in rows:
        if word:
            fields = [
                row["name"],
                row["mac"],
                *_split(row["addresses"]),
                *_split(row["hostnames"]),
                *_split(row["tags"]),
                *_split(row["ae_titles"]),
            ]
            if not any(word in f.lower() for f in fields):
                continue
        if tag and tag not in _split(row["tags"]):
            continue
        if (zone and row["zone"] != zone) or (kind and row["kind"] != kind):
            continue
        found += 1
    return found


# --- databases -------------------------------------------------------------------------------


@contextmanager
def fresh_database(backend: str, pg_admin_url: str, keep: bool) -> Iterator[str]:
    """A new, empty database URL: a SQLite file in a temporary folder, or a PostgreSQL database."""
    if backend == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="vigie-bench-"))
        try:
            yield f"sqlite:///{folder / 'bench.db'}"
        finally:
            if keep:
                print(f"kept {folder / 'bench.db'}")
            else:
                for path in folder.iterdir():
                    path.unlink()
                folder.rmdir()
        return
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    name = f"vigie_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield re.sub(r"/[^/]*$", f"/{name}", pg_admin_url)
    finally:
        if keep:
            print(f"kept PostgreSQL database {name}")
        else:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def analyze(engine: Engine) -> None:
    """What PostgreSQL's autovacuum does within a minute of a big import (if it is on).

    Without it the planner still believes the tables empty, and the next import's clash checks
    join the wrong way round. SQLite gets nothing: Vigie does not run ANALYZE.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))


# --- measuring -------------------------------------------------------------------------------


@dataclass
class Timing:
    samples_ms: list[float]
    results: int
    url: str

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p90(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]  # nearest rank


@dataclass
class Run:
    seconds: float
    peak_bytes: int
    value: Any = None


@dataclass
class Report:
    pages: dict[str, Timing] = field(default_factory=dict)
    imports: dict[str, tuple[int, Run]] = field(default_factory=dict)
    other: dict[str, Any] = field(default_factory=dict)


def measured(fn: Callable[[], T], *, trace_memory: bool) -> Run:
    """Wall time of `fn`, and the peak of Python allocations during it (tracemalloc)."""
    if trace_memory:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        value = fn()
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if trace_memory else 0
    finally:
        if trace_memory:
            tracemalloc.stop()
    return Run(seconds, peak, value)


def import_csv(engine: Engine, content: bytes) -> transfer.ImportResult:
    with session_scope(engine) as session:
        return transfer.import_assets(
            session=session, content=content, fmt="csv", actor="bench", source="bench"
        )


def login(client: Any) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token, "no CSRF token on /login"
    response = client.post(
        "/login", data={"csrf_token": token.group(1), "username": ADMIN, "password": PASSWORD}
    )
    assert response.status_code == 302, f"login failed: {response.status_code}"


# "99,500 assets · showing 1 to 50": the first number (thousands separators vary by language).
_COUNT = re.compile(r'id="result-count">\D*(\d[\d,.\s\u202f\xa0]*)')


def time_page(client: Any, url: str, repeat: int) -> Timing:
    """`repeat` timed GETs after two warm-up ones; also reads the result count the page shows."""
    samples: list[float] = []
    results = -1
    for attempt in range(repeat + 2):
        started = time.perf_counter()
        response = client.get(url)
        body = response.get_data(as_text=True)
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, f"{url}: HTTP {response.status_code}"
        if attempt >= 2:
            samples.append(elapsed)
        match = _COUNT.search(body)
        results = int(re.sub(r"\D", "", match.group(1))) if match else 0
    return Timing(samples, results, url)


# --- the benchmark ---------------------------------------------------------------------------


def maxrss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # KiB on Linux


def new_assets_csv(start: int, count: int, seed: int, prefix: str) -> bytes:
    """New assets for the imports into the full database, beyond the first ones' addresses."""
    rows = synthetic_assets(start, count, seed)
    for row in rows:
        row["name"] = prefix + row["name"]
    return to_csv(rows)


def run(args: argparse.Namespace) -> dict[str, Any]:
    report = Report()
    seed = args.seed
    n_import = args.import_rows
    print(f"Generating {max(args.assets, n_import):,} synthetic assets…", flush=True)
    first = synthetic_assets(0, max(args.assets, n_import), seed)
    total = len(first)
    # A few archived assets, as in real life: the lists must skip them.
    archived = set(range(7, total, 200))
    live = [row for i, row in enumerate(first) if i not in archived]
    middle = max(1, -(-len(live) // 50) // 2)  # 50 rows a page (web.page_size)
    address = _split(live[len(live) // 3]["addresses"])[0]
    # (label, URL, how many assets a correct page reports)
    pages: list[tuple[str, str, int]] = [
        ("list, first page", "/assets", len(live)),
        (f"list, page {middle}", f"/assets?page={middle}", len(live)),
        ("list, criticality desc", "/assets?sort=criticality&dir=desc", len(live)),
        ("search name 'mammo'", "/assets?q=mammo", expected_matches(live, word="mammo")),
        (f"search address {address}", f"/assets?q={address}", expected_matches(live, word=address)),
        ("filter tag 'dicom'", "/assets?tag=dicom", expected_matches(live, tag="dicom")),
        (
            "filter zone+kind",
            "/assets?zone=Imagerie&kind=modality",
            expected_matches(live, zone="Imagerie", kind="modality"),
        ),
    ]
    archived_names = [first[i]["name"] for i in sorted(archived)]
    del live

    with fresh_database(args.backend, args.pg_url, args.keep) as url:
        engine = make_engine(url)
        try:
            # The models' schema (create_all), so that an index added to a model is measured
            # before its migration exists; `inventory init` builds the same schema with Alembic.
            SQLModel.metadata.create_all(engine)
            with session_scope(engine) as session:
                create_user(
                    session=session,
                    username=ADMIN,
                    role=Role.admin,
                    password=PASSWORD,
                    policy=LoginPolicy(),
                )

            print(f"Import of {n_import:,} CSV rows into the empty database…", flush=True)
            content = to_csv(first[:n_import])
            done = measured(lambda: import_csv(engine, content), trace_memory=False)
            assert done.value.created == n_import, done.value
            report.imports["empty"] = (n_import, done)

            print(f"Filling up to {total:,} assets…", flush=True)
            started = time.perf_counter()
            analyze(engine)
            for start in range(n_import, total, args.chunk):
                import_csv(engine, to_csv(first[start : start + args.chunk]))
                analyze(engine)
            del first
            with session_scope(engine) as session:
                for name in archived_names:
                    asset = asset_service.find_live_asset(session=session, name=name)
                    assert asset is not None and asset.id is not None
                    asset_service.archive_asset(session=session, asset_id=asset.id, actor="bench")
            analyze(engine)
            report.other["fill_seconds"] = time.perf_counter() - started
            report.other["assets_live"] = total - len(archived_names)
            report.other["maxrss_mb"] = {"filled": maxrss_mb()}

            app = create_app(
                settings=load_settings(
                    {
                        "general": {
                            "environment": "production",
                            "var_dir": tempfile.gettempdir(),
                            "timezone": "UTC",
                        },
                        "database": {"url": url},
                        "web": {"secret_key": secrets.token_urlsafe(48)},
                    },
                    environ={},
                ),
                engine=engine,
            )
            client = app.test_client()
            login(client)
            print(f"Pages, {args.repeat} timed requests each…", flush=True)
            for label, page_url, expected in pages:
                timing = time_page(client, page_url, args.repeat)
                assert timing.results == expected, (
                    f"{label}: the page shows {timing.results} assets, expected {expected}"
                )
                report.pages[label] = timing
            report.other["maxrss_mb"]["pages"] = maxrss_mb()

            print("CSV export of the live assets…", flush=True)

            def export() -> int:
                response = client.get("/assets/export.csv")
                assert response.status_code == 200
                return len(response.get_data())

            exported = measured(export, trace_memory=False)
            report.other["export"] = {
                "rows": report.other["assets_live"],
                "seconds": exported.seconds,
                "bytes": exported.value,
            }
            report.other["maxrss_mb"]["export"] = maxrss_mb()

            print(
                f"Import of {n_import:,} new assets into the {total:,}-asset database…", flush=True
            )
            content = new_assets_csv(2_500_000, n_import, seed, "new-")
            done = measured(lambda: import_csv(engine, content), trace_memory=False)
            assert done.value.created == n_import, done.value
            report.imports["existing"] = (n_import, done)
            report.other["maxrss_mb"]["imports"] = maxrss_mb()

            if not args.no_tracemalloc:
                # tracemalloc slows allocation-heavy code several times over: the peak comes from
                # a third import of the same size, not from the timed ones.
                print(f"Import of {n_import:,} more, under tracemalloc…", flush=True)
                content = new_assets_csv(3_000_000, n_import, seed, "traced-")
                done = measured(lambda: import_csv(engine, content), trace_memory=True)
                assert done.value.created == n_import, done.value
                report.imports["traced"] = (n_import, done)
        finally:
            engine.dispose()

    return summarise(args, report, total)


def summarise(args: argparse.Namespace, report: Report, total: int) -> dict[str, Any]:
    pages = {
        label: {
            "url": t.url,
            "results": t.results,
            "median_ms": round(t.median, 1),
            "p90_ms": round(t.p90, 1),
            "min_ms": round(min(t.samples_ms), 1),
        }
        for label, t in report.pages.items()
    }
    imports = {
        where: {
            "rows": rows,
            "seconds": round(r.seconds, 2),
            "rows_per_second": round(rows / r.seconds),
        }
        for where, (rows, r) in report.imports.items()
        if where != "traced"
    }
    traced = report.imports.get("traced")
    export = report.other["export"]
    worst_page = max(p["median_ms"] for p in pages.values())
    worst_import = max(i["seconds"] for i in imports.values())
    scale = args.import_rows / DEFAULT_IMPORT_ROWS
    return {
        "benchmark": "assets",
        "backend": args.backend,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "sqlalchemy": sqlalchemy.__version__,
            "cpus": os.cpu_count(),
            "platform": platform.platform(terse=True),
            # Other work on the machine skews the figures: compare runs with a low load.
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        },
        "assets": total,
        "assets_live": report.other["assets_live"],
        "repeat": args.repeat,
        "pages": pages,
        "import": imports,
        "export_csv": {
            "rows": export["rows"],
            "seconds": round(export["seconds"], 2),
            "megabytes": round(export["bytes"] / 2**20, 1),
        },
        "fill_seconds": round(report.other["fill_seconds"], 1),
        "memory": {
            "import_tracemalloc_peak_mb": round(traced[1].peak_bytes / 2**20, 1)
            if traced
            else None,
            "import_traced_seconds": round(traced[1].seconds, 2) if traced else None,
            # Peak resident memory of the whole process after each step (traced import last).
            "process_maxrss_mb": {**report.other["maxrss_mb"], "end": maxrss_mb()},
        },
        "targets": {
            "page_median_ms": TARGET_PAGE_MS,
            "import_50k_seconds": TARGET_IMPORT_S,
            "worst_page_median_ms": worst_page,
            # Import seconds scaled to 50k rows when a smaller import was run.
            "worst_import_seconds_per_50k": round(worst_import / scale, 2),
            "pages_met": worst_page < TARGET_PAGE_MS,
            "import_met": worst_import / scale < TARGET_IMPORT_S,
        },
    }


def print_table(result: dict[str, Any]) -> None:
    print()
    print(
        f"Vigie assets benchmark, {result['backend']}, {result['assets']:,} assets "
        f"({result['assets_live']:,} live), {result['repeat']} requests per page"
    )
    print(f"{'page':<36} {'results':>8} {'median ms':>10} {'p90 ms':>8}")
    for label, page in result["pages"].items():
        flag = "" if page["median_ms"] < TARGET_PAGE_MS else "  > target"
        print(
            f"{label:<36} {page['results']:>8,} {page['median_ms']:>10.1f} "
            f"{page['p90_ms']:>8.1f}{flag}"
        )
    print()
    print(f"{'CSV':<36} {'rows':>8} {'seconds':>10} {'rows/s':>8}")
    names = {
        "empty": "import into the empty database",
        "existing": f"import into {result['assets']:,} assets",
    }
    for where, imp in result["import"].items():
        print(
            f"{names[where]:<36} {imp['rows']:>8,} {imp['seconds']:>10.2f} "
            f"{imp['rows_per_second']:>8,}"
        )
    export = result["export_csv"]
    print(
        f"{'export (web, ' + str(export['megabytes']) + ' MB)':<36} {export['rows']:>8,} "
        f"{export['seconds']:>10.2f} {round(export['rows'] / export['seconds']):>8,}"
    )
    print()
    memory = result["memory"]
    if memory["import_tracemalloc_peak_mb"] is not None:
        print(
            f"memory: tracemalloc peak during a {result['import']['empty']['rows']:,}-row import "
            f"{memory['import_tracemalloc_peak_mb']} MB (that import, traced: "
            f"{memory['import_traced_seconds']} s)"
        )
    steps = ", ".join(f"{step} {mb}" for step, mb in memory["process_maxrss_mb"].items())
    print(f"memory: process peak RSS (MB) after each step: {steps}")
    print(f"fill of the database (untimed): {result['fill_seconds']} s")
    targets = result["targets"]
    print(
        f"targets: page median < {TARGET_PAGE_MS:.0f} ms "
        f"{'met' if targets['pages_met'] else 'MISSED'} "
        f"(worst {targets['worst_page_median_ms']} ms); "
        f"import < {TARGET_IMPORT_S:.0f} s per 50k rows "
        f"{'met' if targets['import_met'] else 'MISSED'} "
        f"(worst {targets['worst_import_seconds_per_50k']} s)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--assets", type=int, default=DEFAULT_ASSETS, help="inventory size")
    parser.add_argument(
        "--import-rows", type=int, default=DEFAULT_IMPORT_ROWS, help="rows of each timed CSV import"
    )
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per page")
    parser.add_argument("--chunk", type=int, default=10_000, help="rows per import while filling")
    parser.add_argument("--seed", type=int, default=2, help="seed of the synthetic data")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("INVENTORY_BENCH_POSTGRES_URL", PG_ADMIN_URL),
        help="PostgreSQL database used to create and drop the bench database",
    )
    parser.add_argument(
        "--no-tracemalloc",
        action="store_true",
        help="skip the extra import run under tracemalloc (peak memory)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--output", type=Path, help="results JSON (default: bench/results/…)")
    args = parser.parse_args(argv)
    if args.assets < 1 or args.import_rows < 1 or args.repeat < 1:
        parser.error("--assets, --import-rows and --repeat must be positive")

    result = run(args)
    print_table(result)
    output = args.output
    if output is None:
        # Only full-size runs replace the committed figures; quick runs just print theirs.
        if args.assets != DEFAULT_ASSETS or args.import_rows != DEFAULT_IMPORT_ROWS:
            return 0
        output = RESULTS / f"assets-{args.backend}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"results: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
