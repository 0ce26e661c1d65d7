"""The FTP probe against real vsftpd servers on loopback (with and without anonymous login), a
small asyncio FTP server that offers AUTH TLS, and hostile peers on a declared FTP port."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import netaddr
import pytest

from inventory.audit import ProbeOutcome, Target, audit
from inventory.settings import load_settings
from inventory.validators import ExpectedService
from tests.audit import peers


def audit_settings(**changes: Any) -> Any:
    """Short timeouts; not test_engine's helper: importing it registers its test probes."""
    base = load_settings(environ={}).audit
    return base.model_copy(
        update={"default_ports": [], "connect_timeout": 1.0, "read_timeout": 1.0, **changes}
    )


VSFTPD = "/usr/sbin/vsftpd"
PATIENT_FILE = "DUPONT_Jean_1950-01-01.dcm"  # a file name that must never leave the probe

pytestmark = pytest.mark.skipif(not os.path.exists(VSFTPD), reason="vsftpd is not installed")


def _wait_listening(host: str, port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vsftpd exited: {proc.stderr.read() if proc.stderr else ''!r}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("vsftpd did not start listening")


def _vsftpd(tmp: Path, host: str, anonymous: bool) -> Iterator[tuple[str, int]]:
    root = tmp / "root"
    empty = tmp / "empty"
    root.mkdir(mode=0o755)
    empty.mkdir(mode=0o755)
    for name in (PATIENT_FILE, "scan-0001.dcm", "readme.txt"):
        (root / name).write_text("synthetic\n")
    port = peers.free_port(host)
    config = tmp / "vsftpd.conf"
    config.write_text(
        "\n".join(
            [
                "listen=YES",
                "listen_ipv6=NO",
                f"listen_address={host}",
                f"listen_port={port}",
                "background=NO",
                f"anonymous_enable={'YES' if anonymous else 'NO'}",
                # vsftpd refuses to start with both anonymous and local logins off ("500 OOPS:
                # both local and anonymous access disabled"), so the closed one allows local
                # accounts, as a real NAS would; nothing in these tests logs in with one.
                f"local_enable={'NO' if anonymous else 'YES'}",
                "write_enable=NO",
                f"anon_root={root}",
                f"secure_chroot_dir={empty}",
                "seccomp_sandbox=NO",
                "pasv_enable=YES",
                "xferlog_enable=NO",
                "",
            ]
        )
    )
    proc = subprocess.Popen(
        [VSFTPD, str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, killed as one in teardown
    )
    try:
        _wait_listening(host, port, proc)
        yield host, port
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@pytest.fixture(scope="module")
def anonymous_ftp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    yield from _vsftpd(tmp_path_factory.mktemp("ftp-anon"), "127.42.150.1", anonymous=True)


@pytest.fixture(scope="module")
def closed_ftp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    yield from _vsftpd(tmp_path_factory.mktemp("ftp-noanon"), "127.42.150.2", anonymous=False)


def _audit(host: str, port: int, declared: str = "") -> Any:
    services = (ExpectedService(port, "tcp", declared),) if declared else ()
    target = Target("nas", (netaddr.IPAddress(host),), services=services)
    return asyncio.run(audit(target, audit_settings(default_ports=[port]), probes=["ftp"]))


def _ftp(report: Any) -> Any:
    return next(r for r in report.results if r.probe == "ftp")


def test_anonymous_vsftpd_gets_both_findings_and_only_a_count(anonymous_ftp):
    host, port = anonymous_ftp
    report = _audit(host, port)
    result = _ftp(report)
    assert result.outcome is ProbeOutcome.ran, result.reason
    findings = {f.check: f for f in report.findings if f.check.startswith("ftp.")}
    assert set(findings) == {"ftp.anonymous-login", "ftp.cleartext"}
    anonymous = findings["ftp.anonymous-login"]
    assert anonymous.severity == "high" and anonymous.port == port
    assert anonymous.evidence["root_entries"] == 3
    assert findings["ftp.cleartext"].severity == "medium"
    assert {"ftp.anonymous-login", "ftp.cleartext"} <= report.checks_run
    service = next(s for s in result.services)
    assert (service.product, service.version) == ("vsFTPd", "3.0.3")
    assert "DUPONT" not in repr(report)  # file names are counted, never kept


def test_vsftpd_without_anonymous_is_still_cleartext(closed_ftp):
    host, port = closed_ftp
    report = _audit(host, port)
    assert _ftp(report).outcome is ProbeOutcome.ran
    assert sorted(f.check for f in report.findings if f.check.startswith("ftp.")) == [
        "ftp.cleartext"
    ]
    assert "ftp.anonymous-login" in report.checks_run  # evaluated: it can be judged fixed


def _tls_ftp_handler() -> peers.Handler:
    """A minimal FTP server (asyncio fixture) that offers AUTH TLS and refuses anonymous."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 Secure NAS FTP\r\n")
        while line := await reader.readline():
            command = line.strip().split(b" ")[0].upper()
            if command == b"FEAT":
                writer.write(b"211-Features:\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n211 End\r\n")
            elif command == b"USER":
                writer.write(b"331 Password required\r\n")
            elif command == b"PASS":
                writer.write(b"530 Login incorrect\r\n")
            elif command == b"QUIT":
                writer.write(b"221 Bye\r\n")
                break
            else:
                writer.write(b"502 Not implemented\r\n")
            await writer.drain()
        writer.close()

    return handle


def test_ftp_with_auth_tls_and_no_anonymous_has_no_finding():
    async def scenario() -> Any:
        server, host, port = await peers.serve(_tls_ftp_handler(), host="127.42.150.3")
        async with server:
            target = Target("nas", (netaddr.IPAddress(host),))
            return await audit(target, audit_settings(default_ports=[port]), probes=["ftp"])

    report = asyncio.run(scenario())
    assert _ftp(report).outcome is ProbeOutcome.ran
    assert [f for f in report.findings if f.check.startswith("ftp.")] == []
    assert {"ftp.anonymous-login", "ftp.cleartext"} <= report.checks_run


@pytest.mark.parametrize("hostile", ["silent", "flood", "reset", "drip"])
def test_hostile_peer_on_a_declared_ftp_port_fails_in_bounded_time(hostile):
    async def scenario() -> Any:
        server, host, port = await peers.serve(getattr(peers, hostile), host="127.42.150.4")
        async with server:
            target = Target(
                "nas", (netaddr.IPAddress(host),), services=(ExpectedService(port, "tcp", "ftp"),)
            )
            started = time.monotonic()
            report = await audit(target, audit_settings(default_ports=[]), probes=["ftp"])
            return report, time.monotonic() - started

    report, elapsed = asyncio.run(scenario())
    assert elapsed < 8, f"{hostile} held the FTP probe for {elapsed:.1f}s"
    result = _ftp(report)
    assert result.outcome is ProbeOutcome.failed and result.reason
    assert not result.checks and not result.findings


def test_no_ftp_service_on_an_answering_host_judges_the_checks():
    """The host answered (a closed port) and runs no FTP: anonymous FTP seen before is fixed."""
    report = asyncio.run(
        audit(
            Target("x", (netaddr.IPAddress("127.42.150.5"),)),
            audit_settings(default_ports=[peers.free_port("127.42.150.5")]),
            probes=["ftp"],
        )
    )
    result = _ftp(report)
    assert result.outcome is ProbeOutcome.ran and result.reason == "no FTP service was seen"
    assert report.reachable
    assert {"ftp.anonymous-login", "ftp.cleartext"} <= report.checks_run
