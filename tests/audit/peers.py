"""Real TCP peers on loopback for the audit tests, each on its own 127.x.y.z address.

Well-behaved and hostile ones: a greeting server, a silent one, one that resets, one that drips a
byte at a time, one that streams megabytes. All bind 127.0.0.0/8 only.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
from collections.abc import Awaitable, Callable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
_next_host = itertools.count(1)


def loopback_host() -> str:
    """A fresh 127.42.x.y address, so each peer is its own 'machine'."""
    n = next(_next_host)
    return f"127.42.{n // 250}.{n % 250 + 1}"


async def serve(
    handler: Handler, host: str | None = None, port: int = 0
) -> tuple[asyncio.Server, str, int]:
    host = host or loopback_host()
    server = await asyncio.start_server(handler, host, port)
    bound_port = server.sockets[0].getsockname()[1]
    return server, host, bound_port


def greeting(text: bytes) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(text)
        await writer.drain()
        await asyncio.sleep(5)
        writer.close()

    return handle


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)  # accepts, never says anything


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # RST at once


async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    for _ in range(600):  # one byte every 50 ms, never a line end
        writer.write(b"x")
        await writer.drain()
        await asyncio.sleep(0.05)


async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    chunk = b"A" * 65536
    try:
        for _ in range(160):  # 10 MB, as fast as the reader takes it
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass


def free_port(host: str) -> int:
    """A port nobody listens on at `host` (bound then released)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
