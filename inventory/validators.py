"""Parsers for every asset field: text in, normalised value out, or a FieldError in plain words.

The web forms, the CSV/JSON import, the API and the CLI all call these, so a value accepted in one
place is accepted everywhere and means the same thing. Addresses and MACs go through netaddr;
nothing here parses an address by hand.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import netaddr

from inventory.i18n import N_, render

LIST_SEPARATORS = re.compile(r"[;,\s]+")
SEMICOLON_LIST = re.compile(r"\s*[;\n]\s*")


class FieldError(ValueError):
    """A value a user typed is not acceptable; message is an N_-marked msgid with params."""

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(render(message, params))
        self.message = message
        self.params = params

    def render(self) -> str:
        return render(self.message, self.params)


def _text(value: Any) -> str:
    """The value as text; JSON imports can put numbers or lists where text is expected."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FieldError(N_("Expected text, got %(value)s."), value=repr(value)[:40])
    return value


def _items(value: str | Iterable[str] | None, separators: re.Pattern[str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [item for item in (part.strip() for part in separators.split(value)) if item]
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise FieldError(N_("Expected text, got %(value)s."), value=repr(value)[:40])
    items: list[str] = []
    for part in value:
        if not isinstance(part, str):
            raise FieldError(N_("Expected text, got %(value)s."), value=repr(part)[:40])
        items.extend(_items(part, separators))
    return items


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Zl", "Zp"} for ch in text)


def _unique(items: list[Any], label: str) -> list[Any]:
    seen: set[Any] = set()
    for item in items:
        if item in seen:
            raise FieldError(N_("%(value)s is listed twice."), value=str(item))
        seen.add(item)
    return items


# --- text -----------------------------------------------------------------------------------


def parse_name(value: str | None) -> str:
    text = _text(value).strip()
    if not text:
        raise FieldError(N_("A name is required."))
    # The lower-case key (uniqueness) must fit too: a few letters grow when lowered (İ -> i̇).
    if len(text) > 200 or len(text.lower()) > 200:
        raise FieldError(N_("Use at most %(max)d characters."), max=200)
    if _has_control(text):
        raise FieldError(N_("Remove the line breaks and invisible characters."))
    return text


def parse_label(value: str | None, *, max_length: int = 100) -> str:
    """Short free text (site, zone, owner): trimmed, one line."""
    text = _text(value).strip()
    if len(text) > max_length:
        raise FieldError(N_("Use at most %(max)d characters."), max=max_length)
    if _has_control(text):
        raise FieldError(N_("Remove the line breaks and invisible characters."))
    return text


def parse_notes(value: str | None) -> str:
    """Free text on several lines; characters no database can store (NUL, lone surrogates) go."""
    text = _text(value).replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cs"}
    ).strip()
    if len(text) > 10_000:
        raise FieldError(N_("Use at most %(max)d characters."), max=10_000)
    return text


def parse_bool(value: str | bool | int | None) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in {"", "0", "no", "n", "false", "non", "faux", "f"}:
        return False
    if text in {"1", "yes", "y", "true", "oui", "o", "vrai", "t", "x"}:
        return True
    raise FieldError(N_("Write yes or no (got %(value)s)."), value=str(value)[:40])


def parse_choice(value: str | None, choices: Iterable[str], *, default: str | None = None) -> str:
    text = _text(value).strip().lower().replace("_", "-").replace(" ", "-")
    allowed = list(choices)
    if not text and default is not None:
        return default
    if text not in allowed:
        raise FieldError(
            N_("%(value)s is not one of: %(choices)s."),
            value=_text(value).strip()[:40] or "''",
            choices=", ".join(allowed),
        )
    return text


# --- optional checks ------------------------------------------------------------------------

# Probes a user may turn on per asset; off by default because they try logins or guess names.
DEFAULT_CREDENTIALS = "default-credentials"
AE_TITLE_GUESSING = "ae-title-guessing"
OPTIONAL_CHECKS = (DEFAULT_CREDENTIALS, AE_TITLE_GUESSING)
_CHECK_SEPARATORS = re.compile(r"\s*[;,\n]\s*")


def parse_optional_checks(value: str | Iterable[str] | None) -> list[str]:
    """A set of OPTIONAL_CHECKS names, sorted (the order typed is not a change)."""
    checks = {parse_choice(item, OPTIONAL_CHECKS) for item in _items(value, _CHECK_SEPARATORS)}
    return sorted(checks)


# --- network addresses ----------------------------------------------------------------------


def parse_address(value: str) -> netaddr.IPAddress:
    """One host address, IPv4 or IPv6; ranges, networks and special addresses are refused."""
    text = _text(value).strip()
    if not text:
        raise FieldError(N_("An address is required."))
    if "/" in text or text.count("-") == 1:
        raise FieldError(
            N_("%(value)s is a network range, not one machine's address; list each address."),
            value=text,
        )
    if "%" in text:
        raise FieldError(N_("Remove the interface suffix from %(value)s."), value=text)
    try:
        address = netaddr.IPAddress(text, flags=netaddr.INET_PTON)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise FieldError(
            N_("%(value)s is not an IP address (expected e.g. 192.168.1.20 or 2001:db8::20)."),
            value=text[:60],
        ) from None
    if address.version == 6 and address.is_ipv4_mapped():
        address = address.ipv4()
    if address.value == 0:
        raise FieldError(N_("%(value)s is not a usable machine address."), value=text)
    if address.is_multicast() or (
        address.version == 4 and address == netaddr.IPAddress("255.255.255.255")
    ):
        raise FieldError(
            N_("%(value)s is a multicast or broadcast address, not a machine."), value=text
        )
    return address


def parse_addresses(value: str | Iterable[str] | None) -> list[netaddr.IPAddress]:
    return _unique([parse_address(item) for item in _items(value, LIST_SEPARATORS)], "address")


_MAC_NOTATION = re.compile(
    r"^(?:[0-9a-f]{1,2}([:-])[0-9a-f]{1,2}(?:\1[0-9a-f]{1,2}){4}"  # 00:1b:63:84:45:e6, 0-1b-...
    r"|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}"  # 001b.6384.45e6 (Cisco)
    r"|[0-9a-f]{6}[:-][0-9a-f]{6}"  # 001b63:8445e6
    r"|[0-9a-f]{12})$",  # 001b638445e6
    re.IGNORECASE,
)


def parse_mac(value: str | None) -> str:
    """A MAC address in any common notation, stored as 00:1b:63:84:45:e6 (empty is allowed)."""
    text = _text(value).strip()
    if not text:
        return ""
    # netaddr also reads partial forms ("00:1b:63" -> 00:00:00:1b:00:63): accept only the
    # complete notations, then let netaddr parse them.
    try:
        if not _MAC_NOTATION.match(text):
            raise ValueError(text)
        mac = netaddr.EUI(text, version=48)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise FieldError(
            N_("%(value)s is not a MAC address (expected e.g. 00:1b:63:84:45:e6)."), value=text[:60]
        ) from None
    mac.dialect = netaddr.mac_unix_expanded
    return str(mac)


# --- names ----------------------------------------------------------------------------------

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def _is_address(text: str) -> bool:
    try:
        return bool(netaddr.valid_ipv4(text, flags=netaddr.INET_PTON) or netaddr.valid_ipv6(text))
    except ValueError:  # e.g. an embedded NUL, which inet_pton refuses outright
        return False


def parse_hostname(value: str) -> str:
    text = _text(value).strip().lower().rstrip(".")
    if not text:
        raise FieldError(N_("A host name is required."))
    if _is_address(text):
        raise FieldError(N_("%(value)s is an address; put it under Addresses."), value=text)
    if len(text) > 253 or not all(_LABEL.match(label) for label in text.split(".")):
        raise FieldError(
            N_(
                "%(value)s is not a valid host name (letters, digits and hyphens, "
                "dot-separated, e.g. pacs.clinic.local)."
            ),
            value=_text(value).strip()[:60],
        )
    return text


def parse_hostnames(value: str | Iterable[str] | None) -> list[str]:
    return _unique([parse_hostname(item) for item in _items(value, LIST_SEPARATORS)], "hostname")


_TAG = re.compile(r"^[\w][\w.:/+-]{0,39}$")


def parse_tags(value: str | Iterable[str] | None) -> list[str]:
    """Lower-case, deduplicated and sorted: a set, so the order typed is not a change."""
    tags: list[str] = []
    for item in _items(value, LIST_SEPARATORS):
        tag = item.lower()
        if not _TAG.match(tag):
            raise FieldError(
                N_(
                    "%(value)s is not a valid tag (up to 40 letters, digits, - _ . : /, no spaces)."
                ),
                value=item[:60],
            )
        if tag not in tags:
            tags.append(tag)
    return sorted(tags)


# --- services -------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class ExpectedService:
    """A port the asset is meant to expose, e.g. 4242/tcp dicom."""

    port: int
    protocol: str = "tcp"
    name: str = ""

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol}" + (f" {self.name}" if self.name else "")

    def as_dict(self) -> dict[str, Any]:
        return {"port": self.port, "protocol": self.protocol, "name": self.name}


