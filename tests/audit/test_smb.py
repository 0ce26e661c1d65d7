"""The SMB probe against real Samba smbd servers on loopback (guest shares with SMBv1, a null
session, a locked-down server, SMBv1 alone, an SMBv1-only server), through the engine's port
stage, and against hostile peers on a declared SMB port."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import netaddr
import pytest

from inventory.audit import ProbeOutcome, Target, audit
from inventory.settings import load_settings
from inventory.validators import ExpectedService
from tests.audit import peers, sambapeer

pytestmark = pytest.mark.skipif(bool(sambapeer.missing()), reason=sambapeer.missing() or "-")

CHECK = "smb.guest-access"
HANG_GUARD = 120  # seconds: far above the probe's own budget; only a hang reaches it
DEPARTMENTS = tuple(f"department-{n:03d}" for n in range(1, 151))  # a list in several RPC fragments
LOCKED = {"restrict anonymous": "2", "map to guest": "never"}


def audit_settings(**changes: Any) -> Any:
    """Short timeouts; not test_engine's helper: importing it registers its test probes."""
    base = load_settings(environ={}).audit
    return base.model_copy(
        update={"default_ports": [], "connect_timeout": 1.0, "read_timeout": 1.0, **changes}
    )


def _samba_version() -> str:
    out = subprocess.run([sambapeer.SMBD, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"(\d+(?:\.\d+)+)", out)
    assert match, out
    return match.group(1)


def _peer(
    factory: pytest.TempPathFactory,
    host: str,
    options: dict[str, str],
    shares: tuple[str, ...] = ("scans",),
) -> Iterator[tuple[str, int]]:
    with sambapeer.samba(factory.mktemp("smb"), host, options, shares) as address:
        yield address


@pytest.fixture(scope="module")
def guest_nas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A NAS as often found: guest shares, unknown users mapped to guest, SMBv1 on."""
    options = {"map to guest": "bad user", "server min protocol": "NT1"}
    yield from _peer(tmp_path_factory, "127.61.0.1", options, ("scans", "backup$", *DEPARTMENTS))


@pytest.fixture(scope="module")
def default_samba(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """Samba's defaults: no guest, but a null session may list the shares."""
    yield from _peer(tmp_path_factory, "127.61.0.2", {"map to guest": "never"})


@pytest.fixture(scope="module")
def secure_nas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    yield from _peer(tmp_path_factory, "127.61.0.3", {**LOCKED, "server min protocol": "SMB2"})


@pytest.fixture(scope="module")
def smb1_nas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """Locked against guests, but SMBv1 still allowed."""
    yield from _peer(tmp_path_factory, "127.61.0.4", {**LOCKED, "server min protocol": "NT1"})


@pytest.fixture(scope="module")
def smb1_only_nas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """An old device that speaks nothing newer than SMBv1."""
    options = {**LOCKED, "server min protocol": "NT1", "server max protocol": "NT1"}
    yield from _peer(tmp_path_factory, "127.61.0.5", options)


def _audit(host: str, port: int, declared: str = "smb") -> Any:
    target = Target(
        "nas", (netaddr.IPAddress(host),), services=(ExpectedService(port, "tcp", declared),)
    )
    return asyncio.run(audit(target, audit_settings(), probes=["smb"]))


def _smb(report: Any) -> Any:
    return next(r for r in report.results if r.probe == "smb")


def _findings(report: Any) -> list[Any]:
    return [f for f in report.findings if f.check == CHECK]


def test_guest_shares_and_smbv1_give_one_finding_with_both_facts(guest_nas):
    host, port = guest_nas
    report = _audit(host, port)
    result = _smb(report)
    assert result.outcome is ProbeOutcome.ran, result.reason
    [finding] = _findings(report)
    assert (finding.severity, finding.address, finding.port) == ("high", host, port)
    assert f"can list the shared folders on port {port}" in finding.title
    assert "SMBv1" in finding.title
    assert "map to guest = never" in finding.remediation
    assert "server min protocol = SMB2_10" in finding.remediation
    evidence = finding.evidence
    assert evidence["smbv1"] is True
    assert evidence["listed_with"] == ["null session", "guest"]
    assert evidence["shares_listed"] == 153  # scans, backup$, 150 departments, IPC$
    assert evidence["shares"] == ["scans", "backup$", *DEPARTMENTS[:18]]
    assert evidence["shares_capped"] is True
    assert evidence["administrative_shares"] == ["backup$", "IPC$"]
    [service] = result.services
    assert (service.service, service.product, service.version) == ("smb", "Samba", _samba_version())
    assert CHECK in report.checks_run
    assert "DUPONT" not in repr(report)  # a file in every share: shares are listed, never opened


def test_default_samba_lists_its_shares_to_a_null_session(default_samba):
    host, port = default_samba
    report = _audit(host, port)
    assert _smb(report).outcome is ProbeOutcome.ran, _smb(report).reason
    [finding] = _findings(report)
    assert finding.title == f"Anyone on the network can list the shared folders on port {port}"
    assert finding.evidence["listed_with"] == ["null session"]  # map to guest = never
    assert finding.evidence["smbv1"] is False
    assert finding.evidence["shares"] == ["scans", "IPC$"]
    assert "shares_capped" not in finding.evidence
    assert "restrict anonymous = 2" in finding.remediation
    assert "SMBv1" not in finding.remediation
    [service] = _smb(report).services  # no SMBv1 to ask: the version comes from IPC$'s remark
    assert (service.product, service.version) == ("Samba", _samba_version())


def test_locked_down_samba_has_no_finding_and_the_check_ran(secure_nas):
    """Guest off, null sessions kept out of IPC$, SMB 2.1 at least: nothing to report, and the
    check was evaluated (a finding seen before is fixed)."""
    host, port = secure_nas
    report = _audit(host, port)
    result = _smb(report)
    assert result.outcome is ProbeOutcome.ran, result.reason
    assert _findings(report) == []
    assert CHECK in report.checks_run
    [service] = result.services
    assert service.service == "smb" and "SMB 3.1.1" in service.banner


def test_smbv1_alone_is_a_finding_about_smbv1(smb1_nas):
    host, port = smb1_nas
    report = _audit(host, port, declared="microsoft-ds")
    assert _smb(report).outcome is ProbeOutcome.ran, _smb(report).reason
    [finding] = _findings(report)
    assert finding.title == f"The file server on port {port} still accepts SMBv1"
    assert finding.evidence["smbv1"] is True
    assert "shares" not in finding.evidence and "listed_with" not in finding.evidence
    assert "server min protocol = SMB2_10" in finding.remediation
    assert "guest" not in finding.remediation.lower()
    [service] = _smb(report).services
    assert (service.product, service.version) == ("Samba", _samba_version())


def test_a_server_that_speaks_only_smbv1_is_reported(smb1_only_nas):
    host, port = smb1_only_nas
    report = _audit(host, port, declared="cifs")
    assert _smb(report).outcome is ProbeOutcome.ran, _smb(report).reason
    [finding] = _findings(report)
    assert "still accepts SMBv1" in finding.title
    assert finding.evidence["shares_not_checked"] == "the server speaks only SMBv1"


def test_a_netbios_session_port_is_probed_after_the_session_request(guest_nas):
    """Port 139's way (declared netbios-ssn here): a NetBIOS session request comes first."""
    host, port = guest_nas
    report = _audit(host, port, declared="netbios-ssn")
    assert _smb(report).outcome is ProbeOutcome.ran, _smb(report).reason
    [finding] = _findings(report)
    assert finding.evidence["smbv1"] is True
    assert finding.evidence["listed_with"] == ["null session", "guest"]


def test_the_port_stage_names_the_service_and_the_smb_probe_follows(guest_nas):
    """Through the whole engine: the port stage finds the declared microsoft-ds port open, and
    the SMB probe runs on it."""
    host, port = guest_nas
    target = Target(
        "nas",
        (netaddr.IPAddress(host),),
        services=(ExpectedService(port, "tcp", "microsoft-ds"),),
    )
    report = asyncio.run(audit(target, audit_settings(default_ports=[port]), probes=["smb"]))
    stage = next(r for r in report.results if r.probe == "tcp")
    [seen] = [s for s in stage.services if s.port == port]
    assert (seen.state.value, seen.service) == ("open", "microsoft-ds")
    assert [r.probe for r in report.results] == ["scope", "tcp", "smb"]
    assert [f.port for f in _findings(report)] == [port]


def test_no_smb_service_on_an_answering_host_judges_the_check():
    """The host answered (a closed port) and runs no SMB: a finding seen before is fixed."""
    host = "127.61.1.1"
    report = asyncio.run(
        audit(
            Target("x", (netaddr.IPAddress(host),)),
            audit_settings(default_ports=[peers.free_port(host)]),
            probes=["smb"],
        )
    )
    result = _smb(report)
    assert result.outcome is ProbeOutcome.ran and result.reason == "no SMB service was seen"
    assert CHECK in report.checks_run


HOSTILE: dict[str, peers.Handler] = {
    "silent": peers.silent,
    "reset": peers.reset,
    "flood": peers.flood,
    "drip": peers.drip,
    "garbage": peers.greeting(b"\x00\x00\x00\x08GARBAGE!"),
    "huge": peers.greeting(b"\x00\xff\xff\xff"),  # announces a 16 MiB message
    "slow": peers.greeting(b"\x00\x00\xff\xff\xffSMB"),  # 64 KiB announced, 4 bytes sent
    "smb1-then-garbage": peers.greeting(b"\x00\x00\x00\x23\xffSMB\x72" + b"\x00" * 30),
}


@pytest.mark.parametrize("hostile", sorted(HOSTILE))
def test_hostile_peer_on_a_declared_smb_port_fails_with_a_reason(hostile):
    async def scenario() -> Any:
        server, host, port = await peers.serve(HOSTILE[hostile], host="127.61.1.2")
        async with server:
            target = Target(
                "nas", (netaddr.IPAddress(host),), services=(ExpectedService(port, "tcp", "smb"),)
            )
            async with asyncio.timeout(HANG_GUARD):
                return await audit(target, audit_settings(), probes=["smb"]), port

    report, port = asyncio.run(scenario())
    result = _smb(report)
    assert result.outcome is ProbeOutcome.failed
    assert result.reason.startswith(f"127.61.1.2:{port}: "), result.reason
    assert not result.checks and not result.findings
    assert CHECK not in report.checks_run  # a finding seen before must not be judged fixed
