"""The criteria index (inventory.vulns.index) decides most criteria on precomputed version keys
instead of matching.criterion_matches: on any mix of criteria and asset names, it must find
exactly what checking every criterion one by one finds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from inventory.vulns.cpe import parse
from inventory.vulns.index import ProductIndex
from inventory.vulns.matching import Criterion, criterion_matches

VERSIONS = ["1.0", "1.2", "1.2.0", "1.2.3", "1.10", "2.0", "2.0b", "2.0-rc1", "9.7p1", "10"]
PATTERNS = ["*", "-", "1.*", "1.2.?"]
UPDATES = ["*", "-", "p1"]


@st.composite
def criterion(draw: st.DrawFn) -> tuple[str, tuple[str | None, bool, str | None, bool]]:
    part = draw(st.sampled_from(["a", "a", "o", "*"]))
    update = draw(st.sampled_from(UPDATES))
    ranged = draw(st.booleans())
    if ranged:
        version = "*"
        start = draw(st.one_of(st.none(), st.sampled_from(VERSIONS)))
        end = draw(st.one_of(st.none(), st.sampled_from(VERSIONS)))
        if start is None and end is None:
            end = draw(st.sampled_from(VERSIONS))
        bounds = (start, draw(st.booleans()), end, draw(st.booleans()))
    else:
        version = draw(st.sampled_from(VERSIONS + PATTERNS))
        bounds = (None, True, None, False)
    tail = ":".join([update] + ["*"] * 6)
    return f"cpe:2.3:{part}:acme:pacs:{version}:{tail}", bounds


@st.composite
def asset(draw: st.DrawFn) -> str:
    part = draw(st.sampled_from(["a", "o"]))
    version = draw(st.sampled_from(VERSIONS + ["*", "-", "1.2.30", "0.9"]))
    update = draw(st.sampled_from(UPDATES))
    return f"cpe:2.3:{part}:acme:pacs:{version}:{update}:*:*:*:*:*:*"


@settings(max_examples=400, deadline=None)
@given(st.lists(criterion(), min_size=1, max_size=25), st.lists(asset(), min_size=1, max_size=5))
def test_the_index_finds_what_checking_every_criterion_finds(criteria, names):
    """Both the full index and the one kept small for the names' own versions."""
    full = ProductIndex()
    pruned = ProductIndex({parse(name).version for name in names})
    by_vid = {}
    for vid, (text, bounds) in enumerate(criteria):
        full.add(vid, text, bounds)
        pruned.add(vid, text, bounds)
        by_vid[vid] = Criterion(text, parse(text), True, *bounds)
    for name in names:
        cpe = parse(name)
        expected = {vid for vid, c in by_vid.items() if criterion_matches(c, cpe)}
        assert set(full.hits(cpe)) == expected, name
        assert set(pruned.hits(cpe)) == expected, name
