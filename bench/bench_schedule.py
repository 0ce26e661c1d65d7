"""Scheduling benchmark: dispatcher overhead at 100,000 assets, and audits per second by workers.

Not a timed test: it prints medians and writes bench/results/schedule-<backend>.json.

    .venv/bin/python bench/bench_schedule.py                          # SQLite: dispatcher only
    .venv/bin/python bench/bench_schedule.py --backend postgresql     # dispatcher, then workers
    .venv/bin/python bench/bench_schedule.py --assets 10000 --fleet 200 --repeat 3   # quick

1. Dispatcher: `--assets` assets written by the bulk import service, every one due (spread over
   the last day). One dispatcher round is what the dispatcher job does each run: find the most
   overdue batch the windows allow and queue it (`dispatch`), then a worker claims it (`claim`,
   FOR UPDATE SKIP LOCKED on PostgreSQL). Timed `--repeat` times with batches of `--batch`
   (the claimed rows are put back between rounds); also the first backfill of schedule rows.
2. Workers (PostgreSQL, several processes): `--fleet` assets, the first hosts of the audit-engine
   benchmark's loopback fleet (bench/fleet: 127.100.x.y, a clinic's mix of PACS, modalities, web
   viewers, NAS, database servers and workstations answered by the fleet's FTP, HTTP(S), Redis,
   DICOM and SSH responders). Every audit is a full one: the 20 default ports and every probe.
   `inventory scheduler --no-worker` and 1, 2 and 4 `inventory worker --once` processes audit them
   all; the rate is the fleet divided by the span from the first audit's start to the last one's
   end, as recorded in the database (process start-up is not counted). Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, select, text, update
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import inventory.models  # noqa: E402,F401 - registers the tables
from bench.fleet.run import Responders  # noqa: E402
from bench.fleet.spec import LOOPBACK, build_fleet  # noqa: E402
from inventory.db import make_engine, upgrade_schema  # noqa: E402
from inventory.models import AssetSchedule, Audit, AuditOutcome  # noqa: E402
from inventory.scheduler.clock import new_random  # noqa: E402
from inventory.scheduler.windows import Rules  # noqa: E402
from inventory.services import assets as asset_service  # noqa: E402
from inventory.services import schedule as schedule_service  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PG_ADMIN_URL = os.environ.get(
    "INVENTORY_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
INVENTORY = str(Path(sys.executable).with_name("inventory"))


def new_database(backend: str, root: Path) -> tuple[str, Any]:
    if backend == "sqlite":
        return f"sqlite:///{root / 'bench.db'}", lambda: None
    name = f"vigie_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def fill(engine: Engine, count: int, address: Any, prefix: str = "a") -> None:
    with Session(engine) as session:
        for start in range(0, count, 5000):
            items = [
                asset_service.validate_asset({"name": f"{prefix}-{i}", "addresses": address(i)})
                for i in range(start, min(count, start + 5000))
            ]
            asset_service.create_assets(session=session, items=items, actor="bench")
            session.commit()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))


def dispatcher_rounds(engine: Engine, repeat: int, batch: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    with Session(engine) as session:
        started = time.perf_counter()
        created = schedule_service.backfill(session=session, now=now, spread=0, rng=new_random(1))
        session.commit()
        backfill_s = time.perf_counter() - started
        rng = random.Random(5)
        ids = session.scalars(select(AssetSchedule.asset_id)).all()
        for start in range(0, len(ids), 5000):
            session.execute(  # ORM bulk UPDATE by primary key
                update(AssetSchedule),
                [
                    {"asset_id": i, "next_due_at": now - timedelta(seconds=rng.uniform(0, 86400))}
                    for i in ids[start : start + 5000]
                ],
            )
            session.commit()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE asset_schedule"))
    dispatch_s, claim_s = [], []
    for _ in range(repeat):
        with Session(engine) as session:
            t0 = time.perf_counter()
            result = schedule_service.dispatch(
                session=session, now=now, rules=Rules(), max_running=batch, batch_size=batch
            )
            t1 = time.perf_counter()
            claims = schedule_service.claim(
                session=session, worker_id="bench", limit=batch, now=now, claim_seconds=60
            )
            t2 = time.perf_counter()
            assert result.queued == batch and len(claims) == batch, (result, len(claims))
            dispatch_s.append(t1 - t0)
            claim_s.append(t2 - t1)
            # Put them back, still due (the next round finds the same kind of work).
            session.execute(
                update(AssetSchedule)
                .where(AssetSchedule.claimed_by == "bench")
                .values(
                    claimed_by=None,
                    claim_token=None,
                    claimed_at=None,
                    claim_expires_at=None,
                    queued_at=None,
                )
            )
            session.commit()
    return {
        "schedule_rows_created": created,
        "backfill_s": round(backfill_s, 3),
        "batch": batch,
        "dispatch_median_ms": round(statistics.median(dispatch_s) * 1000, 1),
        "claim_median_ms": round(statistics.median(claim_s) * 1000, 1),
        "round_median_ms": round(
            statistics.median(d + c for d, c in zip(dispatch_s, claim_s, strict=True)) * 1000, 1
        ),
    }


def fleet_addresses(fleet: int) -> list[str]:
    """The first `fleet` hosts of the audit benchmark's loopback fleet (same seed, same mix)."""
    return [host.address for host in build_fleet(fleet, LOOPBACK)]


