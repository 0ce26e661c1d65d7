"""Optional download of the feeds (`inventory feeds update`), for machines with Internet access.

Nothing else needs it: the same files can be fetched elsewhere and imported with `inventory feeds
import`. The NVD API 2.0 is paged (`startIndex`, `resultsPerPage`, `totalResults`) and rate
limited (5 requests per 30 s without an API key, 50 with one): requests are spaced accordingly,
and a 403/429/503 answer is retried after its `Retry-After` (or `X-RateLimit-Reset`) delay.
Updates are incremental by `lastModified`, in windows of at most 120 days as the API requires.
Each page is written to its own file, then everything is imported in one transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from inventory.errors import InventoryError
from inventory.i18n import N_

__all__ = ["FetchError", "FetchPlan", "KEV_URL", "NVD_URL", "fetch_feeds"]

NVD_URL = "https://services.nvd.nist.gov/rest/json/cves/2.0"
KEV_URL = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
MAX_WINDOW = timedelta(days=120)
RETRY_STATUSES = {403, 429, 500, 502, 503, 504}


class FetchError(InventoryError):
    """A download that did not complete; nothing was imported."""


@dataclass
class FetchPlan:
    nvd_url: str = NVD_URL
    kev_url: str = KEV_URL
    api_key: str = ""
    since: datetime | None = None  # None: the whole NVD
    until: datetime | None = None  # None: now
    page_size: int = 2000
    delay: float | None = None  # seconds between NVD requests; None: from the rate limit
    retries: int = 5
    max_wait: float = 120.0
    timeout: float = 60.0
    nvd: bool = True
    kev: bool = True

    def spacing(self) -> float:
        if self.delay is not None:
            return self.delay
        return 0.6 if self.api_key else 6.0


def _wait_for(response: httpx.Response, attempt: int, plan: FetchPlan) -> float:
    header = response.headers.get("Retry-After")
    if header:
        try:
            return min(float(header), plan.max_wait)
        except ValueError:
            try:
                moment = parsedate_to_datetime(header)
                return min(max(0.0, (moment - datetime.now(UTC)).total_seconds()), plan.max_wait)
            except (TypeError, ValueError):
                pass
    reset = response.headers.get("X-RateLimit-Reset")
    if reset:
        try:
            value = float(reset)
            seconds = value - time.time() if value > 1e9 else value
            return min(max(0.0, seconds), plan.max_wait)
        except ValueError:
            pass
    return min(2.0 * 2**attempt, plan.max_wait)


def _get(
    client: httpx.Client,
    url: str,
    plan: FetchPlan,
    sleep: Callable[[float], None],
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    for attempt in range(plan.retries + 1):
        try:
            response = client.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            if attempt == plan.retries:
                raise FetchError(
                    N_("Cannot download %(url)s: %(detail)s; nothing was imported."),
                    url=url,
                    detail=f"{type(exc).__name__}: {exc}"[:200],
                ) from None
            sleep(min(2.0 * 2**attempt, plan.max_wait))
            continue
        if response.status_code == 200:
            if response.headers.get("X-RateLimit-Remaining") == "0":
                sleep(_wait_for(response, attempt, plan))
            return response
        if response.status_code not in RETRY_STATUSES or attempt == plan.retries:
            break
        sleep(_wait_for(response, attempt, plan))
    raise FetchError(
        N_("Cannot download %(url)s: the server answered %(status)s; nothing was imported."),
        url=url,
        status=response.status_code,
    )


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


def _windows(plan: FetchPlan, now: datetime) -> list[tuple[datetime, datetime] | None]:
    if plan.since is None:
        return [None]
    windows: list[tuple[datetime, datetime] | None] = []
    start, end = plan.since, plan.until or now
    while start < end:
        stop = min(start + MAX_WINDOW, end)
        windows.append((start, stop))
        start = stop
    return windows or [(end - timedelta(seconds=1), end)]


def fetch_feeds(
    folder: Path,
    plan: FetchPlan,
    *,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Path]:
    """Download the feeds into `folder` (NVD pages, then the KEV catalog); returns the files."""
    own = client is None
    client = client or httpx.Client(timeout=plan.timeout, follow_redirects=True)
    files: list[Path] = []
    headers = {"apiKey": plan.api_key} if plan.api_key else {}
    try:
        if plan.nvd:
            first = True
            for window in _windows(plan, datetime.now(UTC)):
                start = 0
                while True:
                    params: dict[str, Any] = {"startIndex": start, "resultsPerPage": plan.page_size}
                    if window is not None:
                        params["lastModStartDate"] = _stamp(window[0])
                        params["lastModEndDate"] = _stamp(window[1])
                    if not first:
                        sleep(plan.spacing())
                    first = False
                    response = _get(client, plan.nvd_url, plan, sleep, params, headers)
                    try:
                        page = response.json()
                        total = int(page["totalResults"])
                        count = len(page["vulnerabilities"])
                    except (ValueError, KeyError, TypeError):
                        raise FetchError(
                            N_(
                                "%(url)s did not answer with an NVD API 2.0 page; "
                                "nothing was imported."
                            ),
                            url=plan.nvd_url,
                        ) from None
                    path = folder / f"nvd-{len(files) + 1:05d}.json"
                    path.write_text(json.dumps(page))
                    files.append(path)
                    start += count
                    if count == 0 or start >= total:
                        break
        if plan.kev:
            response = _get(client, plan.kev_url, plan, sleep)
            path = folder / "kev.json"
            path.write_bytes(response.content)
            files.append(path)
    finally:
        if own:
            client.close()
    return files
