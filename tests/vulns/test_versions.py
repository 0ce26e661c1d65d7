"""Version ordering (inventory.vulns.versions): the documented rules, and PEP 440 where it
applies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.version import Version

from inventory.vulns.versions import compare_versions, sort_text


def sign(value: int) -> int:
    return (value > 0) - (value < 0)


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("1.9.7", "1.10.1"),
        ("3.6.7", "3.6.10"),
        ("3.6.9", "3.6.10"),
        ("1.2.3-beta2", "1.2.3"),
        ("1.2.3-beta2", "1.2.3-rc1"),
        ("1.2.3-alpha", "1.2.3-beta"),
        ("1.2.3.dev4", "1.2.3a1"),
        ("7.0.14", "7.0.15"),
        ("4.17.12", "1:4.17.11"),  # an epoch outweighs the rest
        ("2:4.17.11+dfsg", "2:4.17.12+dfsg-0+deb12u1"),
        ("4.0", "4.0b"),  # a lone letter is a later revision
        ("4.0b", "4.0e"),
        ("1.0.2", "1.0.2k"),
        ("1.0.2k", "1.0.3"),
        ("9.7", "9.7p1"),
        ("9.7p1", "9.7p2"),
        ("9.7p2", "9.8"),
        ("1.0", "1.0-1"),  # Debian revision / PEP 440 implicit post-release
        ("1.0.post1", "1.0.1"),
        ("1.0rc1", "1.0"),
        ("2022.82", "2022.83"),
        ("0.6.17", "0.6.18"),
        ("1.20.0", "1.20.1"),
        ("4.4.14", "4.5.0"),
        ("10.0.17763", "10.0.19041"),
        ("v9.2", "v10.1"),
        ("v1.0", "2.0"),
        ("7.0.9", "7.0.15"),
        ("2:4.17.11+dfsg-0+deb12u1", "2:4.17.12+dfsg"),
    ],
)
def test_ordering_rules(older, newer):
    assert compare_versions(older, newer) == -1
    assert compare_versions(newer, older) == 1


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("1.2", "1.2.0"),
        ("1.2", "1.2.0.0"),
        ("1.0RC1", "1.0rc1"),
        (" 2.4.49 ", "2.4.49"),
        ("4.17.12+dfsg", "4.17.12"),
        ("0:1.0", "1.0"),
        ("1!1.0", "1:1.0"),
        ("1.0-final", "1.0"),
        ("1.0beta", "1.0b0"),
        ("1.01", "1.1"),
        ("v2.1", "2.1"),
        ("V2.1.0", "2.1"),
        ("version 7.0.15", "7.0.15"),
    ],
)
def test_equal_spellings(left, right):
    assert compare_versions(left, right) == 0


# --- PEP 440 --------------------------------------------------------------------------------

numbers = st.integers(min_value=0, max_value=30)


@st.composite
def pep440(draw: st.DrawFn) -> str:
    """A PEP 440 public version in one of its accepted spellings (not only the normal form)."""
    text = ""
    if draw(st.integers(0, 9)) == 0:
        text += f"{draw(st.integers(1, 3))}!"
    text += ".".join(str(n) for n in draw(st.lists(numbers, min_size=1, max_size=4)))
    if draw(st.booleans()):
        word = draw(st.sampled_from(["a", "alpha", "b", "beta", "rc", "c", "pre", "preview"]))
        text += draw(st.sampled_from(["", ".", "-", "_"])) + word + str(draw(numbers))
    if draw(st.booleans()):
        style = draw(st.sampled_from([".post", "post", "-post", "-", ".rev", "-r"]))
        text += style + str(draw(numbers))
    if draw(st.booleans()):
        text += draw(st.sampled_from([".dev", "dev", "-dev"])) + str(draw(numbers))
    if draw(st.booleans()):
        text = text.upper()
    if draw(st.integers(0, 9)) == 0 and "!" not in text:
        text = draw(st.sampled_from(["v", "V"])) + text  # PEP 440 allows a leading v
    return text


@settings(max_examples=3000, deadline=None)
@given(pep440(), pep440())
def test_pep440_order_is_packaging_order(left, right):
    expected = sign((Version(left) > Version(right)) - (Version(left) < Version(right)))
    assert compare_versions(left, right) == expected


@settings(max_examples=500, deadline=None)
@given(pep440(), pep440(), pep440())
def test_ordering_is_transitive(a, b, c):
    if compare_versions(a, b) <= 0 and compare_versions(b, c) <= 0:
        assert compare_versions(a, c) <= 0


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=20), st.text(max_size=20))
def test_any_text_compares_without_error_and_antisymmetrically(left, right):
    assert compare_versions(left, right) == -compare_versions(right, left)


# --- the database's copy of the order (sort_text) ---------------------------------------------

version_like = st.text(alphabet="0123456789.-_~+:!abcdeprlostuvRCx ", max_size=16)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(pep440(), version_like), st.one_of(pep440(), version_like))
def test_sort_text_orders_byte_by_byte_as_versions_do(left, right):
    a, b = sort_text(left), sort_text(right)
    assert a is not None and b is not None
    expected = compare_versions(left, right)
    assert (a > b) - (a < b) == expected
    assert (a.encode() > b.encode()) - (a.encode() < b.encode()) == expected


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("1.9.7", "1.10.1"),
        ("3.6.7", "3.6.10"),
        ("1.2.3-beta2", "1.2.3"),
        ("9", "10"),
        ("1.0rc1", "1.0"),
        ("1.0", "1.0b"),
        ("1.0.post1", "1.0.1"),
        ("2:1.0", "3:0.1"),
    ],
)
def test_sort_text_examples(older, newer):
    assert sort_text(older) < sort_text(newer)
    assert set(sort_text(older) + sort_text(newer)) <= set("0123456789abcdefghijklmnopqrstuvwxyz!")


def test_sort_text_gives_up_on_absurd_numbers():
    assert sort_text("1." + "9" * 120) is None
    assert sort_text("1.2") == sort_text("1.2.0")