def workers_rate(url: str, engine: Engine, fleet: int, workers: int, concurrency: int) -> float:
    with Session(engine) as session:
        for table in ("finding_event", "finding", "observed_service", "audit"):
            session.execute(text(f"DELETE FROM {table}"))
        session.execute(
            update(AssetSchedule).values(
                next_due_at=datetime.now(UTC) - timedelta(minutes=1),
                queued_at=None,
                claimed_by=None,
                claim_token=None,
                claimed_at=None,
                claim_expires_at=None,
            )
        )
        session.commit()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVENTORY_")}
    env.update(
        {
            "INVENTORY_DATABASE_URL": url,
            "INVENTORY_SCHEDULER_DISPATCH_INTERVAL": "0.2",
            "INVENTORY_SCHEDULER_POLL_INTERVAL": "0.1",
            "INVENTORY_SCHEDULER_MAX_CONCURRENT_AUDITS": "64",
            "INVENTORY_SCHEDULER_MAX_NEW_CONNECTIONS_PER_SECOND": "100000",
        }
    )
    with tempfile.TemporaryDirectory() as cwd:
        quiet = {"cwd": cwd, "env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        scheduler = subprocess.Popen([INVENTORY, "scheduler", "--no-worker"], **quiet)  # type: ignore[call-overload]
        procs = [
            subprocess.Popen(  # type: ignore[call-overload]
                [INVENTORY, "worker", "--once", "--concurrency", str(concurrency), "--id", f"b{n}"],
                **quiet,
            )
            for n in range(workers)
        ]
        for proc in procs:
            proc.wait(600)
        scheduler.terminate()
        scheduler.wait(60)
    with Session(engine) as session:
        count, first, last = session.execute(
            select(func.count(), func.min(Audit.started_at), func.max(Audit.finished_at))
        ).one()
        reached = session.scalar(
            select(func.count()).where(Audit.outcome == AuditOutcome.completed)
        )
    assert count == fleet, f"{count} audits for {fleet} assets"
    assert reached == fleet, f"only {reached} of {fleet} audits reached their asset"
    return fleet / (last - first).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--fleet", type=int, default=400)
    parser.add_argument("--worker-counts", default="1,2,4")
    parser.add_argument("--concurrency", type=int, default=8, help="audits at once per worker")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "backend": args.backend,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "assets": args.assets,
    }
    with tempfile.TemporaryDirectory() as root:
        url, drop = new_database(args.backend, Path(root))
        try:
            engine = make_engine(url)
            upgrade_schema(engine)
            t0 = time.perf_counter()
            fill(engine, args.assets, lambda i: f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
            print(f"{args.assets} assets written in {time.perf_counter() - t0:.1f} s", flush=True)
            results["dispatcher"] = dispatcher_rounds(engine, args.repeat, args.batch)
            print("dispatcher:", json.dumps(results["dispatcher"]), flush=True)
            engine.dispose()
            if args.backend == "postgresql" and args.fleet:
                drop()
                url, drop = new_database(args.backend, Path(root))
                engine = make_engine(url)
                upgrade_schema(engine)
                addresses = fleet_addresses(args.fleet)
                fill(engine, args.fleet, addresses.__getitem__, prefix="fleet")
                with Session(engine) as session:
                    schedule_service.backfill(
                        session=session, now=datetime.now(UTC), spread=0, rng=new_random(1)
                    )
                    session.commit()
                rates: dict[str, Any] = {}
                with Responders(args.fleet, LOOPBACK, seed=20240):
                    for n in [int(x) for x in args.worker_counts.split(",")]:
                        runs = [
                            workers_rate(url, engine, args.fleet, n, args.concurrency)
                            for _ in range(3)
                        ]
                        rates[str(n)] = {
                            "audits_per_s_median": round(statistics.median(runs), 1),
                            "runs": [round(r, 1) for r in runs],
                            "load_average_1min": round(os.getloadavg()[0], 2),
                        }
                        print(f"{n} worker(s): {rates[str(n)]}", flush=True)
                results["workers"] = {
                    "fleet": args.fleet,
                    "fleet_source": "bench/fleet (the audit-engine benchmark's loopback fleet)",
                    "concurrency_each": args.concurrency,
                    **rates,
                }
                engine.dispose()
        finally:
            drop()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"schedule-{args.backend}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