_SERVICE = re.compile(
    r"^(?P<port>\d{1,5})(?:/(?P<proto>[A-Za-z]+))?(?:\s+(?P<name>[A-Za-z0-9][A-Za-z0-9._+-]{0,31}))?$"
)


def parse_service(value: str | dict[str, Any]) -> ExpectedService:
    if isinstance(value, dict):
        value = (
            f"{value.get('port', '')}/{value.get('protocol') or 'tcp'} {value.get('name') or ''}"
        )
    text = " ".join(str(value).split())
    match = _SERVICE.match(text)
    if not match:
        raise FieldError(
            N_("%(value)s is not a service; write port/protocol and a name, e.g. 4242/tcp dicom."),
            value=text[:60],
        )
    port = int(match["port"])
    if not 1 <= port <= 65535:
        raise FieldError(N_("Port %(value)s is out of range (1 to 65535)."), value=match["port"])
    protocol = (match["proto"] or "tcp").lower()
    if protocol not in {"tcp", "udp"}:
        raise FieldError(N_("Protocol %(value)s is unknown; use tcp or udp."), value=match["proto"])
    return ExpectedService(port, protocol, (match["name"] or "").lower())


def parse_services(value: str | Iterable[Any] | None) -> list[ExpectedService]:
    if value is None:
        return []
    raw: list[Any]
    if isinstance(value, str):
        raw = [item for item in SEMICOLON_LIST.split(value.replace(",", ";")) if item.strip()]
    elif isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise FieldError(N_("Expected text, got %(value)s."), value=repr(value)[:40])
    else:
        raw = list(value)
    services = [parse_service(item) for item in raw]
    keys = [(service.port, service.protocol) for service in services]
    for index, key in enumerate(keys):
        if key in keys[:index]:
            raise FieldError(N_("%(value)s is listed twice."), value=f"{key[0]}/{key[1]}")
    return sorted(services)


