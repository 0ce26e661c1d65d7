"""Opening a feed file without loading it: which feed it is, its header, then its records.

NVD's full history is about 300,000 records (gigabytes of JSON), so files are read as a stream
with ijson; gzip-compressed files are read as they are. The header keys (`format`, `timestamp`,
`catalogVersion`, ...) come before the `vulnerabilities` array in both feeds; when they do not,
the kind is told from the first record (`cve` for NVD, `cveID` for KEV).

Every problem is a FeedError naming the file, and where it is a record, which one: the caller
imports in one transaction, so nothing is written from a file that fails anywhere.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import ijson

from inventory.errors import InvalidInput
from inventory.i18n import N_

__all__ = ["FeedError", "FeedHeader", "open_feed", "parse_timestamp"]


class FeedError(InvalidInput):
    """A feed file that cannot be imported; nothing was written."""


@dataclass
class FeedHeader:
    kind: str  # "nvd" or "kev"
    timestamp: datetime | None = None
    version: str = ""  # NVD format version ("2.0") or KEV catalogVersion
    total: int | None = None


def parse_timestamp(value: Any) -> datetime | None:
    """NVD and KEV timestamps ("2025-08-25T17:04:19.9796Z", no zone meaning UTC)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    if "." in text:  # Python before 3.11 is strict on fraction digits; keep at most 6
        head, _, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def _open(path: Path) -> IO[bytes]:
    handle = path.open("rb")
    magic = handle.read(2)
    handle.seek(0)
    if magic == b"\x1f\x8b":
        handle.close()
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return handle


def _json_error(name: str, exc: Exception) -> FeedError:
    detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
    if "premature EOF" in str(exc) or "Incomplete JSON" in str(exc):
        return FeedError(
            N_(
                "%(file)s ends before its JSON does (an interrupted download?); "
                "nothing was imported."
            ),
            file=name,
        )
    return FeedError(
        N_("%(file)s is not valid JSON (%(detail)s); nothing was imported."),
        file=name,
        detail=detail,
    )


def _not_a_feed(name: str, detail: str) -> FeedError:
    return FeedError(
        N_(
            "%(file)s is neither an NVD API 2.0 CVE file nor the CISA KEV catalog (%(detail)s); "
            "nothing was imported."
        ),
        file=name,
        detail=detail,
    )


def _header(handle: IO[bytes], name: str) -> dict[str, Any]:
    """Top-level scalar keys up to the `vulnerabilities` array."""
    header: dict[str, Any] = {}
    try:
        for prefix, event, value in ijson.parse(handle, use_float=True):
            if prefix == "" and event != "start_map" and event != "map_key":
                if event == "end_map":
                    break
                raise _not_a_feed(name, "the file is not a JSON object")
            if prefix == "" and event == "start_map":
                continue
            if prefix == "vulnerabilities" and event == "start_array":
                header["vulnerabilities"] = True
                break
            if prefix == "CVE_Items":
                raise FeedError(
                    N_(
                        "%(file)s is an NVD 1.1 data feed, which the NVD retired; use NVD API 2.0 "
                        "JSON (what `inventory feeds update` downloads); nothing was imported."
                    ),
                    file=name,
                )
            if "." not in prefix and prefix and event in {"string", "number", "boolean"}:
                header[prefix] = value
    except ijson.JSONError as exc:
        raise _json_error(name, exc) from None
    return header


def open_feed(path: Path, name: str | None = None) -> tuple[FeedHeader, Iterator[dict[str, Any]]]:
    """The feed's header and an iterator over its raw records (one dict each).

    Raises FeedError for a file that is not JSON, not one of the two feeds, or (while iterating)
    cut short or broken further down.
    """
    name = name or path.name
    try:
        with _open(path) as handle:
            head = handle.read(1)
            if not head.strip() and not handle.read(64).strip():
                raise FeedError(N_("%(file)s is empty; nothing was imported."), file=name)
            handle.seek(0)
            header = _header(handle, name)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise FeedError(
            N_("%(file)s cannot be read (%(detail)s); nothing was imported."),
            file=name,
            detail=str(exc)[:120],
        ) from None
    if not header.pop("vulnerabilities", False):
        raise _not_a_feed(name, "no `vulnerabilities` list")
    if header.get("format") == "NVD_CVE" or "resultsPerPage" in header:
        kind = "nvd"
        if str(header.get("version", "2.0")) != "2.0":
            raise _not_a_feed(name, f"NVD format version {str(header.get('version'))[:10]}")
    elif "catalogVersion" in header or "dateReleased" in header:
        kind = "kev"
    else:
        kind = ""
    records = _records(path, name)
    first = next(records, None)
    if not kind:
        if isinstance(first, dict) and "cve" in first:
            kind = "nvd"
        elif isinstance(first, dict) and "cveID" in first:
            kind = "kev"
        else:
            raise _not_a_feed(name, "its records have neither `cve` nor `cveID`")
    total = header.get("totalResults") if kind == "nvd" else header.get("count")
    feed = FeedHeader(
        kind=kind,
        timestamp=parse_timestamp(header.get("timestamp" if kind == "nvd" else "dateReleased")),
        version=str(header.get("version" if kind == "nvd" else "catalogVersion") or "")[:32],
        total=int(total) if isinstance(total, (int, float)) else None,
    )

    def chained() -> Iterator[dict[str, Any]]:
        if first is not None:
            yield first
        yield from records

    return feed, chained()


def _records(path: Path, name: str) -> Iterator[dict[str, Any]]:
    with _open(path) as handle:
        try:
            for number, item in enumerate(
                ijson.items(handle, "vulnerabilities.item", use_float=True), 1
            ):
                if not isinstance(item, dict):
                    raise FeedError(
                        N_("%(file)s, record %(number)d: not an object; nothing was imported."),
                        file=name,
                        number=number,
                    )
                yield item
        except ijson.JSONError as exc:
            raise _json_error(name, exc) from None
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise FeedError(
                N_("%(file)s cannot be read (%(detail)s); nothing was imported."),
                file=name,
                detail=str(exc)[:120],
            ) from None
