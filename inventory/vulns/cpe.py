"""CPE 2.3 formatted names (NIST IR 7695): parsing, building and attribute matching.

A name is ``cpe:2.3:part:vendor:product:version:update:edition:language:sw_edition:
target_sw:target_hw:other``. ``*`` means "any value", ``-`` means "not applicable", and a
backslash escapes punctuation inside a value (``foo\\:bar``). Values are compared unescaped and
case-insensitively.

What an asset's name leaves open (``*``) does not stop a match: a user who writes
``openssh:9.8`` without an update is matched by records about ``9.8:-`` and ``9.8:p1`` alike.
The version is the exception (see inventory.vulns.matching): an asset without a version matches
only records that affect every version.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = [
    "ATTRIBUTES",
    "VENDOR_ALIASES",
    "Cpe",
    "CpeError",
    "aliases_of",
    "build_cpe",
    "escape",
    "parse",
    "value_matches",
]

ATTRIBUTES = (
    "part",
    "vendor",
    "product",
    "version",
    "update",
    "edition",
    "language",
    "sw_edition",
    "target_sw",
    "target_hw",
    "other",
)
_SPLIT = re.compile(r"(?<!\\):")
_UNESCAPE = re.compile(r"\\(.)")
_PLAIN = re.compile(r"[a-z0-9._-]")

# Products NVD has filed under more than one vendor name over the years. Matching through an
# alias is reported as such on the finding ("matched through the vendor name dicom").
VENDOR_ALIASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("offis", "dcmtk"): ("dicom",),
    ("dicom", "dcmtk"): ("offis",),
    ("f5", "nginx"): ("nginx", "igor_sysoev"),
    ("nginx", "nginx"): ("f5", "igor_sysoev"),
    ("igor_sysoev", "nginx"): ("f5", "nginx"),
    ("elastic", "elasticsearch"): ("elasticsearch",),
    ("elasticsearch", "elasticsearch"): ("elastic",),
    ("mongodb", "mongodb"): ("10gen",),
    ("redis", "redis"): ("redislabs",),
    ("redislabs", "redis"): ("redis",),
}


class CpeError(ValueError):
    """Text that is not a CPE 2.3 formatted name."""


class Cpe:
    """One parsed name; each attribute keeps its formatted (escaped, lower-case) value.

    Immutable by convention; equal names are equal objects. A plain class with slots rather than
    a frozen dataclass: an NVD import builds millions of them, and this is several times faster.
    """

    __slots__ = (*ATTRIBUTES, "text")

    part: str
    vendor: str
    product: str
    version: str
    update: str
    edition: str
    language: str
    sw_edition: str
    target_sw: str
    target_hw: str
    other: str
    text: str  # the formatted name, worked out once: names are compared and used as keys a lot

    def __init__(
        self,
        part: str,
        vendor: str,
        product: str,
        version: str = "*",
        update: str = "*",
        edition: str = "*",
        language: str = "*",
        sw_edition: str = "*",
        target_sw: str = "*",
        target_hw: str = "*",
        other: str = "*",
    ) -> None:
        self.part, self.vendor, self.product, self.version = part, vendor, product, version
        self.update, self.edition, self.language = update, edition, language
        self.sw_edition, self.target_sw, self.target_hw = sw_edition, target_sw, target_hw
        self.other = other
        self.text = "cpe:2.3:" + ":".join(
            (part, vendor, product, version, update, edition, language)
            + (sw_edition, target_sw, target_hw, other)
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cpe) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Cpe({self.text!r})"

    @property
    def key(self) -> tuple[str, str]:
        """vendor and product, the index every lookup starts from."""
        return self.vendor, self.product

    def values(self) -> tuple[str, ...]:
        return tuple(getattr(self, name) for name in ATTRIBUTES)

    def __str__(self) -> str:
        return self.text

    def with_vendor(self, vendor: str) -> Cpe:
        return Cpe(self.part, vendor, *self.values()[2:])

    def label(self) -> str:
        """Vendor, product and version for people: "orthanc-server orthanc 1.11.3"."""
        words = [unescape(self.vendor), unescape(self.product)]
        if self.version not in {"*", "-"}:
            words.append(unescape(self.version))
        if self.update not in {"*", "-"}:
            words.append(unescape(self.update))
        return " ".join(words)


def unescape(value: str) -> str:
    return _UNESCAPE.sub(r"\1", value) if "\\" in value else value


def escape(value: str) -> str:
    """A free-text value (e.g. a version typed by a user) as a CPE formatted value."""
    value = value.strip().lower()
    if value in {"", "*"}:
        return "*"
    return "".join(ch if _PLAIN.match(ch) else "\\" + ch for ch in value.replace(" ", "_"))


@lru_cache(maxsize=131072)
def parse(text: str) -> Cpe:
    """A CPE 2.3 formatted name; missing trailing attributes are ``*``."""
    if not isinstance(text, str):
        raise CpeError(f"not text: {text!r}"[:80])
    lowered = text.strip().lower()
    parts = lowered.split(":") if "\\" not in lowered else _SPLIT.split(lowered)
    if len(parts) < 5 or parts[0] != "cpe" or parts[1] != "2.3":
        raise CpeError(f"not a CPE 2.3 name: {text[:80]}")
    if len(parts) > 13:
        raise CpeError(f"too many parts for a CPE 2.3 name: {text[:80]}")
    values = parts[2:] + ["*"] * (13 - len(parts))
    if values[0] not in {"a", "o", "h", "*"}:
        raise CpeError(f"part must be a, o or h: {text[:80]}")
    if "" in values:
        raise CpeError(f"empty attribute in {text[:80]}")
    return Cpe(*values)


def build_cpe(part: str, vendor: str, product: str, version: str = "*", update: str = "*") -> str:
    """A full name from its leading attributes (vendor and product already formatted)."""
    return str(Cpe(part, vendor, product, escape(version), escape(update)))


def aliases_of(vendor: str, product: str) -> tuple[str, ...]:
    return VENDOR_ALIASES.get((vendor, product), ())


@lru_cache(maxsize=4096)
def _pattern(value: str) -> re.Pattern[str] | None:
    """A regex for a criteria value with unescaped ``*`` or ``?`` inside, else None."""
    if not re.search(r"(?<!\\)[*?]", value):
        return None
    out = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            out.append(re.escape(value[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    return re.compile("^" + "".join(out) + "$")


def value_matches(criteria: str, target: str) -> bool:
    """Whether an asset's attribute value `target` is covered by a record's `criteria` value."""
    if criteria == "*" or target == "*" or criteria == target:
        return True
    if criteria == "-" or target == "-":
        return False
    pattern = _pattern(criteria)
    if pattern is not None:
        return bool(pattern.match(unescape(target)))
    return unescape(criteria) == unescape(target)