# --- DICOM ----------------------------------------------------------------------------------


def parse_ae_title(value: str) -> str:
    """DICOM AE title: 1-16 characters of the default repertoire, no backslash.

    Leading and trailing spaces are not significant in DICOM, so they are removed.
    """
    text = _text(value).strip()
    if not text:
        raise FieldError(N_("An AE title cannot be blank."))
    if "\\" in text:
        raise FieldError(N_("An AE title cannot contain a backslash (%(value)s)."), value=text[:40])
    if len(text) > 16:
        raise FieldError(
            N_("AE title %(value)s is too long: DICOM allows at most 16 characters."),
            value=text[:40],
        )
    if not all(" " <= ch <= "~" for ch in text):
        raise FieldError(
            N_("AE title %(value)s may only use plain letters, digits, spaces and punctuation."),
            value=text,
        )
    return text


def parse_ae_titles(value: str | Iterable[str] | None) -> list[str]:
    # Split on ";" and line breaks only: an AE title may contain inner spaces.
    return _unique([parse_ae_title(item) for item in _items(value, SEMICOLON_LIST)], "ae")


# --- CPE 2.3 --------------------------------------------------------------------------------

# NIST IR 7695 formatted-string grammar for one attribute value.
_CPE_VALUE = (
    r"(?:\*|-|(?:\?*|\*?)(?:[A-Za-z0-9._-]|\\[\\*?!\"#$%&'()+,/:;<=>@\[\]^`{|}~])+(?:\?*|\*?))"
)
_CPE_LANG = r"(?:\*|-|[A-Za-z]{2,3}(?:-(?:[A-Za-z]{2}|[0-9]{3}))?)"
_CPE = re.compile(rf"^cpe:2\.3:[aho](?::{_CPE_VALUE}){{5}}:{_CPE_LANG}(?::{_CPE_VALUE}){{4}}$")
_CPE_SPLIT = re.compile(r"(?<!\\):")


