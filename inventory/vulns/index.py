"""Vulnerable criteria arranged for matching many assets' CPE names fast, and records'
configurations read lazily; plain Python (the database side is inventory.services.vuln_match).

A product's criteria are kept by version: exact versions by their sort key, ranges by their
upper bound, the rest in small lists, so that one asset name is compared with the few criteria
its version can fall in, most of them on precomputed version keys alone.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from inventory.vulns.cpe import Cpe, CpeError, parse, unescape
from inventory.vulns.matching import Configuration, Criterion, criterion_matches
from inventory.vulns.matching import parse_configurations as _parse_configurations
from inventory.vulns.versions import sort_text, version_key

__all__ = [
    "EXACT",
    "RANGE_END",
    "Bounds",
    "Configurations",
    "Entry",
    "Hits",
    "ProductIndex",
    "version_sort",
]


Hits = dict[int, list[str]]  # vulnerability id -> the criteria that matched
Bounds = tuple[str | None, bool, str | None, bool]  # start, start including, end, end including
_ANY_TAIL = ":*:*:*:*:*:*:*"  # update ... other all "*": only part and version can differ


SORT_MAX = 200  # models.vuln.VERSION_SORT's length


RANGE_END, EXACT = "r", "e"  # what a version_sort text is about, written before it


def version_sort(criteria: str, start: str | None, end: str | None) -> str | None:
    """The `vuln_cpe_match.version_sort` of a vulnerable criterion: "r" and the sort text
    (versions.sort_text) of a range's end, or "e" and that of an exact version, as ProductIndex
    reads them, so that the database finds the ranges an asset version is not past and the
    exact versions it runs by seeking in its index; None where ProductIndex keeps the criterion
    whatever the assets' versions are, and where the text would not fit."""
    fields = criteria.split(":")
    if len(fields) != 13 or "\\" in criteria:
        return None
    if start is not None or end is not None:
        text = None if end is None else sort_text(end)
        kind = RANGE_END
    else:
        version = fields[5]
        if version in {"*", "-"} or "*" in version or "?" in version:
            return None
        text = sort_text(version)
        kind = EXACT
    return kind + text if text is not None and len(text) < SORT_MAX else None


class Entry:
    """One vulnerable criterion as the index keeps it: its version bounds as sort keys, worked
    out once, and the parsed criterion only when some attribute besides the version is set."""

    __slots__ = ("vid", "criteria", "part", "start", "start_inc", "end", "end_inc", "full")

    def __init__(
        self,
        vid: int,
        criteria: str,
        part: str,
        start: Any,
        start_inc: bool,
        end: Any,
        end_inc: bool,
    ) -> None:
        self.vid, self.criteria, self.part = vid, criteria, part
        self.start, self.start_inc, self.end, self.end_inc = start, start_inc, end, end_inc
        self.full: Criterion | None = None  # set for criteria the fast checks cannot decide


