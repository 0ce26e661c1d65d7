"""Factory passwords on web viewers and PACS web APIs (`auth.default-credentials`), optional.

Runs only for assets whose owner turned on the "default-credentials" optional check: trying a
login is something an old device may log or count as failed attempts, so it is never done by
default. On every web port where a data path asks for HTTP Basic credentials (401 with a Basic
challenge), it tries a short list of factory logins, one GET each, and stops at the first that
works. Read-only: the answer's status is all that is kept; nothing behind the login is read
beyond the response that says "accepted".

The factory pairs are public (product documentation, Docker images); the one that worked is kept
as evidence, because the fix is "change exactly this password".
"""

from __future__ import annotations

import asyncio
import time

import httpx

from inventory.audit.probes.base import (
    FindingCandidate,
    Probe,
    ProbeContext,
    ProbeOutcome,
    ProbeResult,
    Target,
)
from inventory.audit.probes.http import base_url, web_client, web_ports, web_scheme
from inventory.i18n import N_
from inventory.validators import DEFAULT_CREDENTIALS

CHECK = "auth.default-credentials"
# Paths asked without credentials first; the first that answers 401 Basic is where logins are
# tried (Orthanc's REST API, DICOMweb, then the home page).
PROTECTED_PATHS = ("/system", "/dicom-web/studies", "/")
# (product, user, password): at most this many attempts per port, in this order.
FACTORY_LOGINS = (
    ("Orthanc", "orthanc", "orthanc"),
    ("dcm4chee / many appliances", "admin", "admin"),
    ("many appliances", "admin", "password"),
    ("many appliances", "root", "root"),
)
REMEDIATION = N_(
    "Change this password now, to a long one kept in the password manager, and remove or "
    "rename the factory account if the product allows it. Then check the product's access log "
    "for logins you do not recognise: anyone who knows the product could log in."
)


class DefaultCredentials(Probe):
    name = "default-credentials"

    async def check(self, target: Target, ctx: ProbeContext) -> ProbeResult:
        started = time.monotonic()
        if DEFAULT_CREDENTIALS not in target.options:
            return ProbeResult(
                self.name,
                ProbeOutcome.skipped,
                reason=N_("optional check, not turned on for this asset"),
                duration=time.monotonic() - started,
            )
        ports = web_ports(target, ctx)
        outcomes = await asyncio.gather(*(self._port(ctx, a, p) for a, p in ports))
        findings = [f for f in outcomes if isinstance(f, FindingCandidate)]
        failures = [f for f in outcomes if isinstance(f, str)]
        return ProbeResult(
            self.name,
            ProbeOutcome.failed if failures else ProbeOutcome.ran,
            reason="; ".join(failures)[:300]
            if failures
            else ("" if ports else N_("no web service")),
            findings=findings,
            checks=set() if failures else {CHECK},
            duration=time.monotonic() - started,
        )

    async def _port(
        self, ctx: ProbeContext, address: str, port: int
    ) -> FindingCandidate | str | None:
        budget = 2 * ctx.connect_timeout + (len(PROTECTED_PATHS) + len(FACTORY_LOGINS) + 1) * (
            ctx.read_timeout + ctx.connect_timeout
        )
        try:
            async with asyncio.timeout(budget):
                scheme = await web_scheme(ctx, address, port)
                base = base_url(scheme, address, port)
                async with web_client(ctx) as client:
                    path = await self._protected_path(client, ctx, address, base)
                    if path is None:
                        return None  # nothing asks for Basic credentials: nothing to try
                    for product, user, password in FACTORY_LOGINS:
                        status = await self._status(
                            client, ctx, address, base + path, user, password
                        )
                        if 200 <= status < 300:
                            return self._finding(
                                address, port, scheme, path, product, user, password
                            )
        except TimeoutError:
            return f"{address}:{port}: the login attempts took too long"
        except (OSError, httpx.HTTPError) as exc:
            return f"{address}:{port}: {exc.__class__.__name__} {exc}"[:200]
        return None

    async def _protected_path(
        self, client: httpx.AsyncClient, ctx: ProbeContext, address: str, base: str
    ) -> str | None:
        for path in PROTECTED_PATHS:
            async with ctx.slot(address):
                response = await client.get(base + path)
            challenge = response.headers.get("www-authenticate", "").lower()
            if response.status_code == 401 and challenge.startswith("basic"):
                return path
        return None

    async def _status(
        self,
        client: httpx.AsyncClient,
        ctx: ProbeContext,
        address: str,
        url: str,
        user: str,
        password: str,
    ) -> int:
        # Only the status line matters: the body (data behind the login) is never read.
        async with ctx.slot(address), client.stream("GET", url, auth=(user, password)) as response:
            return response.status_code

    def _finding(
        self,
        address: str,
        port: int,
        scheme: str,
        path: str,
        product: str,
        user: str,
        password: str,
    ) -> FindingCandidate:
        return FindingCandidate(
            check=CHECK,
            severity="critical",
            address=address,
            port=port,
            title=(
                f"The web service on port {port} still accepts the factory login "
                f"{user} / {password}"
            ),
            remediation=REMEDIATION,
            evidence={
                "scheme": scheme,
                "path": path,
                "username": user,
                "factory_password": password,  # public (product documentation), and the fix
                "factory_password_of": product,
            },
        )
