"""The one small interface every probe implements, and what probes exchange.

A probe is a class with a `name`, optional `default_ports` and `async def check(target, ctx)`;
defining the class registers it (ospd's `__init_subclass__` pattern). Probes open connections
only through `ProbeContext.connect`, which applies the limits (global and per host concurrency,
timeouts) and lets tests swap the network layer.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

import netaddr

from inventory.validators import ExpectedService

Connector = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


class ProbeOutcome(StrEnum):
    ran = "ran"
    failed = "failed"
    skipped = "skipped"


class PortState(StrEnum):
    open = "open"
    closed = "closed"  # the host answered with a reset: reachable, nothing listens
    filtered = "filtered"  # no answer in time: a firewall, or nobody there


@dataclass(frozen=True)
class Target:
    """What the engine needs to know about an asset, and nothing more."""

    name: str
    addresses: tuple[netaddr.IPAddress, ...]
    services: tuple[ExpectedService, ...] = ()
    ae_titles: tuple[str, ...] = ()
    hostnames: tuple[str, ...] = ()
    holds_patient_data: bool = False
    options: frozenset[str] = frozenset()  # optional probes the user turned on
    # The zone policy (config): ports that may be open in the asset's zone without being declared,
    # and how serious an undeclared open port is there.
    allowed_ports: frozenset[int] = frozenset()
    unexpected_severity: str = "medium"

    def expects(self, port: int, protocol: str = "tcp") -> bool:
        return any(s.port == port and s.protocol == protocol for s in self.services)

    def allows(self, port: int, protocol: str = "tcp") -> bool:
        """Declared on the asset, or allowed in its zone by policy."""
        return self.expects(port, protocol) or (protocol == "tcp" and port in self.allowed_ports)


@dataclass(frozen=True)
class ServiceObservation:
    """What was seen on one port; `banner` is printable text, truncated, never raw bytes."""

    address: str
    port: int
    state: PortState
    protocol: str = "tcp"
    service: str = ""
    banner: str = ""
    product: str = ""
    version: str = ""


@dataclass(frozen=True)
class FindingCandidate:
    """A weakness a probe saw; the services layer decides whether it is new, still there, etc."""

    check: str
    severity: str
    address: str
    port: int | None
    title: str
    remediation: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        """What makes the finding unique on its asset, with its check: the address and port."""
        return self.address if self.port is None else f"{self.address}:{self.port}"


@dataclass
class ProbeResult:
    """One probe's outcome. `checks` lists the checks it evaluated, whether they held or not:
    a finding is fixed only when a later audit evaluated its check and it no longer holds."""

    probe: str
    outcome: ProbeOutcome
    reason: str = ""
    services: list[ServiceObservation] = field(default_factory=list)
    findings: list[FindingCandidate] = field(default_factory=list)
    checks: set[str] = field(default_factory=set)
    duration: float = 0.0


async def _open_connection(
    address: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(address, port)


@dataclass
class ProbeContext:
    """Limits and shared state for one audit run (one event loop)."""

    connect_timeout: float = 2.0
    read_timeout: float = 3.0
    max_banner_bytes: int = 2048
    default_ports: tuple[int, ...] = ()
    max_connections: int = 256
    max_connections_per_host: int = 8
    connector: Connector = _open_connection
    observed: list[ServiceObservation] = field(default_factory=list)
    _all: asyncio.Semaphore | None = None
    _per_host: dict[str, asyncio.Semaphore] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Any, connector: Connector | None = None) -> ProbeContext:
        return cls(
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            max_banner_bytes=settings.max_banner_bytes,
            default_ports=tuple(settings.default_ports),
            max_connections=settings.max_connections,
            max_connections_per_host=settings.max_connections_per_host,
            connector=connector or _open_connection,
        )

    def _limits(self, address: str) -> tuple[asyncio.Semaphore, asyncio.Semaphore]:
        if self._all is None:
            self._all = asyncio.Semaphore(self.max_connections)
        host = self._per_host.setdefault(address, asyncio.Semaphore(self.max_connections_per_host))
        return self._all, host

    @asynccontextmanager
    async def slot(self, address: str) -> AsyncIterator[None]:
        """One connection's share of the limits, for probes whose library opens its own socket
        (pynetdicom): hold it for as long as that connection is open."""
        all_hosts, host = self._limits(address)
        async with all_hosts, host:
            yield

    @asynccontextmanager
    async def connect(
        self, address: str, port: int
    ) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        """A TCP connection within the limits; closed (without waiting on the peer) on exit.

        Raises TimeoutError when the peer does not accept within connect_timeout, and OSError
        (ConnectionRefusedError, ...) as the network reports it.
        """
        all_hosts, host = self._limits(address)
        async with all_hosts, host:
            reader, writer = await asyncio.wait_for(
                self.connector(address, port), timeout=self.connect_timeout
            )
            try:
                yield reader, writer
            finally:
                writer.transport.abort()  # no graceful close: a peer that never reads can't stall

    async def read_some(
        self, reader: asyncio.StreamReader, limit: int | None = None, timeout: float | None = None
    ) -> bytes:
        """Up to `limit` bytes, or what came before the timeout; b"" when the peer said nothing.

        A peer that drips bytes slowly or streams megabytes costs at most `timeout` (default
        read_timeout) and `limit` bytes.
        """
        limit = limit or self.max_banner_bytes
        data = b""
        deadline = time.monotonic() + (self.read_timeout if timeout is None else timeout)
        while len(data) < limit:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                chunk = await asyncio.wait_for(reader.read(limit - len(data)), timeout=remaining)
            except (TimeoutError, ConnectionError, OSError):
                break
            if not chunk:
                break
            data += chunk
            if b"\n" in chunk:  # a greeting line is enough to identify a service
                break
        return data[:limit]


class Probe(ABC):
    """Base of every probe; subclasses with a `name` register themselves."""

    name: ClassVar[str] = ""
    default_ports: ClassVar[tuple[int, ...]] = ()
    registry: ClassVar[dict[str, type[Probe]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            Probe.registry[cls.name] = cls

    @abstractmethod
    async def check(self, target: Target, ctx: ProbeContext) -> ProbeResult:
        """Probe the target; never raise for what a peer does (answer with a failed result)."""


def printable(data: bytes, limit: int = 200) -> str:
    """A peer's bytes as one line of printable text, for evidence and banners."""
    text = data.decode("latin-1")
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(cleaned.split())[:limit]
