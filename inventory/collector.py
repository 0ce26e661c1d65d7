"""Keeping Python's cycle collector from walking millions of live objects over and over while
a large job (an asset import, a feed import, a re-match of every asset) builds them."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["no_collections", "young_collections_only"]

_NO_FULL_COLLECTION = 1_000_000_000


@contextmanager
def young_collections_only() -> Iterator[None]:
    """No full pass of the cycle collector while the block runs.

    A large job holds millions of live objects, and each full pass walks them all: that was 40%
    of a 50,000-row asset import's time and a third of a full re-match's. Young collections go
    on, so short-lived cycles (netaddr's parse errors) are still freed and memory stays as it
    was; turning the collector off instead would keep them all until the end. Also usable as a
    decorator; when another thread already runs such a block, this one changes nothing.
    """
    young, middle, old = gc.get_threshold()
    if old == _NO_FULL_COLLECTION:  # another block is already running (another thread)
        yield
        return
    gc.set_threshold(young, middle, _NO_FULL_COLLECTION)
    try:
        yield
    finally:
        gc.set_threshold(young, middle, old)


_paused = 0
_paused_lock = threading.Lock()
_was_enabled = True


@contextmanager
def no_collections() -> Iterator[None]:
    """No pass of the cycle collector at all while the block runs: for work that builds
    millions of plain objects and no reference cycles (matching assets against the criteria),
    where even the young collections cost a twentieth of the time. Blocks in several threads
    nest: the collector comes back when the last one ends (if it was on before the first)."""
    global _paused, _was_enabled
    with _paused_lock:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _paused_lock:
            _paused -= 1
            if _paused == 0 and _was_enabled:
                gc.enable()

