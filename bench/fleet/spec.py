"""The fleet's hosts: which services each one runs, and the verdicts a scanner should reach.

Deterministic: `build_fleet(n, network, seed)` gives the same hosts in every process.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field

# The ports every scan covers: Vigie's default port list (config/default.toml [audit]
# default_ports), checked against the settings by the benchmark.
SCANNED_PORTS = (
    21, 22, 23, 80, 104, 139, 443, 445, 2761, 2762, 3389, 4242, 5900, 6379, 8042, 8080, 8443,
    9200, 11112, 27017,
)  # fmt: skip


@dataclass(frozen=True)
class Network:
    """Where the fleet lives. On the WAN a firewall drops `dropped_ports` on every host, and a
    share of the addresses (`dead_share`) answers nothing at all (switched off, or gone)."""

    name: str
    first: str  # first host address
    capacity: int  # hosts at most
    dropped_ports: tuple[int, ...] = ()
    dead_share: float = 0.0


LOOPBACK = Network("loopback", "127.100.0.1", 60_000)
WAN = Network(
    "wan",
    "10.251.0.1",
    16_000,  # 10.251.0.0/18 holds the hosts; see wan.py
    dropped_ports=(23, 139, 445, 2761, 2762, 3389, 5900, 27017),
    dead_share=0.05,
)


@dataclass(frozen=True)
class Service:
    kind: str  # one of FAMILIES' kinds
    port: int


# kind -> the responder family (process) that serves it
FAMILIES = {
    "ssh": "ssh",
    "ftp-anon": "ftp",
    "ftp-auth": "ftp",
    "http-open": "http",
    "http-basic": "http",
    "https-basic": "http",
    "redis-open": "redis",
    "redis-auth": "redis",
    "dicom": "dicom",
}


@dataclass(frozen=True)
class Host:
    index: int
    address: str
    services: tuple[Service, ...] = ()
    dead: bool = False

    def ports(self, *kinds: str) -> set[int]:
        return {s.port for s in self.services if not kinds or s.kind in kinds}

    def truth(self) -> dict[str, set[int]]:
        """The verdicts both scanners should reach on this host, by verdict name."""
        return {
            "open": self.ports(),
            "ftp_anonymous": self.ports("ftp-anon"),
            "redis_no_auth": self.ports("redis-open"),
            "http_no_auth": self.ports("http-open"),
            "dicom_any_ae": self.ports("dicom"),
        }


# Profiles like a clinic's network: (weight, required slots, optional slots with probability).
# A slot is a list of (kind, port) alternatives, one chosen at random.
Slot = list[tuple[str, int]]
_PROFILES: list[tuple[int, list[Slot], list[tuple[float, Slot]]]] = [
    (  # PACS: DICOM, often with a web viewer and SSH
        18,
        [[("dicom", 104), ("dicom", 11112), ("dicom", 4242)]],
        [(0.5, [("http-open", 8042), ("http-basic", 80)]), (0.3, [("ssh", 22)])],
    ),
    (8, [[("dicom", 104), ("dicom", 11112)]], []),  # modality: DICOM only
    (  # web viewer
        14,
        [[("http-open", 8042), ("https-basic", 443), ("http-basic", 8080)]],
        [(0.4, [("http-basic", 80)]), (0.2, [("ssh", 22)])],
    ),
    (  # NAS: FTP, its admin page, SSH
        14,
        [[("ftp-anon", 21), ("ftp-auth", 21)]],
        [(0.5, [("http-basic", 80), ("https-basic", 443)]), (0.3, [("ssh", 22)])],
    ),
    (  # database server
        10,
        [[("redis-open", 6379), ("redis-auth", 6379)]],
        [(0.6, [("ssh", 22)]), (0.2, [("http-basic", 8080)])],
    ),
    (  # servers and workstations
        36,
        [[("ssh", 22), ("http-basic", 80), ("https-basic", 443)]],
        [(0.3, [("http-basic", 8080)]), (0.1, [("ftp-auth", 21)])],
    ),
]


def _address(network: Network, index: int) -> str:
    """Host `index` (0-based); skips .0 and .255 so every address looks like a host."""
    first = ipaddress.IPv4Address(network.first)
    block, offset = divmod(index, 254)
    return str(first + block * 256 + offset)


def build_fleet(count: int, network: Network = LOOPBACK, seed: int = 20240) -> list[Host]:
    if count > network.capacity:
        raise ValueError(f"{network.name} holds {network.capacity} hosts at most")
    rng = random.Random(seed)
    weights = [p[0] for p in _PROFILES]
    hosts = []
    for index in range(count):
        address = _address(network, index)
        if rng.random() < network.dead_share:
            hosts.append(Host(index, address, dead=True))
            continue
        _, required, optional = rng.choices(_PROFILES, weights)[0]
        chosen: dict[int, Service] = {}
        for slot in required:
            kind, port = rng.choice(slot)
            chosen[port] = Service(kind, port)
        for probability, slot in optional:
            if rng.random() < probability and len(chosen) < 3:
                kind, port = rng.choice(slot)
                chosen.setdefault(port, Service(kind, port))
        hosts.append(Host(index, address, tuple(sorted(chosen.values(), key=lambda s: s.port))))
    return hosts


@dataclass
class FleetSummary:
    hosts: int
    dead: int = 0
    open_ports: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


def summarise(hosts: list[Host]) -> FleetSummary:
    summary = FleetSummary(len(hosts))
    for host in hosts:
        summary.dead += host.dead
        summary.open_ports += len(host.services)
        for s in host.services:
            summary.by_kind[s.kind] = summary.by_kind.get(s.kind, 0) + 1
    return summary
