"""The audit engine against real peers on loopback: port stage, identification, hostile peers,
the scope guard (no packet outside it), deadlines and broken probes, and many targets audited in
one event loop under shared limits (audit_many)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import netaddr
import pytest

from inventory.audit import Probe, ProbeContext, ProbeOutcome, ProbeResult, Target, audit
from inventory.audit.engine import audit_many
from inventory.audit.probes.base import ConnectionLimits, PortState
from inventory.settings import load_settings
from inventory.validators import ExpectedService
from tests.audit import peers


def audit_settings(**changes: Any) -> Any:
    base = load_settings(environ={}).audit
    return base.model_copy(
        update={"default_ports": [], "connect_timeout": 1.0, "read_timeout": 1.0, **changes}
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def by_port(report: Any) -> dict[int, Any]:
    return {s.port: s for s in report.services}


def test_open_closed_and_identified_by_greeting_not_port():
    async def scenario() -> Any:
        ssh, host, ssh_port = await peers.serve(
            peers.greeting(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
        )
        ftp, _, ftp_port = await peers.serve(peers.greeting(b"220 (vsFTPd 3.0.3)\r\n"), host=host)
        closed_port = peers.free_port(host)
        settings = audit_settings(default_ports=[ssh_port, ftp_port, closed_port])
        async with ssh, ftp:
            return (
                await audit(Target("nas", (netaddr.IPAddress(host),)), settings),
                ssh_port,
                ftp_port,
                closed_port,
            )

    report, ssh_port, ftp_port, closed_port = run(scenario())
    seen = by_port(report)
    assert seen[ssh_port].state is PortState.open and seen[ssh_port].service == "ssh"
    assert "OpenSSH_9.2p1" in seen[ssh_port].banner
    assert seen[ftp_port].service == "ftp"  # an FTP server on a random port is FTP
    assert seen[closed_port].state is PortState.closed
    assert report.reachable


def test_declared_ports_are_expected_and_others_are_findings():
    async def scenario() -> Any:
        declared, host, declared_port = await peers.serve(peers.silent)
        other, _, other_port = await peers.serve(peers.silent, host=host)
        t = Target(
            "pacs",
            (netaddr.IPAddress(host),),
            services=(ExpectedService(declared_port, "tcp", "dicom"),),
        )
        async with declared, other:
            return (
                await audit(t, audit_settings(default_ports=[other_port])),
                declared_port,
                other_port,
            )

    report, declared_port, other_port = run(scenario())
    unexpected = [f for f in report.findings if f.check == "port.unexpected-open"]
    assert [f.port for f in unexpected] == [other_port]
    assert by_port(report)[declared_port].service == "dicom"  # the declared name is kept
    assert "port.unexpected-open" in report.checks_run


@pytest.mark.parametrize("hostile", ["silent", "reset", "drip", "flood"])
def test_hostile_peers_cost_bounded_time_and_bytes(hostile):
    async def scenario() -> Any:
        server, host, port = await peers.serve(getattr(peers, hostile))
        async with server:
            started = time.monotonic()
            report = await audit(
                Target(hostile, (netaddr.IPAddress(host),)), audit_settings(default_ports=[port])
            )
            return report, port, time.monotonic() - started

    report, port, elapsed = run(scenario())
    assert elapsed < 4, f"{hostile} peer held the audit for {elapsed:.1f}s"
    observation = by_port(report)[port]
    assert observation.state is PortState.open
    assert len(observation.banner) <= 200
    # Every probe ran (optional ones not turned on for the asset are skipped, as they should).
    assert all(r.outcome in (ProbeOutcome.ran, ProbeOutcome.skipped) for r in report.results)


def test_a_host_that_never_answers_is_filtered_and_unreachable():
    async def never(address: str, port: int) -> Any:
        await asyncio.sleep(3600)

    started = time.monotonic()
    report = run(
        audit(
            Target("gone", (netaddr.IPAddress("127.42.250.250"),)),
            audit_settings(default_ports=[104, 4242]),
            connector=never,
        )
    )
    assert time.monotonic() - started < 3
    assert {s.state for s in report.services} == {PortState.filtered}
    assert not report.reachable  # such an audit must change no finding


def test_addresses_outside_the_scope_get_no_packet():
    calls: list[tuple[str, int]] = []

    async def recording(address: str, port: int) -> Any:
        calls.append((address, port))
        raise ConnectionRefusedError

    t = Target("public", (netaddr.IPAddress("8.8.8.8"), netaddr.IPAddress("2001:4860::8888")))
    report = run(audit(t, audit_settings(default_ports=[80, 443]), connector=recording))
    assert calls == []
    assert sorted(f.address for f in report.findings if f.check == "audit.out-of-scope") == [
        "2001:4860::8888",
        "8.8.8.8",
    ]
    assert not report.reachable


def test_only_the_in_scope_addresses_of_an_asset_are_probed():
    calls: list[str] = []

    async def recording(address: str, port: int) -> Any:
        calls.append(address)
        raise ConnectionRefusedError

    t = Target("mixed", (netaddr.IPAddress("127.42.251.1"), netaddr.IPAddress("198.51.100.7")))
    report = run(audit(t, audit_settings(default_ports=[21]), connector=recording))
    assert calls == ["127.42.251.1"]
    assert [f.address for f in report.findings if f.check == "audit.out-of-scope"] == [
        "198.51.100.7"
    ]


def test_remote_access_services_are_findings():
    async def scenario() -> Any:
        telnet, host, telnet_port = await peers.serve(peers.greeting(b"\xff\xfd\x18\xff\xfd\x20"))
        vnc, _, vnc_port = await peers.serve(peers.greeting(b"RFB 003.008\n"), host=host)
        async with telnet, vnc:
            settings = audit_settings(default_ports=[telnet_port, vnc_port])
            return await audit(Target("modality", (netaddr.IPAddress(host),)), settings)

    report = run(scenario())
    remote = sorted(
        f.evidence["service"] for f in report.findings if f.check == "remote-access.exposed"
    )
    assert remote == ["telnet", "vnc"]
    assert all(f.severity == "high" for f in report.findings if f.check == "remote-access.exposed")


# Test probes are defined without a name, so defining them registers nothing (every other test
# module's audits would run them too); the tests that want them register them for their duration.
class _Broken(Probe):
    async def check(self, target: Target, ctx: ProbeContext) -> ProbeResult:
        raise RuntimeError("the peer sent nonsense")


class _Stuck(Probe):
    async def check(self, target: Target, ctx: ProbeContext) -> ProbeResult:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


_Broken.name = "test-broken"
_Stuck.name = "test-stuck"


@pytest.fixture(autouse=True)
def _without_test_probes():
    """Only the tests that ask for the test probes run them; none is left registered after."""
    saved = {
        name: Probe.registry.pop(name)
        for name in ("test-broken", "test-stuck")
        if name in Probe.registry
    }
    yield saved
    for name in ("test-broken", "test-stuck"):
        Probe.registry.pop(name, None)


def test_a_broken_probe_fails_with_its_reason_and_the_others_run(_without_test_probes):
    Probe.registry["test-broken"] = _Broken
    report = run(
        audit(Target("x", (netaddr.IPAddress("127.42.252.1"),)), audit_settings(default_ports=[1]))
    )
    outcomes = {r.probe: r for r in report.results}
    assert outcomes["test-broken"].outcome is ProbeOutcome.failed
    assert "the peer sent nonsense" in outcomes["test-broken"].reason
    assert outcomes["remote-access"].outcome is ProbeOutcome.ran
    assert "test-broken" not in {c for c in report.checks_run}


def test_the_audit_deadline_bounds_a_stuck_probe(_without_test_probes):
    Probe.registry["test-stuck"] = _Stuck
    started = time.monotonic()
    report = run(
        audit(
            Target("x", (netaddr.IPAddress("127.42.252.2"),)),
            audit_settings(default_ports=[1], audit_deadline=1.5),
        )
    )
    assert time.monotonic() - started < 3
    stuck = next(r for r in report.results if r.probe == "test-stuck")
    assert stuck.outcome is ProbeOutcome.failed and "deadline" in stuck.reason


def test_concurrency_per_host_is_limited():
    active = 0
    peak = 0

    async def slow_refusal(address: str, port: int) -> Any:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        raise ConnectionRefusedError

    settings = audit_settings(default_ports=list(range(1000, 1040)), max_connections_per_host=3)
    run(
        audit(
            Target("fragile-modality", (netaddr.IPAddress("127.42.253.1"),)),
            settings,
            connector=slow_refusal,
        )
    )
    assert peak == 3


# --- many targets in one event loop (audit_many) -----------------------------------------------


def test_many_targets_are_all_audited_within_the_global_connection_limit():
    """Thirty assets, each a real peer on its own address that holds every connection until we
    close it: all are audited, and the peers never see more connections at once than allowed."""
    active = 0
    peak = 0

    async def holding(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        try:
            await reader.read()  # until the audit closes its side
        finally:
            active -= 1
            writer.close()

    async def scenario() -> tuple[list[Any], dict[str, int]]:
        servers, ports = [], {}
        for _ in range(30):
            server, host, port = await peers.serve(holding)
            servers.append(server)
            ports[host] = port
        settings = audit_settings(
            default_ports=[], max_connections=4, read_timeout=0.2, connect_timeout=1.0
        )
        targets = [
            Target(host, (netaddr.IPAddress(host),), services=(ExpectedService(port, "tcp"),))
            for host, port in ports.items()
        ]
        try:
            reports = [r async for r in audit_many(targets, settings, probes=["tcp"])]
        finally:
            for server in servers:
                server.close()
        return reports, ports

    reports, ports = run(scenario())
    assert sorted(r.target for r in reports) == sorted(ports)
    for report in reports:
        assert [(s.port, s.state) for s in report.services] == [
            (ports[report.target], PortState.open)
        ]
    assert peak == 4  # reached, never passed


class _SlowForOne(Probe):
    """Hangs on the asset named "slow" only; the others pass through at once."""

    async def check(self, target: Target, ctx: ProbeContext) -> ProbeResult:
        if target.name == "slow":
            await asyncio.sleep(3600)
        return ProbeResult("test-slow-for-one", ProbeOutcome.ran)


_SlowForOne.name = "test-slow-for-one"


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_slow_target_holds_the_others_back_no_longer_than_its_deadline(concurrency):
    Probe.registry["test-slow-for-one"] = _SlowForOne
    try:

        async def scenario() -> list[Any]:
            server, host, port = await peers.serve(peers.greeting(b"SSH-2.0-OpenSSH_9.2\r\n"))
            names = ["slow", *(f"fast-{i}" for i in range(6))]
            targets = [
                Target(n, (netaddr.IPAddress(host),), services=(ExpectedService(port, "tcp"),))
                for n in names
            ]
            settings = audit_settings(audit_deadline=1.0)
            probes = ["tcp", "test-slow-for-one"]
            async with server:
                return [
                    r
                    async for r in audit_many(
                        targets, settings, probes=probes, concurrency=concurrency
                    )
                ]

        reports = run(scenario())
    finally:
        Probe.registry.pop("test-slow-for-one", None)
    order = [r.target for r in reports]
    assert sorted(order) == sorted(["slow", *(f"fast-{i}" for i in range(6))])
    slow = next(r for r in reports if r.target == "slow")
    stuck = next(r for r in slow.results if r.probe == "test-slow-for-one")
    assert stuck.outcome is ProbeOutcome.failed and "deadline" in stuck.reason
    for report in reports:
        if report.target != "slow":  # every other audit ran to its end, port stage included
            assert all(r.outcome is ProbeOutcome.ran for r in report.results)
            assert [s.service for s in report.services] == ["ssh"]
    if concurrency > 1:  # the others did not wait for it at all
        assert order[-1] == "slow"


def test_targets_are_taken_only_as_audits_can_start():
    """A generator of targets is not drained up front: memory follows the audits under way."""
    taken = 0

    def targets() -> Any:
        nonlocal taken
        for i in range(20):
            taken += 1
            yield Target(f"t{i}", (netaddr.IPAddress(f"127.42.254.{i + 1}"),))

    async def refuse(address: str, port: int) -> Any:
        raise ConnectionRefusedError

    async def scenario() -> tuple[int, int]:
        first = None
        count = 0
        async for _report in audit_many(
            targets(), audit_settings(default_ports=[1]), connector=refuse, concurrency=2
        ):
            count += 1
            if first is None:
                first = taken
        return first or 0, count

    taken_at_first_report, count = run(scenario())
    assert count == 20
    assert taken_at_first_report <= 3


def test_per_host_limits_are_forgotten_once_a_host_is_done():
    async def scenario() -> tuple[int, int]:
        limits = ConnectionLimits(max_connections=2, max_per_host=1)
        busiest = 0

        async def use(address: str) -> None:
            nonlocal busiest
            async with limits.slot(address):
                busiest = max(busiest, limits.hosts_tracked)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(use(f"127.42.255.{i % 50 + 1}") for i in range(500)))
        return busiest, limits.hosts_tracked

    busiest, left = run(scenario())
    assert busiest > 1
    assert left == 0
