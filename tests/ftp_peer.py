"""An FTP-like peer that lets anyone in, on its own loopback address, for the API and browser
tests of "Audit now".

It greets like vsftpd, answers FEAT (no AUTH TLS), USER/PASS with 331/230 and anything else with
502, so the FTP probe finds `ftp.anonymous-login` (high) and `ftp.cleartext` (medium) on it.
It runs on tests/audit/peers.py's `serve` in an event loop of its own thread, because the code
under test (the web view, the API) runs the audit with its own asyncio.run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from tests.audit import peers

GREETING = b"220 (vsFTPd 3.0.3)\r\n"
REPLIES = {
    "FEAT": b"211-Features:\r\n PASV\r\n UTF8\r\n211 End\r\n",
    "USER": b"331 Please specify the password.\r\n",
    "PASS": b"230 Login successful.\r\n",
    "QUIT": b"221 Goodbye.\r\n",
}


async def anonymous_ftp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(GREETING)
    with suppress(ConnectionError, TimeoutError):
        await writer.drain()
        while line := await asyncio.wait_for(reader.readline(), 5):
            command = line.decode("ascii", "replace").strip().split(" ")[0].upper()
            writer.write(REPLIES.get(command, b"502 Command not implemented.\r\n"))
            await writer.drain()
            if command == "QUIT":
                break
    writer.close()


@contextmanager
def ftp_peer(host: str) -> Iterator[int]:
    """Serve `anonymous_ftp` on host (a loopback address) until the block ends; yields the port."""
    assert host.startswith("127."), "test peers live on loopback only"
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=f"ftp-peer-{host}", daemon=True)
    thread.start()
    server, _, port = asyncio.run_coroutine_threadsafe(
        peers.serve(anonymous_ftp, host), loop
    ).result(10)

    async def stop() -> None:
        server.close()
        await server.wait_closed()

    try:
        yield port
    finally:
        with suppress(TimeoutError):
            asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
