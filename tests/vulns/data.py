"""The real feed samples of shared/data/vulns (see its README), and helpers to read them."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from inventory.vulns.cpe import parse
from inventory.vulns.feeds import open_feed
from inventory.vulns.matching import Match, applies
from inventory.vulns.nvd import CveRecord, read_cve

# The repository sits beside shared/ (here and in CI's fresh clone).
DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "vulns"
NVD_SAMPLE = DATA / "nvd-sample.json"
NVD_RECENT = DATA / "nvd-api2-recent-unanalysed.json"
KEV = DATA / "kev.json"


@cache
def records() -> dict[str, CveRecord]:
    _, items = open_feed(NVD_SAMPLE)
    return {r.cve_id: r for r in map(read_cve, items)}


def full(cpe: str) -> str:
    """Pad a short name with `*`, as the asset form does."""
    parts = cpe.split(":")
    return ":".join(parts + ["*"] * (13 - len(parts)))


def match(cve: str, *cpes: str, aliases: bool = False) -> Match | None:
    return applies(records()[cve].parsed, [parse(full(c)) for c in cpes], aliases=aliases)
