"""The cycle collector comes back on after the blocks that hold it off, however they nest or
overlap across threads, and even when the block fails."""

from __future__ import annotations

import gc
import threading

import pytest

from inventory.collector import no_collections, young_collections_only


def test_no_collections_nests_across_threads_and_restores_the_collector():
    assert gc.isenabled()
    inside, release = threading.Event(), threading.Event()

    def other_thread() -> None:
        with no_collections():
            inside.set()
            release.wait(5)

    with no_collections():
        assert not gc.isenabled()
        thread = threading.Thread(target=other_thread)
        thread.start()
        assert inside.wait(5)
    assert not gc.isenabled()  # the other thread's block still runs
    release.set()
    thread.join(5)
    assert gc.isenabled()


def test_no_collections_restores_after_a_failure_and_keeps_a_collector_left_off():
    with pytest.raises(RuntimeError), no_collections():
        raise RuntimeError("matching failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with no_collections():
            pass
        assert not gc.isenabled()  # it was off before: left off
    finally:
        gc.enable()


def test_young_collections_only_keeps_young_collections_and_restores_the_threshold():
    before = gc.get_threshold()
    with young_collections_only():
        young, middle, old = gc.get_threshold()
        assert (young, middle) == before[:2] and old > 10**8
        with young_collections_only():  # nested (another thread's import): unchanged
            assert gc.get_threshold()[2] == old
    assert gc.get_threshold() == before