class ProductIndex:
    """One product's vulnerable criteria, arranged so that a version finds its few candidates
    without testing every criterion: exact versions by key, ranges by their upper bound.

    Most criteria name only a part, a vendor, a product and a version or range (everything else
    `*`): those are decided on the precomputed version keys alone; the others (an update, a
    target platform...) go through matching.criterion_matches once the version fits.

    Built for given asset versions (`versions`), it keeps only the criteria one of them can
    meet: an exact version one of them has, a range that does not end below the oldest. Built
    without, it keeps every criterion."""

    def __init__(self, versions: Iterable[str] = ()) -> None:
        keys = {version_key(unescape(v)) for v in versions if v not in {"*", "-"}}
        self.wanted: set[Any] | None = keys if keys or versions else None
        self.lowest = min(keys) if keys else None
        self.exact: dict[Any, list[Entry]] = defaultdict(list)
        self.ranged: list[Entry] = []  # sorted by upper bound
        self.every: list[Entry] = []  # version "*" without a range
        self.dash: list[Entry] = []  # version "-" (not applicable)
        self.other: list[Entry] = []  # wildcards in the version, escaped characters
        self._sorted = True

    def add(self, vid: int, criteria: str, bounds: Bounds) -> None:
        """One criterion; `bounds` is (start, start including, end, end including)."""
        start, start_inc, end, end_inc = bounds
        fields = criteria.split(":")
        if len(fields) != 13 or "\\" in criteria:
            self._add_full(self.other, vid, criteria, bounds)
            return
        part, version = fields[2], fields[5]
        plain = criteria.endswith(_ANY_TAIL)
        if start is not None or end is not None:
            if self.wanted is not None and (
                self.lowest is None or (end is not None and version_key(end) < self.lowest)
            ):
                return  # every version here is past the end of this range (or unknown)
            entry = Entry(
                vid,
                criteria,
                part,
                version_key(start) if start is not None else None,
                start_inc,
                version_key(end) if end is not None else _NO_END,
                end_inc,
            )
            if not plain or version != "*":
                entry.full = _criterion(criteria, bounds)
                if entry.full is None:
                    return
            self.ranged.append(entry)
            self._sorted = False
            return
        if version != "*" and ("*" in version or "?" in version):  # a pattern, e.g. 1.2.*
            self._add_full(self.other, vid, criteria, bounds)
            return
        if version == "*":
            target = self.every
        elif version == "-":
            target = self.dash
        else:
            key = version_key(version)
            if self.wanted is not None and key not in self.wanted:
                return  # nobody here runs this exact version
            target = self.exact[key]
        if plain:
            target.append(Entry(vid, criteria, part, None, True, None, True))
        else:
            self._add_full(target, vid, criteria, bounds)

    @staticmethod
    def _add_full(target: list[Entry], vid: int, criteria: str, bounds: Bounds) -> None:
        criterion = _criterion(criteria, bounds)
        if criterion is not None:
            entry = Entry(vid, criteria, criterion.cpe.part, None, True, None, True)
            entry.full = criterion
            target.append(entry)

    def hits(self, cpe: Cpe) -> Hits:
        if not self._sorted:
            self.ranged.sort(key=lambda e: e.end)
            self._sorted = True
        found: Hits = defaultdict(list)
        part = cpe.part

        def check(entries: Iterable[Entry]) -> None:
            for entry in entries:
                if entry.full is not None:
                    if criterion_matches(entry.full, cpe):
                        found[entry.vid].append(entry.criteria)
                elif entry.part == part or entry.part == "*" or part == "*":
                    found[entry.vid].append(entry.criteria)

        check(self.every)
        check(self.other)
        if cpe.version == "-":
            check(self.dash)
        if cpe.version in {"*", "-"}:
            return found  # an unknown version matches only criteria for every version
        key = version_key(unescape(cpe.version))
        check(self.exact.get(key, ()))
        # Ranges whose upper bound is below the version cannot hold it: skip them at once.
        in_range = []
        for entry in self.ranged[bisect_left(self.ranged, key, key=lambda e: e.end) :]:
            if entry.full is None:
                if entry.end == key and not entry.end_inc:
                    continue
                if entry.start is not None and (
                    key < entry.start or (key == entry.start and not entry.start_inc)
                ):
                    continue
            in_range.append(entry)
        check(in_range)
        return found


def _criterion(criteria: str, bounds: Bounds) -> Criterion | None:
    try:
        cpe = parse(criteria)
    except CpeError:
        return None
    return Criterion(criteria, cpe, True, *bounds)


_NO_END = (1 << 62, ())


class Configurations:
    """A record's configurations, each kept as its JSON text until an asset runs a product it
    names: a record lists up to thousands of criteria, most about products nobody here runs,
    and building Python objects for them cost more than all the rest of a re-match.

    Which configurations name a product is found in the text itself (":vendor:product:", no
    JSON parsing), the first time an asset asks: every mention counts, vulnerable or not, so
    `about` may give a configuration that turns out not to apply; never does it leave out one
    that does. A text with escapes (a backslash) is always given."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.texts: list[str] = list(texts)
        self.lowered = [text.lower() for text in self.texts]
        self.parsed: dict[int, tuple[Configuration, ...]] = {}
        self.by_key: dict[tuple[str, str], list[int]] = {}
        self.always = [n for n, text in enumerate(self.lowered) if "\\" in text]

    def about(self, keys: Iterable[tuple[str, str]]) -> list[Configuration]:
        """The configurations that name one of `keys`."""
        numbers = set(self.always)
        for key in keys:
            found = self.by_key.get(key)
            if found is None:
                needle = f":{key[0]}:{key[1]}:"
                found = self.by_key[key] = [
                    n for n, text in enumerate(self.lowered) if needle in text
                ]
            numbers.update(found)
        configurations: list[Configuration] = []
        for number in sorted(numbers):
            if number not in self.parsed:
                self.parsed[number] = _parse_configurations([json.loads(self.texts[number])])
            configurations += self.parsed[number]
        return configurations
