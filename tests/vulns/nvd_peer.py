"""A loopback HTTP server that imitates the NVD API 2.0 (paging, API key, rate limiting) and the
CISA KEV download, serving the real sample records."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.vulns.data import KEV, NVD_SAMPLE


@dataclass
class NvdPeer:
    url: str = ""
    kev_url: str = ""
    records: list[Any] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    refuse_first: int = 1  # answer this many requests with 429 + Retry-After first
    refused: int = 0
    api_key: str = "test-key"
    broken_page: bool = False


@contextmanager
def nvd_peer(host: str = "127.42.170.1") -> Iterator[NvdPeer]:
    assert host.startswith("127.")
    peer = NvdPeer(records=json.loads(NVD_SAMPLE.read_text())["vulnerabilities"])
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parsed = urlparse(self.path)
            if parsed.path == "/kev.json":
                self._send(200, KEV.read_bytes())
                return
            query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
            with lock:
                peer.requests.append({"query": query, "api_key": self.headers.get("apiKey")})
                if peer.refused < peer.refuse_first:
                    peer.refused += 1
                    self._send(429, b'{"message": "slow down"}', {"Retry-After": "0"})
                    return
            if self.headers.get("apiKey") != peer.api_key:
                self._send(404, b"{}")
                return
            if peer.broken_page:
                self._send(200, b'{"resultsPerPage": 2, "vulnerabilit')
                return
            records = peer.records
            if "lastModStartDate" in query:
                start = query["lastModStartDate"][:19]
                records = [r for r in records if r["cve"]["lastModified"][:19] >= start]
            index = int(query.get("startIndex", 0))
            size = min(int(query.get("resultsPerPage", 2000)), 10)  # small pages: more paging
            page = records[index : index + size]
            body = {
                "resultsPerPage": len(page),
                "startIndex": index,
                "totalResults": len(records),
                "format": "NVD_CVE",
                "version": "2.0",
                "timestamp": "2025-08-26T10:00:00.000",
                "vulnerabilities": page,
            }
            self._send(200, json.dumps(body).encode(), {"X-RateLimit-Remaining": "40"})

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    port = server.server_address[1]
    peer.url = f"http://{host}:{port}/rest/json/cves/2.0"
    peer.kev_url = f"http://{host}:{port}/kev.json"
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
