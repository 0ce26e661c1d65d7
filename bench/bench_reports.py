"""Report benchmark: 10,000 assets and 100,000 findings; time and peak memory to build the
snapshot and to render it as HTML, PDF, CSV and JSON.

Not a timed test: it prints medians and writes bench/results/reports-<assets>-<findings>.json
and .md.

    .venv/bin/python bench/bench_reports.py                        # 10,000 assets, 100,000 findings
    .venv/bin/python bench/bench_reports.py --assets 1000 --findings 10000 --repeat 1   # quick

The inventory (SQLite file in a temporary folder) is written directly with bulk inserts: assets
over 20 sites and 6 zones, every kind, their addresses and schedule rows, and findings of every
check with the evidence their titles are built from, mostly open, some reopened, accepted or
fixed, 1 asset in 12 overdue for audit. A first report of a weekly schedule is made, then 5 % of
the findings change (fixed, new, accepted) and 50 assets are added, and the second report (the
one measured) is compared with the first: its changes section is full too.

Each measurement runs in its own process, so that its peak RSS (ru_maxrss) is its own:
- *snapshot*: `generate_report` — expire acceptances, read assets and findings, build the
  snapshot, compress and store it (what the scheduler pays once per report);
- *html*, *pdf*, *csv*, *json*: read the stored snapshot back and render it (what a delivery or
  a download pays). Median of `--repeat` runs (a PDF whose first run took over 120 s runs once).

Targets (issue 6): HTML under 5 s, PDF under 60 s, every step under 1 GB.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import inventory.models  # noqa: E402,F401 - registers the tables
from inventory.db import make_engine, upgrade_schema  # noqa: E402
from inventory.models import (  # noqa: E402
    Asset,
    AssetAddress,
    AssetSchedule,
    Finding,
    Report,
    ReportSchedule,
)
from inventory.settings import load_settings  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
NOW = datetime(2026, 11, 9, 6, 0, tzinfo=UTC)
KINDS = [
    "pacs",
    "modality",
    "viewer-workstation",
    "web-viewer",
    "nas",
    "database",
    "server",
    "network-device",
    "workstation",
    "other",
]
ZONES = ["radiology", "cardiology", "office", "servers", "backup", "dmz"]
# check, severity, port, evidence, remediation
CHECKS: list[tuple[str, str, int, dict[str, Any], str]] = [
    (
        "dicom.open-association",
        "high",
        104,
        {"called_ae": "PACS"},
        "Restrict the DICOM service to known AE titles and addresses.",
    ),
    (
        "dicom.query-without-authorization",
        "critical",
        4242,
        {"matches": 12, "attributes": 4},
        "Restrict the DICOM service to known AE titles and addresses.",
    ),
    ("http.cleartext", "high", 80, {}, "Serve it over HTTPS only."),
    ("http.no-authentication", "critical", 8042, {}, "Put it behind a login."),
    ("tls.weak", "medium", 443, {"weaknesses": ["self-signed"]}, "Install a proper certificate."),
    ("ftp.anonymous-login", "high", 21, {}, "Disable anonymous FTP."),
    ("ftp.cleartext", "medium", 21, {}, "Use FTPS or SFTP."),
    (
        "smb.guest-access",
        "high",
        445,
        {"shares_listed": 4, "smbv1": True},
        "Turn off guest access.",
    ),
    ("database.no-authentication", "critical", 6379, {"product": "Redis"}, "Require a password."),
    ("remote-access.exposed", "high", 5900, {"service": "vnc"}, "Close it; use the VPN."),
    ("port.unexpected-open", "medium", 8080, {"service": "http"}, "Close the port."),
    (
        "vuln.cve",
        "high",
        None,
        {"cve": "CVE-2023-1234", "software": "orthanc 1.9"},  # type: ignore[list-item]
        "Update this software.",
    ),
]


def populate(url: str, assets: int, findings: int, seed: int) -> None:
    rng = random.Random(seed)
    engine = make_engine(url)
    upgrade_schema(engine)
    created = NOW - timedelta(days=90)
    with engine.begin() as connection:
        rows = []
        for i in range(1, assets + 1):
            name = f"{rng.choice(KINDS)}-{i:05d}"
            rows.append(
                {
                    "id": i,
                    "name": name,
                    "name_key": name,
                    "kind": rng.choice(KINDS),
                    "site": f"Site {i % 20:02d}",
                    "zone": rng.choice(ZONES),
                    "owner": "IT",
                    "criticality": rng.choice(["low", "medium", "medium", "high", "critical"]),
                    "holds_patient_data": rng.random() < 0.4,
                    "exposure": rng.choice(["internal"] * 8 + ["vpn", "public"]),
                    "mac": "",
                    "notes": "",
                    "audit_interval": None,
                    "hostnames": [],
                    "expected_services": [],
                    "ae_titles": [],
                    "software": [],
                    "optional_checks": [],
                    "search_text": name,
                    "created_at": created,
                    "updated_at": created,
                    "archived_at": None,
                }
            )
        connection.execute(insert(Asset), rows)
        connection.execute(
            insert(AssetAddress),
            [
                {
                    "asset_id": i,
                    "address": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                    "position": 0,
                }
                for i in range(1, assets + 1)
            ],
        )
        connection.execute(
            insert(AssetSchedule),
            [
                {
                    "asset_id": i,
                    "next_due_at": NOW + timedelta(days=1),
                    "rerun": False,
                    "created_at": created,
                    "last_success_at": NOW - timedelta(days=30 if i % 12 == 0 else 1),
                    "last_audit_at": NOW - timedelta(hours=2),
                    "last_outcome": "completed",
                }
                for i in range(1, assets + 1)
            ],
        )
        batch = []
        for n in range(findings):
            asset_id = n % assets + 1
            check, severity, port, evidence, remediation = CHECKS[rng.randrange(len(CHECKS))]
            port = port if port is not None else None
            subject = f"10.0.0.{asset_id % 250}:{port}:{n}"
            status = rng.choices(["open", "reopened", "accepted", "fixed"], [80, 5, 5, 10])[0]
            batch.append(
                {
                    "asset_id": asset_id,
                    "check_id": check,
                    "subject": subject,
                    "address": f"10.{asset_id // 65536}.{asset_id // 256 % 256}.{asset_id % 256}",
                    "port": (port or 0) + n % 7 if port else None,
                    "severity": severity,
                    "title": f"{check} finding",
                    "remediation": remediation,
                    "evidence": evidence,
                    "status": status,
                    "first_seen": NOW - timedelta(days=rng.randrange(1, 80)),
                    "last_seen": NOW - timedelta(days=1),
                    "fixed_at": NOW - timedelta(days=20) if status == "fixed" else None,
                    "accepted_reason": "Vendor patch due next quarter"
                    if status == "accepted"
                    else "",
                    "accepted_until": NOW + timedelta(days=60) if status == "accepted" else None,
                    "accepted_by": "dpo" if status == "accepted" else "",
                }
            )
            if len(batch) == 10_000:
                connection.execute(insert(Finding), batch)
                batch = []
        if batch:
            connection.execute(insert(Finding), batch)
    engine.dispose()


def settings_for(url: str, var: Path) -> Any:
    return load_settings(
        {
            "general": {"environment": "test", "var_dir": str(var), "timezone": "Europe/Paris"},
            "database": {"url": url},
            "web": {"secret_key": "bench-" + "x" * 40},
        },
        environ={},
    )


def first_report(url: str, var: Path, assets: int, seed: int) -> None:
    """The baseline: a weekly schedule's first report; then 5 % of the findings change."""
    from inventory.services import report_schedules as schedule_service
    from inventory.services import reports as report_service

    settings = settings_for(url, var)
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        data = schedule_service.validate_schedule(
            {
                "name": "Weekly re-audit",
                "scope": "all",
                "cron": "0 7 * * mon",
                "formats": ["html", "pdf", "csv", "json"],
                "language": "en",
            },
            languages=["en", "fr"],
        )
        schedule = schedule_service.create_schedule(
            session=session,
            data=data,
            actor="bench",
            settings=settings,
            now=NOW - timedelta(days=8),
        )
        report_service.generate_report(
            session=session,
            settings=settings,
            now=NOW - timedelta(days=7),
            trigger="schedule",
            actor="bench",
            schedule=schedule,
        )
        rng = random.Random(seed + 1)
        total = session.query(Finding).count()
        changed = rng.sample(range(1, total + 1), total // 20)
        third = len(changed) // 3
        session.execute(
            update(Finding)
            .where(Finding.id.in_(changed[:third]))  # type: ignore[union-attr]
            .values(status="fixed", fixed_at=NOW - timedelta(days=2))
        )
        session.execute(
            update(Finding)
            .where(Finding.id.in_(changed[third : 2 * third]))  # type: ignore[union-attr]
            .values(
                status="accepted",
                accepted_reason="Isolated VLAN",
                accepted_by="dpo",
                accepted_until=NOW + timedelta(days=30),
            )
        )
        session.execute(
            update(Finding)
            .where(Finding.id.in_(changed[2 * third :]))  # type: ignore[union-attr]
            .values(first_seen=NOW - timedelta(days=1))
        )
        session.commit()
    engine.dispose()
    # New findings and assets since the first report.
    with make_engine(url).begin() as connection:
        connection.execute(
            insert(Asset),
            [
                {
                    "id": assets + i,
                    "name": f"new-{i}",
                    "name_key": f"new-{i}",
                    "kind": "workstation",
                    "site": "Site 00",
                    "zone": "office",
                    "owner": "",
                    "criticality": "low",
                    "holds_patient_data": False,
                    "exposure": "internal",
                    "mac": "",
                    "notes": "",
                    "audit_interval": None,
                    "hostnames": [],
                    "expected_services": [],
                    "ae_titles": [],
                    "software": [],
                    "optional_checks": [],
                    "search_text": "",
                    "created_at": NOW,
                    "updated_at": NOW,
                    "archived_at": None,
                }
                for i in range(1, 51)
            ],
        )


def child(args: argparse.Namespace) -> None:
    """One measurement, in this process; prints a JSON line."""
    from inventory.services import reports as report_service

    settings = settings_for(args.url, Path(args.var))
    engine = make_engine(args.url)
    with Session(engine, expire_on_commit=False) as session:
        start = time.perf_counter()
        if args.child == "snapshot":
            schedule = session.query(ReportSchedule).one()
            report = report_service.generate_report(
                session=session,
                settings=settings,
                now=NOW,
                trigger="schedule",
                actor="bench",
                schedule=schedule,
            )
            size = report_service.snapshot_text(session=session, report_id=report.id or 0)
            out = {"bytes": len(size), "totals": report.totals}
        else:
            report = session.query(Report).order_by(Report.id.desc()).first()  # type: ignore[attr-defined]
            assert report is not None
            loaded = time.perf_counter()
            snapshot = report_service.load_snapshot(session=session, report_id=report.id or 0)
            load = time.perf_counter() - loaded
            content = report_service.render(
                snapshot, args.child, report_id=report.id, sha256=report.sha256
            )
            out = {"bytes": len(content), "load_seconds": round(load, 2)}
            if args.child == "pdf":
                path = Path(args.var) / "bench.pdf"
                path.write_bytes(content)
                info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True)
                pages = [ln for ln in info.stdout.splitlines() if ln.startswith("Pages:")]
                out["pages"] = int(pages[0].split()[1]) if pages else None
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": round(seconds, 2), "peak_mb": round(peak), **out}))


