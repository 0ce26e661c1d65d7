"""Comparing software versions as products write them, for NVD version ranges.

NVD ranges (versionStartIncluding ... versionEndExcluding) hold whatever the vendor writes:
1.10.1, 3.6.10, 2:4.17.12+dfsg, 1.2.3-beta2, 4.0e, 9.7p1. One ordering has to cover them all.

The rules, in order:

1. Case, surrounding spaces and a leading ``v`` do not count: ``1.0RC1`` is ``1.0rc1``,
   ``v2.1`` is ``2.1``.
2. An epoch comes first and outweighs everything: ``2:1.0`` (Debian) or ``2!1.0`` (PEP 440) is
   newer than any version without one (epoch 0).
3. Build metadata after ``+`` is ignored: ``4.17.12+dfsg-0+deb12u1`` compares as ``4.17.12``
   (a repackaging, not a newer upstream version; this is also where we differ from PEP 440,
   which orders local versions after their public one).
4. The rest is cut into numbers and words at every ``.``, ``-``, ``_``, ``~`` and wherever digits
   meet letters. Numbers compare as numbers: ``1.10.1`` > ``1.9.7``, ``3.6.10`` > ``3.6.7``.
5. Zeros at the end of the leading numbers do not count: ``1.2`` = ``1.2.0`` = ``1.2.0.0``.
6. Pre-release words make a version older than the release they lead to, in this order:
   ``dev`` < ``a``/``alpha`` < ``b``/``beta`` < ``rc``/``c``/``pre``/``preview`` < the release.
   So ``1.2.3-beta2`` < ``1.2.3-rc1`` < ``1.2.3``.
7. Post-release words make it newer than the release: ``post``, ``p``, ``patch``, ``pl``, ``r``,
   ``rev``, ``sp``, ``u``, ``update``, and a hyphen directly followed by a number (``1.0-1``, a
   Debian revision or PEP 440's implicit post-release). ``9.7p1`` > ``9.7``; ``9.7p1`` < ``9.8``.
8. A lone letter with no number after it is a later revision, not a pre-release: ``4.0`` <
   ``4.0b`` < ``4.0e`` (Siemens firmware), ``1.0.2k`` > ``1.0.2`` (OpenSSL). PEP 440 would read
   ``1.0b`` as ``1.0b0``; real products almost never mean that. Other unknown words order
   alphabetically at the same place.
9. ``final``, ``ga``, ``release`` and ``stable`` mean the release itself and are dropped.
10. At one position, a number is newer than a post-release word, which is newer than a letter
    suffix, which is newer than nothing, which is newer than a pre-release word: ``1.0.1`` >
    ``1.0.post1`` > ``1.0`` > ``1.0rc1``.

For versions that PEP 440 accepts (with a number after each pre-, post- and dev-release marker,
and no local part), the order is exactly the one of `packaging.version.Version`; the tests check
this with hypothesis.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["VersionKey", "compare_versions", "sort_text", "version_key"]

# Token classes, in the order rule 10 gives them at one position.
_DEV, _ALPHA, _BETA, _RC, _END, _LETTER, _POST, _NUMBER = range(8)

_PRE_WORDS = {
    "dev": _DEV,
    "a": _ALPHA,
    "alpha": _ALPHA,
    "b": _BETA,
    "beta": _BETA,
    "c": _RC,
    "rc": _RC,
    "pre": _RC,
    "preview": _RC,
}
# Single letters that are pre-release markers only when a number follows (rule 8).
_SHORT_PRE = {"a", "b", "c"}
_POST_WORDS = {"post", "p", "patch", "pl", "r", "rev", "sp", "u", "update"}
_SHORT_POST = {"p", "r", "u"}
_RELEASE_WORDS = {"final", "ga", "release", "stable"}
_EPOCH = re.compile(r"^(\d+)[:!](.*)$")
_TOKEN = re.compile(r"\d+|[a-z]+|-(?=\d)")
_LEADING_V = re.compile(r"^v(?:ersion)?[\s._-]?(?=\d)")

Token = tuple[int, int | str]
VersionKey = tuple[int, tuple[Token, ...]]  # (epoch, tokens); keys order as versions do


@lru_cache(maxsize=65536)
def version_key(text: str) -> VersionKey:
    """A sort key for `text` following the module's rules; equal keys mean equal versions."""
    text = _LEADING_V.sub("", text.strip().lower())
    epoch = 0
    match = _EPOCH.match(text)
    if match:
        epoch, text = int(match.group(1)), match.group(2)
    text = text.split("+", 1)[0]
    raw = _TOKEN.findall(text)
    tokens: list[Token] = []
    release_ends = None  # index in `tokens` where the leading numbers stop
    i = 0
    while i < len(raw):
        part = raw[i]
        next_is_number = i + 1 < len(raw) and raw[i + 1][0].isdigit()
        if part[0].isdigit():
            tokens.append((_NUMBER, int(part)))
        else:
            if release_ends is None:
                release_ends = len(tokens)
            if part == "-":
                tokens.append((_POST, ""))
            elif part in _RELEASE_WORDS:
                pass
            elif part in _PRE_WORDS and (part not in _SHORT_PRE or next_is_number):
                tokens.append((_PRE_WORDS[part], ""))
                if not next_is_number:
                    tokens.append((_NUMBER, 0))  # "beta" is "beta0", as PEP 440 reads it
            elif part in _POST_WORDS and (part not in _SHORT_POST or next_is_number):
                tokens.append((_POST, ""))
                if not next_is_number:
                    tokens.append((_NUMBER, 0))
            else:
                tokens.append((_LETTER, part))
        i += 1
    if release_ends is None:
        release_ends = len(tokens)
    # Rule 5: trailing zeros of the leading numbers are not significant.
    cut = release_ends
    while cut > 1 and tokens[cut - 1] == (_NUMBER, 0):
        cut -= 1
    # The end of the version is a token too, so that keys compare as plain tuples (rule 10):
    # at one position the class decides first, and only tokens of one class compare values.
    return epoch, (*tokens[:cut], *tokens[release_ends:], (_END, 0))


def compare_versions(left: str, right: str) -> int:
    """-1, 0 or 1 as `left` is older than, the same as, or newer than `right`."""
    a, b = version_key(left), version_key(right)
    return (a > b) - (a < b)


def _number_text(value: int) -> str | None:
    digits = str(value)
    return None if len(digits) > 99 else f"{len(digits):02d}{digits}"


@lru_cache(maxsize=65536)
def sort_text(text: str) -> str | None:
    """`version_key(text)` as a plain string that sorts the same way byte by byte, so that the
    database can compare versions (``ORDER BY``, ``>=``, ``IN``) without Python: each number is
    written after its count of digits ("10" is "0210", after "029"), each word is followed by
    "!" (which sorts before every letter, so "rc" < "rc1"... and "ab" < "abc"), and each token
    starts with its class digit. None for a number of 100 digits or more (no such version is
    real: the caller then does without the database's help). Only ASCII digits, lower-case
    letters and "!" appear, so the order is the same under every collation that compares bytes
    ("C" on PostgreSQL, SQLite's default)."""
    epoch, tokens = version_key(text)
    head = _number_text(epoch)
    if head is None:
        return None
    out = [head]
    for kind, value in tokens:
        out.append(str(kind))
        if isinstance(value, int):
            number = _number_text(value)
            if number is None:
                return None
            out.append(number)
        else:
            out.append(value + "!")
    return "".join(out)
