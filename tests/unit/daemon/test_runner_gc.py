"""runtime.gc: the heap frozen once the station is open, and again after a reload (what it dropped collected)."""
from __future__ import annotations

import gc
import weakref

from edgead.daemon.config import GcMode
from edgead.daemon.runner import freeze_heap


class _Node:
    pass


def test_a_reload_collects_the_frozen_objects_it_dropped():
    node = _Node()
    node.cycle = node  # only the cyclic collector frees it
    ref = weakref.ref(node)
    try:
        freeze_heap(GcMode.FREEZE)
        assert gc.get_freeze_count() > 0
        del node
        gc.collect()
        assert ref() is not None  # frozen: no collection in the loop scans it
        freeze_heap(GcMode.FREEZE)  # as after a reload
        assert ref() is None
    finally:
        gc.unfreeze()


def test_default_leaves_the_collector_alone():
    try:
        freeze_heap(GcMode.FREEZE)
        freeze_heap(GcMode.DEFAULT)
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
