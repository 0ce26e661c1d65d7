"""A benchmark fleet: N hosts on distinct addresses with a realistic mix of services.

The fleet is a pure function of (hosts, seed, network): the benchmark, the responder processes
and the verdict comparison all rebuild the same list of hosts from those three values, so nothing
has to be passed between processes but the arguments.

    spec.py        the hosts, their services and the truth the scanners should find
    responders.py  light asyncio servers speaking enough FTP, HTTP, Redis, DICOM, SSH and TLS
                   for Vigie's probes and nmap's scripts to reach a verdict
    wan.py         the simulated WAN: a network namespace behind a veth pair with netem delay
                   and ports that silently drop (iptables DROP)
    run.py         starts and stops the responder processes (on loopback or in the namespace)
"""

from bench.fleet.spec import (
    FAMILIES,
    LOOPBACK,
    SCANNED_PORTS,
    WAN,
    Host,
    Network,
    Service,
    build_fleet,
)

__all__ = [
    "FAMILIES",
    "LOOPBACK",
    "SCANNED_PORTS",
    "WAN",
    "Host",
    "Network",
    "Service",
    "build_fleet",
]
