"""The aligned-frame ring: a slot is handed out again only once nobody holds it (a queue, a view, a thread)."""
from __future__ import annotations

import queue
import threading

import numpy as np

from edgead.align.ring import FrameRing


def test_a_held_frame_is_never_handed_out_again():
    ring = FrameRing((8, 8, 3), max_slots=4)
    held = queue.Queue()
    for i in range(4):
        frame = ring.take()
        frame[:] = i
        held.put(frame)
    del frame
    assert ring.slots == 4
    spill = ring.take()  # every slot is held: a new array, not kept
    assert ring.slots == 4 and ring.spilled == 1
    spill[:] = 99
    for i in range(4):
        assert (held.get() == i).all()  # nothing overwrote a queued frame


def test_a_released_slot_is_reused_and_no_new_array_is_made():
    ring = FrameRing((8, 8), max_slots=3)
    first = ring.take()
    ident = id(first)
    del first
    for _ in range(10):
        frame = ring.take()
        assert id(frame) == ident  # only the loop holds a frame at a time: one slot does
        del frame
    assert ring.slots == 1 and ring.spilled == 0


def test_a_view_holds_its_frame():
    ring = FrameRing((8, 8, 1), max_slots=4)
    frame = ring.take()
    view = frame[None, :, :, 0]  # what the engine and the archive are given
    del frame
    other = ring.take()
    assert not np.shares_memory(other, view)
    del view, other
    assert ring.slots == 2


def test_frames_held_by_another_thread_stay_intact_until_it_lets_go():
    ring = FrameRing((16, 16), max_slots=3)
    jobs: queue.Queue = queue.Queue()
    go = threading.Event()
    seen = []

    def consumer():
        go.wait(10)
        while (item := jobs.get()) is not None:
            n, frame = item
            seen.append(bool((frame == n).all()))

    thread = threading.Thread(target=consumer)
    thread.start()
    for n in range(6):  # more parts than slots while the consumer holds all of them
        frame = ring.take()
        frame[:] = n
        jobs.put((n, frame))
    del frame
    go.set()
    jobs.put(None)
    thread.join(10)
    assert seen == [True] * 6
    assert ring.slots == 3 and ring.spilled == 3
