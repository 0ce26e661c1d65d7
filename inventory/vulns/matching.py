"""NVD applicability: does a record's `configurations` apply to the software an asset runs?

An NVD 2.0 record lists configurations; each holds nodes joined by the configuration's operator
(OR when absent); each node holds CPE match criteria joined by the node's operator, and `negate`
turns a node's (or a configuration's) answer around. A criterion matches one of the asset's CPE
names when part, vendor and product are the same, every other attribute is covered
(inventory.vulns.cpe.value_matches) and the version is in range:

- with versionStartIncluding/Excluding and/or versionEndIncluding/Excluding, the asset's version
  must be inside every bound given (inventory.vulns.versions orders them);
- without a range, the criterion's version is exact (``2.4.49``), ``*`` (every version) or ``-``
  (no version: matches only an asset version ``-``);
- an asset without a version (``*``) matches only criteria for every version.

A record applies when some configuration is true for the asset AND at least one criterion marked
`vulnerable` matched in it. Criteria marked not vulnerable only describe the platform: in a
"running on/with" configuration (AND of the vulnerable software and a platform node), the
platform node is checked when the asset declares anything of that kind (an operating system
``o``, a hardware ``h``, or an application ``a``) other than the software the configuration's
vulnerable criteria are about; when it declares nothing of the kind we cannot know what the
software runs on, so the platform condition is taken as met and the match says so
(``platform="assumed"``). So a Windows CPE alone never matches EternalBlue (its vulnerable half is
SMBv1), SMBv1 declared with a Linux kernel does not match either, and Acuson firmware matches
without its hardware model being declared.

Most records (a single OR node, nothing negated) apply exactly when one of their vulnerable
criteria matches one of the asset's names: `needs_full_check` tells the others apart, so that the
database side can answer the simple ones from its index of criteria alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from inventory.vulns.cpe import Cpe, CpeError, aliases_of, parse, value_matches
from inventory.vulns.versions import VersionKey, compare_versions, version_key

__all__ = [
    "Configuration",
    "Criterion",
    "Match",
    "Node",
    "ShapeError",
    "applies",
    "criterion_matches",
    "needs_full_check",
    "parse_configurations",
]


class ShapeError(ValueError):
    """A record's configurations are not in the NVD 2.0 shape."""


# Plain classes with slots (not frozen dataclasses): an NVD import reads millions of criteria,
# and these are several times cheaper to build. They are not changed once built.


_ANY_TAIL = ":*:*:*:*:*:*:*"  # the seven attributes after the version


class Criterion:
    """One cpeMatch entry: a CPE name with `*` where any value goes, and an optional range."""

    __slots__ = (
        "criteria",
        "cpe",
        "vulnerable",
        "start",
        "start_including",
        "end",
        "end_including",
        "has_range",
        "any_tail",
        "_keys",
    )

    def __init__(
        self,
        criteria: str,
        cpe: Cpe,
        vulnerable: bool = True,
        start: str | None = None,
        start_including: bool = True,
        end: str | None = None,
        end_including: bool = False,
    ) -> None:
        self.criteria, self.cpe, self.vulnerable = criteria, cpe, vulnerable
        self.start, self.start_including = start, start_including
        self.end, self.end_including = end, end_including
        self.has_range = start is not None or end is not None
        # Update, edition ... other all "*" (most criteria): nothing but the version to compare.
        self.any_tail = cpe.text.endswith(_ANY_TAIL) and "\\" not in cpe.text
        self._keys: tuple[VersionKey | None, VersionKey | None] | None = None

    def bound_keys(self) -> tuple[VersionKey | None, VersionKey | None]:
        """The sort keys of the range's bounds, worked out the first time they are needed."""
        if self._keys is None:
            self._keys = (
                None if self.start is None else version_key(self.start),
                None if self.end is None else version_key(self.end),
            )
        return self._keys


class Node:
    """Criteria joined by an operator ("OR" or "AND"), maybe negated. A platform node has no
    vulnerable criterion; `parts` are the kinds (a, o, h) its criteria name."""

    __slots__ = (
        "operator",
        "negate",
        "criteria",
        "is_platform",
        "parts",
        "by_key",
        "vulnerable_keys",
    )

    def __init__(self, operator: str, negate: bool, criteria: tuple[Criterion, ...]) -> None:
        self.operator, self.negate, self.criteria = operator, negate, criteria
        parts = set()
        by_key: dict[tuple[str, str], list[Criterion]] = {}
        vulnerable_keys = set()
        for c in criteria:
            cpe = c.cpe
            key = (cpe.vendor, cpe.product)
            if c.vulnerable:
                vulnerable_keys.add(key)
            parts.add(cpe.part)
            by_key.setdefault(key, []).append(c)
        self.vulnerable_keys = frozenset(vulnerable_keys)
        self.is_platform = not vulnerable_keys
        self.parts = frozenset(parts)
        # Criteria by (vendor, product): an asset's few names find theirs without a scan of
        # every criterion (platform lists run to dozens of operating systems).
        self.by_key = by_key