def measure(what: str, url: str, var: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", what, "--url", url, "--var", str(var)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--child")
    parser.add_argument("--url")
    parser.add_argument("--var")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="vigie-bench-reports-") as tmp:
        var = Path(tmp)
        url = f"sqlite:///{var / 'bench.db'}"
        started = time.perf_counter()
        populate(url, args.assets, args.findings, args.seed)
        first_report(url, var, args.assets, args.seed)
        print(f"inventory and baseline report: {time.perf_counter() - started:.0f} s", flush=True)
        runs: dict[str, list[dict[str, Any]]] = {}
        snap = measure("snapshot", url, var)  # the measured report; later renders read it
        runs["snapshot"] = [snap]
        print(f"snapshot: {snap}", flush=True)
        for fmt in ("html", "csv", "json", "pdf"):
            runs[fmt] = []
            for _ in range(args.repeat):
                result = measure(fmt, url, var)
                runs[fmt].append(result)
                print(f"{fmt}: {result}", flush=True)
                if fmt == "pdf" and result["seconds"] > 120:
                    break
    summary = {
        step: {
            "median_seconds": statistics.median(r["seconds"] for r in results),
            "median_peak_mb": statistics.median(r["peak_mb"] for r in results),
            "runs": results,
        }
        for step, results in runs.items()
    }
    record = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "assets": args.assets,
        "findings": args.findings,
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "totals": runs["snapshot"][0]["totals"],
        "snapshot_json_bytes": runs["snapshot"][0]["bytes"],
        "steps": summary,
    }
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"reports-{args.assets}-{args.findings}"
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    targets = {"html": 5, "pdf": 60}
    lines = [
        f"# Reports: {args.assets:,} assets, {args.findings:,} findings ({record['date']})",
        "",
        f"Snapshot: {record['snapshot_json_bytes'] / 1e6:.1f} MB of JSON; "
        f"{record['totals']['open']:,} open findings, {record['totals']['accepted']:,} accepted, "
        f"{record['totals']['overdue']:,} assets overdue. Median of {args.repeat} runs.",
        "",
        "| step | median s | median peak MB | output | target |",
        "|---|---|---|---|---|",
    ]
    for step, data in summary.items():
        last = data["runs"][-1]
        output = f"{last['bytes'] / 1e6:.1f} MB" + (
            f", {last['pages']} pages" if last.get("pages") else ""
        )
        target = f"< {targets[step]} s, < 1 GB" if step in targets else "< 1 GB"
        lines.append(
            f"| {step} | {data['median_seconds']:.1f} | {data['median_peak_mb']:.0f} | "
            f"{output} | {target} |"
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
