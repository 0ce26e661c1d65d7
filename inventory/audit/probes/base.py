"""The one small interface every probe implements, and what probes exchange.

A probe is a class with a `name`, optional `default_ports` and `async def check(target, ctx)`;
defining the class registers it (ospd's `__init_subclass__` pattern). Probes open connections
only through `ProbeContext.connect`, which applies the limits (global and per host concurrency,
timeouts) and lets tests swap the network layer. The limits (`ConnectionLimits`) can be shared
by the contexts of many audits in one event loop (`engine.audit_many`).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

import netaddr

from inventory.validators import ExpectedService

T = TypeVar("T")
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


_SOCK_NONBLOCK = getattr(socket, "SOCK_NONBLOCK", 0)  # Linux: a socket born non-blocking


async def _settled(loop: asyncio.AbstractEventLoop, sock: socket.socket, timeout: float) -> int:
    """The outcome of a non-blocking connect() that answered EINPROGRESS: 0 or the errno
    (ETIMEDOUT when `timeout` ran out).

    loop.sock_connect does the same with more machinery; here a connection that the kernel has
    settled meanwhile (a LAN peer, loopback) costs no selector round trip.
    """
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        return error
    try:
        sock.getpeername()
        return 0
    except OSError:
        pass  # still under way: wait until the socket is writable
    done = loop.create_future()
    fd = sock.fileno()
    loop.add_writer(fd, _settle, done)
    try:
        async with asyncio.timeout(timeout):
            await done
    except TimeoutError:
        return errno.ETIMEDOUT
    finally:
        loop.remove_writer(fd)
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)


def _settle(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


class _Gate:
    """A FIFO counting semaphore whose release costs O(1): asyncio.Semaphore (3.11) looks
    through all its waiters on every release, which is quadratic with thousands of them."""

    __slots__ = ("_free", "_waiters")

    def __init__(self, value: int) -> None:
        self._free = value
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a slot, then cancelled
                self.release()
            raise

    def release(self) -> None:
        while self._waiters:  # hand the slot straight to the first waiter still waiting
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    @property
    def idle(self) -> bool:
        return not self._waiters

    @property
    def spare(self) -> int:
        """Slots nobody holds or waits for."""
        return 0 if self._waiters else self._free


class ConnectionLimits:
    """Connections open at once, in all and towards one host, shared by every audit that uses it.

    A host's gate exists only while a connection to it is open or waited for, so auditing
    10,000 hosts does not leave 10,000 semaphores behind. A connection takes its host's slot
    before a global one: a host that is at its own limit does not hold global slots idle.
    """

    def __init__(self, max_connections: int, max_per_host: int) -> None:
        self.max_connections = max_connections
        self.max_per_host = max_per_host
        self._all = _Gate(max_connections)
        self._hosts: dict[str, tuple[_Gate, list[int]]] = {}

    @property
    def spare(self) -> int:
        """Connections that could open now without waiting (none while some wait)."""
        return self._all.spare

    @property
    def hosts_tracked(self) -> int:
        """Hosts with a connection open or waited for now."""
        return len(self._hosts)

    async def acquire(self, address: str) -> None:
        """Wait for a slot towards `address`; every acquire must be followed by one release."""
        entry = self._hosts.get(address)
        if entry is None:
            entry = self._hosts[address] = (_Gate(self.max_per_host), [0])
        host, users = entry
        users[0] += 1
        try:
            await host.acquire()
            try:
                await self._all.acquire()
            except BaseException:
                host.release()
                raise
        except BaseException:
            self._forget(address, users)
            raise

    def release(self, address: str) -> None:
        host, users = self._hosts[address]
        self._all.release()
        host.release()
        self._forget(address, users)

    def _forget(self, address: str, users: list[int]) -> None:
        users[0] -= 1
        if not users[0]:
            del self._hosts[address]

    @asynccontextmanager
    async def slot(self, address: str) -> AsyncIterator[None]:
        await self.acquire(address)
        try:
            yield
        finally:
            self.release(address)


@dataclass
class ProbeContext:
    """Limits and shared state for one audit (the limits may be shared with other audits)."""

    connect_timeout: float = 2.0
    read_timeout: float = 3.0
    max_banner_bytes: int = 2048
    default_ports: tuple[int, ...] = ()
    max_connections: int = 256
    max_connections_per_host: int = 8
    connector: Connector = _open_connection
    observed: list[ServiceObservation] = field(default_factory=list)
    limits: ConnectionLimits | None = None
    _once: dict[Hashable, asyncio.Future[Any]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        connector: Connector | None = None,
        limits: ConnectionLimits | None = None,
    ) -> ProbeContext:
        return cls(
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            max_banner_bytes=settings.max_banner_bytes,
            default_ports=tuple(settings.default_ports),
            max_connections=settings.max_connections,
            max_connections_per_host=settings.max_connections_per_host,
            connector=connector or _open_connection,
            limits=limits,
        )

    async def once(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        """`work()` done once per audit for `key`, its result (or exception) shared by every
        probe that asks: one TLS handshake per port serves the TLS and the web probes.

        A caller that is cancelled (the audit deadline) leaves the work to the others; it ends
        within its own timeouts.
        """
        task = self._once.get(key)
        if task is None:
            task = self._once[key] = asyncio.ensure_future(work())
        return await asyncio.shield(task)

    def _shared(self) -> ConnectionLimits:
        if self.limits is None:
            self.limits = ConnectionLimits(self.max_connections, self.max_connections_per_host)
        return self.limits

    def slot(self, address: str) -> AbstractAsyncContextManager[None]:
        """One connection's share of the limits, for probes whose library opens its own socket
        (pynetdicom): hold it for as long as that connection is open."""
        return self._shared().slot(address)

    async def knock(
        self,
        address: str,
        port: int,
        wait: float,
        quiet: float | None = None,
        round_trips: float = 4,
    ) -> tuple[PortState, bytes]:
        """The port's state, and what an open port said within `wait` seconds (its greeting).

        With `quiet`, a port where no greeting is expected: listen only `round_trips` times as
        long as the connect took, at least `quiet` seconds and at most `wait`.

        The port stage's own path: a bare non-blocking socket (no stream objects, no extra task
        per connection), a few times cheaper than `connect` when thousands of ports are tried.
        A context with another connector (tests) goes through that connector instead.
        """
        if self.connector is not _open_connection:
            return await self._knock_through_connector(address, port, quiet or wait)
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        limits = self._shared()
        await limits.acquire(address)
        try:
            # Created non-blocking (one system call fewer than setblocking), closed by hand:
            # on loopback or a LAN most ports are settled by connect() itself, and this is
            # all the work they cost.
            sock = socket.socket(family, socket.SOCK_STREAM | _SOCK_NONBLOCK)
            try:
                if not _SOCK_NONBLOCK:
                    sock.setblocking(False)
                started = loop.time()
                error = sock.connect_ex((address, port))
                if error == errno.EINPROGRESS:
                    error = await _settled(loop, sock, self.connect_timeout)
                if error == errno.ECONNREFUSED:
                    return PortState.closed, b""
                if error:
                    return PortState.filtered, b""
                if quiet is not None:
                    wait = min(wait, max(quiet, round_trips * (loop.time() - started)))
                return PortState.open, await self._greeting(loop, sock, wait)
            finally:
                sock.close()
        finally:
            limits.release(address)

    async def _greeting(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, wait: float
    ) -> bytes:
        """Like read_some, on a bare socket: bounded by `wait` and max_banner_bytes."""
        data = b""
        deadline = loop.time() + wait
        while len(data) < self.max_banner_bytes:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    chunk = await loop.sock_recv(sock, self.max_banner_bytes - len(data))
            except (TimeoutError, OSError):
                break
            if not chunk:
                break
            data += chunk
            if b"\n" in chunk:  # a greeting line is enough to identify a service
                break
        return data

    async def _knock_through_connector(
        self, address: str, port: int, wait: float
    ) -> tuple[PortState, bytes]:
        try:
            async with self.connect(address, port) as (reader, _writer):
                return PortState.open, await self.read_some(reader, timeout=wait)
        except ConnectionRefusedError:
            return PortState.closed, b""
        except (TimeoutError, OSError):
            return PortState.filtered, b""

    @asynccontextmanager
    async def connect(
        self, address: str, port: int
    ) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        """A TCP connection within the limits; closed (without waiting on the peer) on exit.

        Raises TimeoutError when the peer does not accept within connect_timeout, and OSError
        (ConnectionRefusedError, ...) as the network reports it.
        """
        async with self._shared().slot(address):
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await self.connector(address, port)
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