class Configuration:
    """Nodes joined by an operator, maybe negated. `keys`: the (vendor, product) of its
    vulnerable criteria (an asset running none of them is skipped at once)."""

    __slots__ = ("operator", "negate", "nodes", "keys")

    def __init__(self, operator: str, negate: bool, nodes: tuple[Node, ...]) -> None:
        self.operator, self.negate, self.nodes = operator, negate, nodes
        self.keys = frozenset().union(*(n.vulnerable_keys for n in nodes))

    @property
    def simple(self) -> bool:
        """True when it holds exactly when one of its vulnerable criteria matches: one node,
        nothing negated, and OR (or a single criterion)."""
        if len(self.nodes) != 1 or self.negate:
            return False
        node = self.nodes[0]
        return not node.negate and (node.operator == "OR" or len(node.criteria) <= 1)


@dataclass
class Match:
    """Why a record applies: the asset's names that matched vulnerable criteria, and how."""

    cpes: list[str] = field(default_factory=list)
    criteria: list[str] = field(default_factory=list)
    platform: str = ""  # "", "matched" or "assumed"
    alias: str = ""  # vendor name matched through VENDOR_ALIASES, if any


# --- reading the NVD shape ------------------------------------------------------------------


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise ShapeError(f"{what} must be a short text")
    return value.strip()


_BOUNDS = frozenset(
    ("versionStartIncluding", "versionStartExcluding", "versionEndIncluding", "versionEndExcluding")
)


def _criterion(raw: Any) -> Criterion:
    if not isinstance(raw, dict):
        raise ShapeError("a cpeMatch entry must be an object")
    criteria = raw.get("criteria")
    if not isinstance(criteria, str):
        raise ShapeError("a cpeMatch entry has no criteria")
    try:
        cpe = parse(criteria)
    except CpeError as exc:
        raise ShapeError(str(exc)) from None
    start_inc = start_exc = end_inc = end_exc = None
    if not _BOUNDS.isdisjoint(raw):  # most criteria have no bounds: skip the checks
        get = raw.get
        start_inc = get("versionStartIncluding")
        start_inc = None if start_inc is None else _text(start_inc, "versionStartIncluding")
        start_exc = get("versionStartExcluding")
        start_exc = None if start_exc is None else _text(start_exc, "versionStartExcluding")
        end_inc = get("versionEndIncluding")
        end_inc = None if end_inc is None else _text(end_inc, "versionEndIncluding")
        end_exc = get("versionEndExcluding")
        end_exc = None if end_exc is None else _text(end_exc, "versionEndExcluding")
        if (start_inc and start_exc) or (end_inc and end_exc):
            raise ShapeError(f"{criteria}: both an including and an excluding bound")
    return Criterion(
        criteria,
        cpe,
        raw.get("vulnerable", True) is not False,
        start_inc or start_exc,
        start_exc is None,
        end_inc or end_exc,
        end_inc is not None,
    )


def _operator(raw: Any) -> str:
    operator = str(raw or "OR").upper()
    if operator not in {"OR", "AND"}:
        raise ShapeError(f"unknown operator {operator[:20]!r}")
    return operator


# The largest real records list a few thousand criteria (every Cisco IOS release...).
MAX_CRITERIA = 50_000


def parse_configurations(raw: Any) -> tuple[Configuration, ...]:
    """The `configurations` list of an NVD 2.0 `cve` object (absent: no configuration)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ShapeError("configurations must be a list")
    configurations = []
    count = 0
    for conf in raw:
        if not isinstance(conf, dict) or not isinstance(conf.get("nodes"), list):
            raise ShapeError("a configuration must be an object with a list of nodes")
        nodes = []
        for node in conf["nodes"]:
            if not isinstance(node, dict) or not isinstance(node.get("cpeMatch", []), list):
                raise ShapeError("a node must be an object with a cpeMatch list")
            count += len(node.get("cpeMatch", []))
            if count > MAX_CRITERIA:
                raise ShapeError(f"more than {MAX_CRITERIA} CPE criteria")
            nodes.append(
                Node(
                    operator=_operator(node.get("operator")),
                    negate=bool(node.get("negate", False)),
                    criteria=tuple(_criterion(c) for c in node.get("cpeMatch", [])),
                )
            )
        configurations.append(
            Configuration(
                operator=_operator(conf.get("operator")),
                negate=bool(conf.get("negate", False)),
                nodes=tuple(nodes),
            )
        )
    return tuple(configurations)


def needs_full_check(configurations: Sequence[Configuration]) -> bool:
    """Whether a record's applicability needs more than "one vulnerable criterion matches"."""
    return not all(conf.simple for conf in configurations)


# --- matching -------------------------------------------------------------------------------


