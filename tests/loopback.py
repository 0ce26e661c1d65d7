"""A plain TCP peer on its own 127.42.16x.y address, served from a thread.

Used where the code under test runs its own event loop (the web view and the CLI audit call
asyncio.run), so the peer cannot live in the test's loop. It binds 127.0.0.0/8 only.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager

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
