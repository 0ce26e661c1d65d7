"""Full passes of the cycle collector come back after the blocks that hold them off, however
they nest."""

from __future__ import annotations

import gc

from inventory.collector import young_collections_only


def test_young_collections_only_keeps_young_collections_and_restores_the_threshold():
    before = gc.get_threshold()
    with young_collections_only():
        young, middle, old = gc.get_threshold()
        assert (young, middle) == before[:2] and old > 10**8
        with young_collections_only():  # nested (another thread's import): unchanged
            assert gc.get_threshold()[2] == old
    assert gc.get_threshold() == before