def _version_in_range(criterion: Criterion, version: str) -> bool:
    key = version_key(version)
    start, end = criterion.bound_keys()
    if start is not None and (key < start or (key == start and not criterion.start_including)):
        return False
    if end is not None and (key > end or (key == end and not criterion.end_including)):
        return False
    return True


def _version_matches(criterion: Criterion, version: str) -> bool:
    wanted = criterion.cpe.version
    if criterion.has_range:
        if version in {"*", "-"}:
            return False
        if wanted not in {"*", "-"} and not value_matches(wanted, version):
            return False
        return _version_in_range(criterion, version)
    if wanted == "*":
        return True
    if version == "*":
        return False  # unknown version: only records about every version apply
    if wanted == "-" or version == "-":
        return wanted == version
    return value_matches(wanted, version) or compare_versions(wanted, version) == 0


_TAIL = ("update", "edition", "language", "sw_edition", "target_sw", "target_hw", "other")


def criterion_matches(criterion: Criterion, asset: Cpe) -> bool:
    """Whether one criterion covers one of the asset's CPE names."""
    want = criterion.cpe
    if want.product != asset.product or want.vendor != asset.vendor:
        return False
    if want.part != asset.part and want.part != "*" and asset.part != "*":
        return False
    if not criterion.any_tail:
        for name in _TAIL:
            if not value_matches(getattr(want, name), getattr(asset, name)):
                return False
    return _version_matches(criterion, asset.version)


ByKey = dict[tuple[str, str], list[Cpe]]


def _node(node: Node, by_key: ByKey, parts: set[str]) -> tuple[bool, list[tuple[Cpe, Criterion]]]:
    """The node's value for the asset, and the vulnerable (asset name, criterion) pairs that
    matched."""
    if node.is_platform and not parts & node.parts:
        return True, []  # the asset declares nothing of this kind: assumed (module docstring)
    hits = []
    matched: set[int] = set()  # criteria (by identity) that matched one of the asset's names
    for key, names in by_key.items():
        for c in node.by_key.get(key, ()):
            for a in names:
                if criterion_matches(c, a):
                    matched.add(id(c))
                    hits.append((a, c))
    value = len(matched) == len(node.criteria) if node.operator == "AND" else bool(matched)
    if node.negate:
        return not value, []
    return value, [(a, c) for a, c in hits if c.vulnerable]


def _configuration(conf: Configuration, by_key: ByKey) -> Match | None:
    if not conf.nodes or conf.keys.isdisjoint(by_key):
        return None  # no vulnerable criterion names anything the asset runs
    # Kinds of software the asset declares besides what the vulnerable criteria are about.
    parts = {a.part for key, names in by_key.items() if key not in conf.keys for a in names}
    values = []
    hits: list[tuple[Cpe, Criterion]] = []
    platform = ""
    for node in conf.nodes:
        value, node_hits = _node(node, by_key, parts)
        values.append(value)
        hits += node_hits
        if node.is_platform and value:
            declared = bool(parts & node.parts)
            platform = "assumed" if platform == "assumed" or not declared else "matched"
    value = all(values) if conf.operator == "AND" else any(values)
    if conf.negate:
        value, hits = not value, []
    if not value or not hits:
        return None
    match = Match(platform=platform if len(conf.nodes) > 1 else "")
    for asset, criterion in hits:
        name = str(asset)
        if name not in match.cpes:
            match.cpes.append(name)
        if criterion.criteria not in match.criteria:
            match.criteria.append(criterion.criteria)
    return match


def _evaluate(configurations: Iterable[Configuration], assets: Sequence[Cpe]) -> Match | None:
    by_key: ByKey = {}
    for a in assets:
        by_key.setdefault(a.key, []).append(a)
    result: Match | None = None
    for conf in configurations:
        match = _configuration(conf, by_key)
        if match is None:
            continue
        if result is None:
            result = match
            continue
        result.cpes += [c for c in match.cpes if c not in result.cpes]
        result.criteria += [c for c in match.criteria if c not in result.criteria]
        if match.platform == "matched" or not result.platform:
            result.platform = match.platform or result.platform
    return result


def applies(
    configurations: Sequence[Configuration], assets: Sequence[Cpe], *, aliases: bool = True
) -> Match | None:
    """How the record applies to an asset running `assets`, or None when it does not.

    With `aliases`, a product NVD has filed under another vendor name too (VENDOR_ALIASES) is
    tried under that name when the strict match finds nothing; the match names the alias.
    """
    match = _evaluate(configurations, assets)
    if match is not None or not aliases:
        return match
    for asset in assets:
        for vendor in aliases_of(asset.vendor, asset.product):
            alias = asset.with_vendor(vendor)
            others = [a for a in assets if a is not asset]
            match = _evaluate(configurations, [*others, alias])
            if match is not None:
                match.cpes = [str(asset) if c == str(alias) else c for c in match.cpes]
                match.alias = vendor
                return match
    return None
