"""Redis answering without a password (`database.no-authentication`).

Runs on every open port the port stage named "redis" (6379, or declared). Read-only: PING,
INFO server and INFO keyspace, spoken in RESP by hand. Only the version, the number of keys and
the logical database names (db0, db1...) are kept, never a key or a value.
"""

from __future__ import annotations

import asyncio

from inventory.audit.probes._wire import (
    MAX_NAMES,
    Buffered,
    ProtocolError,
    ports_for,
    run_on_ports,
)
from inventory.audit.probes.base import (
    FindingCandidate,
    PortState,
    Probe,
    ProbeContext,
    ProbeResult,
    ServiceObservation,
    Target,
    printable,
)
from inventory.i18n import N_

NO_AUTHENTICATION = "database.no-authentication"
MAX_REPLY = 64 * 1024
_AUTH_ERRORS = ("NOAUTH", "WRONGPASS", "DENIED", "ERR AUTHENTICATION", "NOPERM")


def _command(*words: str) -> bytes:
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        raw = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


async def _reply(stream: Buffered) -> tuple[str, str]:
    """One simple reply: ("+", text), ("-", error) or ("$", bulk text)."""
    line = await stream.line()
    kind, rest = line[:1], line[1:]
    if kind in (b"+", b"-", b":"):
        return kind.decode(), printable(rest, 300)
    if kind == b"$":
        try:
            size = int(rest)
        except ValueError as exc:
            raise ProtocolError(f"not a Redis reply: {printable(line, 60)!r}") from exc
        if size < 0:
            return "$", ""
        if size > MAX_REPLY:
            raise ProtocolError(f"a Redis reply of {size} bytes is too long")
        data = await stream.exactly(size + 2)
        return "$", data[:size].decode("utf-8", "replace")
    raise ProtocolError(f"not a Redis reply: {printable(line, 60)!r}")


def _fields(info: str) -> dict[str, str]:
    fields = {}
    for line in info.splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith("#"):
            fields[key.strip()] = value.strip()
    return fields


class Redis(Probe):
    name = "redis"
    default_ports = (6379,)

    async def check(self, target: Target, ctx: ProbeContext) -> ProbeResult:
        budget = ctx.connect_timeout + 4 * ctx.read_timeout

        async def on_port(
            address: str, port: int
        ) -> tuple[list[ServiceObservation], list[FindingCandidate]]:
            return await self._check_port(address, port, ctx)

        return await run_on_ports(
            self.name, "Redis", {NO_AUTHENTICATION}, ports_for(ctx, {"redis"}), on_port, budget
        )

    async def _check_port(
        self, address: str, port: int, ctx: ProbeContext
    ) -> tuple[list[ServiceObservation], list[FindingCandidate]]:
        async with ctx.connect(address, port) as (reader, writer):
            stream = Buffered(ctx, reader, cap=4 * MAX_REPLY)
            writer.write(_command("PING"))
            kind, text = await _reply(stream)
            if kind == "-":
                if text.upper().startswith(_AUTH_ERRORS):
                    service = ServiceObservation(
                        address, port, PortState.open, service="redis", product="Redis"
                    )
                    return [service], []
                raise ProtocolError(f"Redis refused PING: {text[:80]}")
            if (kind, text.upper()) != ("+", "PONG"):
                raise ProtocolError(f"not a Redis answer to PING: {text[:60]!r}")
            server = await self._info(stream, writer, "server")
            keyspace = await self._info(stream, writer, "keyspace")
        version = server.get("redis_version", "")
        databases = sorted(k for k in keyspace if k.startswith("db"))
        keys = 0
        for name in databases:
            for part in keyspace[name].split(","):
                key, _, value = part.partition("=")
                if key == "keys" and value.isdigit():
                    keys += int(value)
        evidence: dict[str, object] = {
            "product": "Redis",
            "version": version,
            "mode": server.get("redis_mode", ""),
            "databases": databases[:MAX_NAMES],
            "database_count": len(databases),
            "key_count": keys,
        }
        finding = FindingCandidate(
            check=NO_AUTHENTICATION,
            severity="critical",
            address=address,
            port=port,
            title=f"The Redis database on port {port} answers anyone, without a password",
            remediation=N_(
                "Require a password (requirepass, or ACL users in Redis 6 and later), bind Redis "
                "to the addresses of the applications that use it, and close the port at the "
                "firewall for everybody else."
            ),
            evidence=evidence,
        )
        service = ServiceObservation(
            address, port, PortState.open, service="redis", product="Redis", version=version
        )
        return [service], [finding]

    async def _info(
        self, stream: Buffered, writer: asyncio.StreamWriter, section: str
    ) -> dict[str, str]:
        writer.write(_command("INFO", section))
        kind, text = await _reply(stream)
        if kind != "$":
            raise ProtocolError(f"Redis refused INFO {section}: {text[:80]}")
        return _fields(text)