def parse_cpe(value: str) -> str:
    """A CPE 2.3 formatted name; missing trailing parts are filled with `*` and case is folded."""
    text = _text(value).strip()
    example = "cpe:2.3:a:orthanc-server:orthanc:1.12.1:*:*:*:*:*:*:*"
    if text.lower().startswith("cpe:/"):
        raise FieldError(
            N_("%(value)s uses the old CPE 2.2 form; write it as CPE 2.3, e.g. %(example)s."),
            value=text[:80],
            example=example,
        )
    parts = _CPE_SPLIT.split(text)
    # Short names are padded below, so "cpe:2.3:a:orthanc" is told to name its vendor.
    if len(parts) < 3 or parts[0].lower() != "cpe" or parts[1] != "2.3":
        raise FieldError(
            N_("%(value)s is not a CPE 2.3 name (expected e.g. %(example)s)."),
            value=text[:80],
            example=example,
        )
    if len(parts) > 13:
        raise FieldError(N_("%(value)s has too many parts for a CPE 2.3 name."), value=text[:80])
    parts += ["*"] * (13 - len(parts))
    name = ":".join(parts).lower()
    if not _CPE.match(name):
        raise FieldError(
            N_("%(value)s is not a CPE 2.3 name (expected e.g. %(example)s)."),
            value=text[:80],
            example=example,
        )
    if parts[3] in {"*", "-"} or parts[4] in {"*", "-"}:
        raise FieldError(N_("Give the vendor and the product in %(value)s."), value=text[:80])
    return name


# A CPE value may hold an escaped separator ("foo\\,_inc"): split only on unescaped ones.
_CPE_SEPARATORS = re.compile(r"(?<!\\)[;,\s]+")


def parse_cpes(value: str | Iterable[str] | None) -> list[str]:
    return _unique([parse_cpe(item) for item in _items(value, _CPE_SEPARATORS)], "cpe")


# --- intervals ------------------------------------------------------------------------------

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60}
_INTERVAL = re.compile(r"(\d{1,6})\s*([wdhm])")
MIN_INTERVAL = 15 * 60
MAX_INTERVAL = 366 * 86400


def parse_interval(value: str | int | None) -> int | None:
    """'24h', '7d', '1d12h', '90m', '2w' -> seconds; empty means 'use the default'."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        # Seconds (JSON); whole minutes only, so that format_interval can write it back exactly.
        if value % 60:
            raise FieldError(
                N_("%(value)s is not a duration; write e.g. 24h, 3d or 1w."), value=str(value)[:40]
            )
        seconds = value
    else:
        text = str(value).strip().lower().replace(" ", "")
        if not text:
            return None
        if not re.fullmatch(r"(?:\d{1,6}[wdhm])+", text):
            raise FieldError(
                N_("%(value)s is not a duration; write e.g. 24h, 3d or 1w."), value=str(value)[:40]
            )
        seconds = sum(int(n) * _UNITS[u] for n, u in _INTERVAL.findall(text))
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise FieldError(N_("Choose a duration between 15 minutes and 366 days."))
    return seconds


def format_interval(seconds: int | None) -> str:
    """The shortest exact spelling of an interval: 86400 -> '1d', 5400 -> '90m'."""
    if not seconds:
        return ""
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds // 60}m"
