"""The simulated WAN: a network namespace made for the run, behind a delay line.

    root namespace                              namespace `vigiebench`
    vbench0 (tun) 10.251.255.253 --> delay.c --> vbench1 (tun) 10.251.255.254
    route 10.251.0.0/18 dev vbench0   <-- delay.c <--   local route 10.251.0.0/18 on lo
                                                        iptables DROP on some ports, dead hosts

`tc netem` is what one would use, but this machine's kernel has no netem (nor fq for an eBPF
delay), so a small C program (delay.c, built with gcc at the start of the run) moves every IP
packet between two TUN devices `delay_ms` later in each direction (RTT = 2 x delay_ms).

The run refuses to start when anything on the machine already uses 10.251.0.0/16, and before any
packet is sent, checks with `ip route get` that every fleet address leaves through vbench0 (the
NETWORK RULE: no packet may go anywhere else). Everything is removed on exit, also after an
error or Ctrl-C.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

NAMESPACE = "vigiebench"
HOST_IF, NS_IF = "vbench0", "vbench1"
RESERVED = ipaddress.IPv4Network("10.251.0.0/16")
HOSTS_NET = ipaddress.IPv4Network("10.251.0.0/18")
HOST_SIDE, NS_SIDE = "10.251.255.253", "10.251.255.254"
DELAY_SOURCE = Path(__file__).with_name("delay.c")


class WanError(RuntimeError):
    """The namespace could not be made, or routing is not what the run needs."""


def _run(*args: str, input: str | None = None) -> str:
    done = subprocess.run(args, input=input, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise WanError(f"{' '.join(args[:6])}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def in_namespace(*args: str) -> list[str]:
    """The command line running `args` inside the namespace."""
    return ["ip", "netns", "exec", NAMESPACE, *args]


@dataclass
class Wan:
    """Context manager: the namespace exists (and is verified) inside the `with` block."""

    addresses: list[str]
    dropped_ports: tuple[int, ...]
    dead: list[str]
    delay_ms: float = 10.0  # each way
    _delay: subprocess.Popen[str] | None = field(default=None, init=False, repr=False)

    def __enter__(self) -> Wan:
        self._clean_leftovers()
        self._refuse_overlap()
        try:
            self._build()
            self.verify_routes(self.addresses)
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.teardown()

    @staticmethod
    def _clean_leftovers() -> None:
        """A namespace or device of ours left by a killed run (the names are ours alone)."""
        if NAMESPACE in _run("ip", "netns", "list").split():
            _run("ip", "netns", "del", NAMESPACE)
        links = _run("ip", "-o", "link", "show")
        if re.search(rf"^\d+: {HOST_IF}[@:]", links, re.MULTILINE):
            _run("ip", "link", "del", HOST_IF)

    @staticmethod
    def _refuse_overlap() -> None:
        """10.251.0.0/16 must be unused on this machine: no address, no route inside it."""
        for line in _run("ip", "-o", "-4", "addr", "show").splitlines():
            match = re.search(r"inet (\S+)", line)
            if match and ipaddress.IPv4Interface(match.group(1)).network.overlaps(RESERVED):
                raise WanError(f"an address already uses {RESERVED}: {line.strip()}")
        for line in _run("ip", "-4", "route", "show", "table", "all").splitlines():
            first = line.split()[0] if line.split() else ""
            if first in ("default", "broadcast", "local", "unreachable", "multicast"):
                first = line.split()[1] if len(line.split()) > 1 else ""
            try:
                network = ipaddress.IPv4Network(first, strict=False)
            except ValueError:
                continue
            if network.prefixlen > 0 and network.overlaps(RESERVED):
                raise WanError(f"a route already covers {RESERVED}: {line.strip()}")

    def _build(self) -> None:
        program = build_delay_line()
        _run("ip", "netns", "add", NAMESPACE)
        _run("ip", "tuntap", "add", "dev", HOST_IF, "mode", "tun")
        _run("ip", "-n", NAMESPACE, "tuntap", "add", "dev", NS_IF, "mode", "tun")
        delay_us = str(int(self.delay_ms * 1000))
        self._delay = subprocess.Popen(
            [str(program), delay_us, HOST_IF, f"/var/run/netns/{NAMESPACE}", NS_IF],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._delay.stdout is not None
        if self._delay.stdout.readline().strip() != "ready":
            raise WanError("the delay line did not start")
        for prefix, local, peer, device in (
            ([], HOST_SIDE, NS_SIDE, HOST_IF),
            (["-n", NAMESPACE], NS_SIDE, HOST_SIDE, NS_IF),
        ):
            _run("ip", *prefix, "addr", "add", local, "peer", peer, "dev", device)
            _run("ip", *prefix, "link", "set", device, "up", "txqueuelen", "20000")
        _run("ip", "-n", NAMESPACE, "link", "set", "lo", "up")
        # Every fleet address is local inside the namespace: responders bind them directly.
        _run("ip", "-n", NAMESPACE, "route", "add", "local", str(HOSTS_NET), "dev", "lo")
        _run("ip", "route", "add", str(HOSTS_NET), "dev", HOST_IF, "src", HOST_SIDE)
        rules = ["*filter"]
        if self.dropped_ports:
            ports = ",".join(str(p) for p in self.dropped_ports)
            rules.append(f"-A INPUT -p tcp -m multiport --dports {ports} -j DROP")
        rules += [f"-A INPUT -d {address}/32 -j DROP" for address in self.dead]
        rules.append("COMMIT")
        _run(*in_namespace("iptables-restore", "--noflush"), input="\n".join(rules) + "\n")

    @staticmethod
    def verify_routes(addresses: Iterable[str]) -> None:
        """Every address must leave through our tun device to the namespace; abort otherwise."""
        wanted = list(addresses)
        for address in wanted:
            if ipaddress.IPv4Address(address) not in HOSTS_NET:
                raise WanError(f"{address} is outside {HOSTS_NET}")
        output = _run("ip", "-batch", "-", input="".join(f"route get {a}\n" for a in wanted))
        routes = {}
        for line in output.splitlines():
            parts = line.split()
            if parts and parts[0][0].isdigit():
                routes[parts[0]] = line
        expected = re.compile(rf" dev {HOST_IF} src {re.escape(HOST_SIDE)} ")
        for address in wanted:
            route = routes.get(address, "")
            if not expected.search(route + " "):
                raise WanError(f"{address} would not go through {HOST_IF}: {route!r}")

    def teardown(self) -> None:
        """Stops the delay line, then deletes the namespace (its device and rules) and ours."""
        if self._delay is not None and self._delay.poll() is None:
            self._delay.terminate()
            try:
                self._delay.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._delay.kill()
                self._delay.wait()
        self._delay = None
        subprocess.run(["ip", "netns", "del", NAMESPACE], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True, check=False)


def build_delay_line() -> Path:
    """delay.c compiled once per version of its source (gcc -O2), in the temporary folder."""
    source = DELAY_SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:12]
    program = Path(tempfile.gettempdir()) / f"vigie-bench-delay-{digest}"
    if not program.exists():
        try:
            _run("gcc", "-O2", "-Wall", "-o", str(program), str(DELAY_SOURCE))
        except (WanError, FileNotFoundError) as exc:
            raise WanError(f"cannot build the delay line (gcc needed): {exc}") from exc
    return program
