"""A plain TCP peer on its own 127.42.16x.y address, served from a thread.

Used where the code under test runs its own event loop (the web view and the CLI audit call
asyncio.run), so the peer cannot live in the test's loop. It binds 127.0.0.0/8 only.
"""

from __future__ import annotations

import asyncio
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SSH_GREETING = b"SSH-2.0-OpenSSH_9.6 Vigie-test\r\n"


@contextmanager
def greeting_peer(host: str, greeting: bytes = SSH_GREETING) -> Iterator[int]:
    """Listen on host (a loopback address), greet every connection, then hang up; yields port."""
    assert host.startswith("127."), "test peers live on loopback only"

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(2)
            try:
                self.request.sendall(greeting)
                self.request.recv(1024)
            except OSError:
                pass

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    server = Server((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def asyncio_peer(start: Any) -> Iterator[Any]:
    """Runs `await start()` (which starts asyncio servers and returns what the test needs, with
    the servers in a `servers` attribute or as the first item) in an event loop of its own, in a
    thread, for code under test that runs its own loop or another process."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    started = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    servers = started[0] if isinstance(started, tuple) else started

    async def close() -> None:
        for server in servers if isinstance(servers, list) else [servers]:
            server.close()
            await server.wait_closed()

    try:
        yield started
    finally:
        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
