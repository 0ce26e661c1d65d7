"""Audit-engine benchmark: Vigie against nmap on a fleet of hosts, on loopback and on a WAN.

Not a timed test: it prints a table and writes bench/results/audit-<date>.md (and .json). See
bench/README.md for how to run it and read the figures.

    .venv/bin/python bench/bench_audit.py                   # 1,000 hosts, loopback and WAN
    .venv/bin/python bench/bench_audit.py --hosts 10000
    .venv/bin/python bench/bench_audit.py --quick           # 200 hosts, one run each, loopback

For each network it starts the fleet (bench/fleet), then measures, each in its own process so
that CPU and peak memory are that tool's alone (os.wait4):
- the port stage: Vigie's `tcp` probe through `audit_many`, against `nmap -sT -Pn -n`;
- the whole audit: every Vigie probe through `audit_many`, against `nmap -sT -sV -Pn -n` with
  the NSE scripts that check the same things;
and compares the verdicts (open ports, anonymous FTP, Redis and HTTP without authentication,
DICOM accepting any AE title) of both tools with each other and with the fleet's truth.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fleet.responders import raise_open_files  # noqa: E402
from bench.fleet.run import Responders  # noqa: E402
from bench.fleet.spec import LOOPBACK, SCANNED_PORTS, WAN, Host, Network, build_fleet  # noqa: E402
from bench.fleet.wan import Wan, WanError  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SEED = 20240
NMAP_SCRIPTS = (
    "dicom-ping,ftp-anon,http-title,http-auth,ssl-cert,redis-info,mongodb-databases,smb-enum-shares"
)
VERDICTS = ("open", "ftp_anonymous", "redis_no_auth", "http_no_auth", "dicom_any_ae")
CHECK_OF = {  # Vigie's check id behind each verdict
    "ftp_anonymous": "ftp.anonymous-login",
    "redis_no_auth": "database.no-authentication",
    "http_no_auth": "http.no-authentication",
    "dicom_any_ae": "dicom.open-association",
}
NETWORKS = {"loopback": LOOPBACK, "wan": WAN}


# --- the Vigie side (runs in a child process) ------------------------------------------------


def vigie_child(args: argparse.Namespace) -> None:
    """Audit the fleet with audit_many; writes one JSON line of verdicts per host, then a
    summary line with the time the audits took (imports and set-up excluded)."""
    import netaddr

    from inventory.audit.engine import audit_many
    from inventory.audit.probes.base import PortState, ProbeOutcome, Target
    from inventory.settings import load_settings

    raise_open_files()
    settings = load_settings(environ={}).audit.model_copy(
        update={"max_connections": args.max_connections}
    )
    if tuple(settings.default_ports) != SCANNED_PORTS:
        raise SystemExit("config default_ports changed: update bench/fleet/spec.py SCANNED_PORTS")
    hosts = build_fleet(args.hosts, NETWORKS[args.network], SEED)
    probes = ["tcp"] if args.stage == "ports" else None
    targets = (Target(h.address, (netaddr.IPAddress(h.address),)) for h in hosts)

    async def run(out: Any) -> dict[str, Any]:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(args.threads))
        failures: dict[str, int] = {}
        reasons: dict[str, list[str]] = {}
        started, cpu = time.monotonic(), time.process_time()
        async for report in audit_many(targets, settings, probes=probes):
            verdicts: dict[str, list[int]] = {"open": []}
            for result in report.results:
                if result.probe == "tcp":
                    verdicts["open"] = sorted(
                        s.port for s in result.services if s.state is PortState.open
                    )
                elif result.outcome is ProbeOutcome.failed:
                    failures[result.probe] = failures.get(result.probe, 0) + 1
                    examples = reasons.setdefault(result.probe, [])
                    if len(examples) < 3:
                        examples.append(f"{report.target}: {result.reason}"[:200])
            for name, check in CHECK_OF.items():
                verdicts[name] = sorted({f.port for f in report.findings if f.check == check})
            out.write(json.dumps({"host": report.target, **verdicts}) + "\n")
        return {
            "scan_seconds": time.monotonic() - started,
            "scan_cpu_seconds": time.process_time() - cpu,
            "probe_failures": failures,
            "probe_failure_examples": reasons,
        }

    with open(args.out, "w") as out:
        summary = asyncio.run(run(out))
        out.write(json.dumps({"summary": summary}) + "\n")


# --- measuring a process ---------------------------------------------------------------------


@dataclass
class Run:
    wall: float
    cpu: float
    max_rss_mb: float
    load: float  # 1-minute load average when the run started (other work on the machine)
    scan_wall: float | None = None  # Vigie: the audits alone, without start-up


def measure(command: list[str]) -> Run:
    """Wall time, CPU (user + system) and peak RSS of one child process (os.wait4)."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile() as errors:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, cwd=ROOT)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # Ctrl-C, SIGTERM: the scan stops with the benchmark
            process.kill()
            process.wait()
            raise
        wall = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{command[0]} failed: {errors.read().decode()[-2000:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, load)


def nmap_command(hosts_file: Path, xml: Path, stage: str) -> list[str]:
    ports = ",".join(str(p) for p in SCANNED_PORTS)
    command = ["nmap", "-sT", "-Pn", "-n", "-p", ports, "-iL", str(hosts_file), "-oX", str(xml)]
    if stage == "whole":
        command[2:2] = ["-sV", "--script", NMAP_SCRIPTS]
    return command


def vigie_command(network: str, hosts: int, stage: str, out: Path, opts: Any) -> list[str]:
    return [
        sys.executable, str(Path(__file__).resolve()), "--child", stage, "--network", network,
        "--hosts", str(hosts), "--out", str(out), "--max-connections", str(opts.max_connections),
        "--threads", str(opts.threads),
    ]  # fmt: skip


# --- verdicts --------------------------------------------------------------------------------

Verdicts = dict[str, set[tuple[str, int]]]


def truth(hosts: list[Host]) -> Verdicts:
    found: Verdicts = {name: set() for name in VERDICTS}
    for host in hosts:
        for name, ports in host.truth().items():
            found[name] |= {(host.address, p) for p in ports}
    return found


def vigie_verdicts(path: Path) -> tuple[Verdicts, dict[str, Any]]:
    found: Verdicts = {name: set() for name in VERDICTS}
    summary: dict[str, Any] = {}
    with open(path) as lines:
        for line in lines:
            row = json.loads(line)
            if "summary" in row:
                summary = row["summary"]
                continue
            for name in VERDICTS:
                found[name] |= {(row["host"], p) for p in row[name]}
    return found, summary


def nmap_verdicts(path: Path) -> Verdicts:
    found: Verdicts = {name: set() for name in VERDICTS}
    for _, host in ET.iterparse(path):
        if host.tag != "host":
            continue
        address = host.find("address").get("addr")  # type: ignore[union-attr]
        for port in host.iter("port"):
            state = port.find("state")
            if state is None or state.get("state") != "open":
                continue
            number = int(port.get("portid", "0"))
            key = (address, number)
            found["open"].add(key)
            scripts = {s.get("id"): s.get("output", "") for s in port.iter("script")}
            if "Anonymous FTP login allowed" in scripts.get("ftp-anon", ""):
                found["ftp_anonymous"].add(key)
            redis = scripts.get("redis-info", "")
            if "Version" in redis and "Authentication required" not in redis:
                found["redis_no_auth"].add(key)
            if "http-title" in scripts and "http-auth" not in scripts:
                found["http_no_auth"].add(key)  # / answers without asking for credentials
            if "Any AET is accepted" in scripts.get("dicom-ping", ""):
                found["dicom_any_ae"].add(key)
        host.clear()
    return found


def compare(
    names: tuple[str, ...], expected: Verdicts, vigie: Verdicts, nmap: Verdicts | None
) -> dict:
    """Counts per verdict; without nmap (hosts it was not given), Vigie against the truth."""
    table = {}
    for name in names:
        t, v = expected[name], vigie[name]
        n = nmap[name] if nmap is not None else None
        table[name] = {
            "truth": len(t),
            "vigie": len(v),
            "nmap": len(n) if n is not None else "",
            "vigie_missed": len(t - v),
            "vigie_extra": len(v - t),
            "nmap_missed": len(t - n) if n is not None else "",
            "nmap_extra": len(n - t) if n is not None else "",
            "vigie_vs_nmap_differ": len(v ^ n) if n is not None else "",
            "examples": sorted(f"{a}:{p}" for a, p in (v ^ n if n is not None else v ^ t))[:5],
        }
    return table


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Measurement:
    network: str
    stage: str
    hosts: int
    tool: str
    runs: list[Run] = field(default_factory=list)

    def median(self, key: str) -> float | None:
        values = [getattr(r, key) for r in self.runs if getattr(r, key) is not None]
        return statistics.median(values) if values else None


def nmap_hosts(opts: argparse.Namespace, network: Network, stage: str) -> int:
    """How many of the hosts nmap is given: all, but on the WAN its port scan (it slows down on
    every dropped probe) and everywhere -sV with scripts take too long for a full run."""
    if stage == "whole":
        return min(opts.hosts, opts.nmap_whole_hosts)
    if network is WAN:
        return min(opts.hosts, opts.nmap_wan_ports_hosts)
    return opts.hosts


def bench_network(
    network: Network, opts: argparse.Namespace, work: Path, log: Any
) -> tuple[list[Measurement], dict[str, Any]]:
    hosts = build_fleet(opts.hosts, network, SEED)
    measurements: list[Measurement] = []
    verdicts: dict[str, Any] = {}
    expected = truth(hosts)
    for stage in opts.stages:
        vigie = Measurement(network.name, stage, opts.hosts, "vigie")
        subset = nmap_hosts(opts, network, stage)
        nmap = Measurement(network.name, stage, subset, "nmap")
        hosts_file = work / f"{network.name}-hosts-{subset}.txt"
        hosts_file.write_text("".join(h.address + "\n" for h in hosts[:subset]))
        out, xml = work / f"{network.name}-{stage}.jsonl", work / f"{network.name}-{stage}.xml"
        first_wall: dict[str, float] = {}
        for index in range(opts.repeat):
            pair = [("vigie", vigie), ("nmap", nmap)]
            for tool, target in pair if index % 2 == 0 else pair[::-1]:
                if first_wall.get(tool, 0.0) > opts.repeat_budget:
                    continue  # a slow measurement is not repeated (the other tool's may be)
                if tool == "vigie":
                    command = vigie_command(network.name, opts.hosts, stage, out, opts)
                    run = measure(command)
                    run.scan_wall = vigie_verdicts(out)[1].get("scan_seconds")
                else:
                    run = measure(nmap_command(hosts_file, xml, stage))
                target.runs.append(run)
                first_wall.setdefault(tool, run.wall)
                print(
                    f"  {network.name:8} {stage:5} {tool:5} {target.hosts:>6} hosts "
                    f"run {index + 1}: {run.wall:7.2f} s wall"
                    + (f" ({run.scan_wall:.2f} s scan)" if run.scan_wall else "")
                    + f", {run.cpu:6.2f} s CPU, {run.max_rss_mb:6.0f} MB, load {run.load:.2f}",
                    file=log,
                    flush=True,
                )
        measurements += [vigie, nmap]
        names = ("open",) if stage == "ports" else VERDICTS
        vigie_found, summary = vigie_verdicts(out)
        nmap_found = nmap_verdicts(xml)
        if subset < opts.hosts:  # compare on the hosts both saw, and Vigie's on all
            seen = {h.address for h in hosts[:subset]}
            cut = {n: {k for k in v if k[0] in seen} for n, v in vigie_found.items()}
            verdicts[f"{stage} (first {subset} hosts)"] = compare(
                names, truth(hosts[:subset]), cut, nmap_found
            )
            verdicts[f"{stage} vigie vs truth ({opts.hosts} hosts)"] = compare(
                names, expected, vigie_found, None
            )
        else:
            verdicts[stage] = compare(names, expected, vigie_found, nmap_found)
        verdicts[f"{stage} vigie probe failures"] = summary.get("probe_failures", {})
        if summary.get("probe_failure_examples"):
            verdicts[f"{stage} vigie probe failure examples"] = summary["probe_failure_examples"]
    return measurements, verdicts


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def report(
    opts: argparse.Namespace,
    measurements: list[Measurement],
    verdicts: dict[str, Any],
    notes: list[str],
) -> tuple[str, dict[str, Any]]:
    rows = []
    by_key = {(m.network, m.stage, m.tool): m for m in measurements}
    for (network, stage, tool), m in by_key.items():
        other = by_key.get((network, stage, "nmap"))
        scale = m.hosts / other.hosts if other and other.hosts else 1.0
        rows.append(
            {
                "network": network,
                "stage": stage,
                "tool": tool,
                "hosts": m.hosts,
                "runs": len(m.runs),
                "wall_s": round(m.median("wall") or 0, 2),
                "scan_wall_s": round(m.median("scan_wall"), 2) if m.median("scan_wall") else None,
                "cpu_s": round(m.median("cpu") or 0, 2),
                "max_rss_mb": round(max(r.max_rss_mb for r in m.runs), 1),
                "all_walls_s": [round(r.wall, 2) for r in m.runs],
                "all_scan_s": [round(r.scan_wall, 2) for r in m.runs if r.scan_wall is not None],
                "loads": [round(r.load, 2) for r in m.runs],
                "vs_nmap_wall": (
                    ratio(m.median("wall"), (other.median("wall") or 0) * scale)
                    if tool == "vigie" and other
                    else None
                ),
                "vs_nmap_scan": (
                    ratio(m.median("scan_wall"), (other.median("wall") or 0) * scale)
                    if tool == "vigie" and other
                    else None
                ),
            }
        )
    lines = [
        f"# Audit engine benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"{opts.hosts} hosts; `max_connections` {opts.max_connections}, per host 8 (default), "
        f"connect timeout 2 s, read timeout 3 s (defaults); {opts.threads} executor threads; "
        f"median of up to {opts.repeat} runs. Machine: {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at the end (each run's load at "
        "its start is in the JSON, `loads`).",
        "",
        "| network | stage | tool | hosts | runs | wall s (median) | scan s | CPU s | peak RSS MB "
        "| vs nmap (wall) | vs nmap (scan) | load at start |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['network']} | {r['stage']} | {r['tool']} | {r['hosts']} | {r['runs']} "
            f"| {r['wall_s']} | {r['scan_wall_s'] or ''} | {r['cpu_s']} | {r['max_rss_mb']} "
            f"| {_cell(r['vs_nmap_wall'])} | {_cell(r['vs_nmap_scan'])} "
            f"| {' '.join(f'{x:.1f}' for x in r['loads'])} |"
        )
    lines += ["", "## Verdicts", ""]
    for key, table in verdicts.items():
        first = next(iter(table.values()), None) if isinstance(table, dict) else None
        if not isinstance(first, dict) or "truth" not in first:
            lines.append(f"- {key}: {table or 'none'}")
            continue
        lines += [
            f"### {key}",
            "",
            "| verdict | truth | vigie | nmap | vigie missed | vigie extra | nmap missed "
            "| nmap extra | vigie vs nmap differ | examples |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, t in table.items():
            lines.append(
                f"| {name} | {t['truth']} | {t['vigie']} | {t['nmap']} | {t['vigie_missed']} "
                f"| {t['vigie_extra']} | {t['nmap_missed']} | {t['nmap_extra']} "
                f"| {t['vigie_vs_nmap_differ']} | {', '.join(t['examples'])} |"
            )
        lines.append("")
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    data = {"options": vars(opts), "rows": rows, "verdicts": verdicts, "notes": notes}
    return "\n".join(lines) + "\n", data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--wan", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--loopback", action=argparse.BooleanOptionalAction, default=True, help="(--no-loopback)"
    )
    parser.add_argument("--quick", action="store_true", help="200 hosts, one run, loopback")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--repeat-budget",
        type=float,
        default=90.0,
        help="a measurement whose first run took longer (s) is not repeated",
    )
    parser.add_argument("--max-connections", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=16, help="executor threads (pynetdicom)")
    parser.add_argument(
        "--nmap-whole-hosts",
        type=int,
        default=64,
        help="hosts given to nmap -sV --script (one of its host groups; it is slow)",
    )
    parser.add_argument(
        "--nmap-wan-ports-hosts",
        type=int,
        default=1000,
        help="hosts given to nmap's port scan on the WAN (it slows down on dropped probes)",
    )
    parser.add_argument(
        "--stages",
        type=lambda text: tuple(text.split(",")),
        default=("ports", "whole"),
        help="ports,whole (default), or one of them",
    )
    parser.add_argument("--output", type=Path, help="results file (.md; a .json goes beside)")
    parser.add_argument("--child", choices=["ports", "whole"], help=argparse.SUPPRESS)
    parser.add_argument("--network", choices=list(NETWORKS), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if not opts.stages or set(opts.stages) - {"ports", "whole"}:
        parser.error("--stages: ports, whole or ports,whole")
    if opts.child:
        opts.stage = opts.child
        vigie_child(opts)
        return
    if opts.quick:
        opts.hosts, opts.repeat, opts.wan = min(opts.hosts, 200), 1, False
    if shutil.which("nmap") is None:
        raise SystemExit("nmap is needed (make bench installs it)")
    # SIGTERM ends the run like Ctrl-C does, so the namespace and the responders are removed.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    raise_open_files()
    notes: list[str] = []
    measurements: list[Measurement] = []
    verdicts: dict[str, Any] = {}
    log = sys.stdout
    networks = ([LOOPBACK] if opts.loopback else []) + ([WAN] if opts.wan else [])
    with tempfile.TemporaryDirectory(prefix="vigie-bench-audit-") as tmp:
        work = Path(tmp)
        for network in networks:
            print(f"{network.name}: starting {opts.hosts} hosts", file=log, flush=True)
            try:
                if network is WAN:
                    hosts = build_fleet(opts.hosts, WAN, SEED)
                    wan = Wan(
                        [h.address for h in hosts],
                        WAN.dropped_ports,
                        [h.address for h in hosts if h.dead],
                    )
                    with wan, Responders(opts.hosts, WAN, SEED, namespace=True):
                        wan.verify_routes(h.address for h in hosts)  # again, just before use
                        found, table = bench_network(network, opts, work, log)
                else:
                    with Responders(opts.hosts, LOOPBACK, SEED):
                        found, table = bench_network(network, opts, work, log)
            except WanError as exc:
                notes.append(f"WAN not measured: {exc}")
                print(f"WAN not measured: {exc}", file=log)
                continue
            measurements += found
            verdicts |= {f"{network.name} {k}": v for k, v in table.items()}
    if opts.wan:
        notes.append(
            "WAN: hosts in a network namespace behind a delay line of 10 ms each way (RTT 20 ms; "
            "bench/fleet/delay.c, as this kernel has no netem); a firewall DROPs ports "
            f"{', '.join(map(str, WAN.dropped_ports))} on every host and {WAN.dead_share:.0%} "
            "of the hosts answer nothing."
        )
    capped = [
        (label, subset)
        for label, stage, subset in (
            ("whole audit", "whole", opts.nmap_whole_hosts),
            (
                "port scan on the WAN",
                "ports",
                opts.nmap_wan_ports_hosts if opts.wan else opts.hosts,
            ),
        )
        if subset < opts.hosts and stage in opts.stages
    ]
    for label, subset in capped:
        notes.append(
            f"nmap's {label} ran on the first {subset} hosts only (nmap works through host "
            "groups one after the other, so its time grows in proportion); the 'vs nmap' ratio "
            f"compares Vigie's time for all {opts.hosts} hosts with nmap's time scaled linearly "
            f"to {opts.hosts} hosts (an extrapolation), and the verdicts are compared on the "
            "hosts both saw."
        )
    text, data = report(opts, measurements, verdicts, notes)
    print("\n" + text)
    output = opts.output
    if output is None and not opts.quick:
        RESULTS.mkdir(exist_ok=True)
        output = RESULTS / f"audit-{datetime.now(UTC):%Y-%m-%d}-{opts.hosts}.md"
    if output:
        output.write_text(text)
        output.with_suffix(".json").write_text(json.dumps(data, indent=1, default=str) + "\n")
        print(f"written to {output}")


if __name__ == "__main__":
    main()
