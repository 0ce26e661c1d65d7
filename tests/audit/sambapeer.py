"""A real Samba file server on loopback for the SMB probe tests, each on its own 127.61.x.y.

smbd and samba-dcerpcd (the process that answers share listings) run in one new process group,
every directory they use under the test's tmp dir; teardown ends the group and checks that
nothing listens on the port any more. What Debian 12's Samba 4.17 needs for that:

- `interfaces = IP/8`, not `IP/32`: Samba reads `IP/32` as a network, finds no interface in it
  (lo is 127.0.0.1/8) and refuses to start; an IP/mask whose IP is not the network's address is
  taken as an interface of its own, and `bind interfaces only` then binds that address alone.
- samba-dcerpcd is started here (`rpc start on demand helpers = no`): started on demand by smbd
  it calls setsid, leaves the process group and outlives the test. It is given the configuration
  path as written, so the path is absolute.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.audit import peers

SMBD = "/usr/sbin/smbd"
DCERPCD = "/usr/libexec/samba/samba-dcerpcd"
STARTUP = 15.0  # seconds; smbd and samba-dcerpcd start in about one


def missing() -> str:
    """Why the Samba tests cannot run here ("" when they can)."""
    for path in (SMBD, DCERPCD):
        if not os.access(path, os.X_OK):
            return f"{path} is not installed (Debian package samba)"
    return ""


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _config(
    root: Path, host: str, port: int, options: dict[str, str], shares: tuple[str, ...]
) -> str:
    dirs = {
        "lock directory": "lock",
        "state directory": "state",
        "cache directory": "cache",
        "private dir": "private",
        "pid directory": "pid",
        "ncalrpc dir": "ncalrpc",
        "binddns dir": "binddns",
    }
    for name in dirs.values():
        (root / name).mkdir(mode=0o755)
    settings = {
        "workgroup": "VIGIETEST",
        "netbios name": "NASTEST",
        "server role": "standalone server",
        "interfaces": f"{host}/8",
        "bind interfaces only": "yes",
        "smb ports": str(port),
        "disable netbios": "yes",
        "rpc start on demand helpers": "no",
        "log file": str(root / "log.%m"),
        "max log size": "1000",
        "load printers": "no",
        "printing": "bsd",
        "printcap name": "/dev/null",
        "disable spoolss": "yes",
        **{key: str(root / name) for key, name in dirs.items()},
        **options,
    }
    lines = ["[global]", *(f"  {key} = {value}" for key, value in settings.items())]
    guest = options.get("map to guest", "never") != "never"
    for share in shares:
        path = root / "shares" / share.strip("$")
        path.mkdir(parents=True, exist_ok=True)
        # A file that must never be read: the probe lists shares, never their contents.
        (path / "DUPONT_Jean_1950-01-01.dcm").write_text("synthetic\n")
        lines += [f"[{share}]", f"  path = {path}", "  read only = yes"]
        lines += [f"  guest ok = {'yes' if guest else 'no'}"]
    return "\n".join(lines) + "\n"


@contextmanager
def samba(
    tmp: Path, host: str, options: dict[str, str], shares: tuple[str, ...] = ("scans",)
) -> Iterator[tuple[str, int]]:
    """A running smbd at (host, port) with these [global] options and read-only shares."""
    port = peers.free_port(host)
    config = tmp / "smb.conf"
    config.write_text(_config(tmp, host, port, options, shares))
    common = ["--foreground", "--no-process-group", "--debug-stdout", "-s", str(config)]
    dcerpcd = shlex.join([DCERPCD, *common, "--libexec-rpcds"])
    smbd = shlex.join([SMBD, *common])
    output = tmp / "samba.out"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", f"{dcerpcd} & exec {smbd}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group for smbd, samba-dcerpcd and their workers
        )
    try:
        srvsvc = tmp / "ncalrpc" / "np" / "srvsvc"
        deadline = time.monotonic() + STARTUP
        while not (_accepts(host, port) and srvsvc.exists()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"smbd did not start: {output.read_text()[-2000:]}")
            time.sleep(0.1)
        yield host, port
    finally:
        _stop(proc)
        if _accepts(host, port):
            raise RuntimeError(f"smbd still listens on {host}:{port} after teardown")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the group (smbd reaps its own children), then SIGKILL for what is left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=5)
