"""``FrameRing``: the hot loop's aligned frames, allocated once and reused only once nobody holds them.

The station resamples each frame onto the reference grid into a slot of the ring instead of a new array. The aligned
frame lives on after the part's answer: the image writer's queue holds it until it is archived, the shadow model's
thread until it is inferred. A slot is free when the ring holds the only reference to its array (CPython's reference
count): every consumer that keeps the frame, or a view of it (a view refers to its base), holds a reference, so a
slot is never overwritten while any consumer can still read it, and no consumer has to remember to release it.

When every slot is held, the ring adds one, up to ``max_slots``; beyond that (a writer queue longer than the ring,
filling up) each frame is a new array that the ring does not keep (counted in :attr:`FrameRing.spilled`), exactly as
before the ring.

Example:
    >>> ring = FrameRing((4, 4, 3), max_slots=2)
    >>> a = ring.take(); b = ring.take()       # two slots, both held
    >>> c = ring.take()                        # a third frame: a new array, not a slot
    >>> ring.slots, ring.spilled
    (2, 1)
    >>> del a
    >>> ring.take() is not b                   # a's slot again: nobody holds it
    True
"""
from __future__ import annotations

import sys

import numpy as np


def _free_refs() -> int:
    """``sys.getrefcount(slots[i])`` of a slot nobody else holds (the ring's list, and the call's argument where the
    interpreter counts it), measured in the shape :meth:`FrameRing.take` asks it."""
    probe = [np.empty(0)]
    return sys.getrefcount(probe[0])


_FREE_REFS = _free_refs()


class FrameRing:
    """Preallocated frames of one shape, handed out by :meth:`take` (see the module docstring).

    Args:
        shape: each frame's shape, e.g. ``(H, W, 3)``.
        dtype: its dtype.
        max_slots: the most frames kept (at least 1).
    """

    def __init__(self, shape: tuple[int, ...], dtype=np.uint8, max_slots: int = 4):
        self.shape, self.dtype = tuple(int(s) for s in shape), np.dtype(dtype)
        self.max_slots = max(1, int(max_slots))
        self._slots: list[np.ndarray] = []
        self._next = 0
        self.spilled = 0

    @property
    def slots(self) -> int:
        """Frames allocated and kept so far."""
        return len(self._slots)

    def take(self) -> np.ndarray:
        """A frame nobody else holds (its pixels are the last user's: overwrite all of them)."""
        slots = self._slots
        n = len(slots)
        for i in range(n):
            j = (self._next + i) % n
            if sys.getrefcount(slots[j]) <= _FREE_REFS:
                self._next = (j + 1) % n
                return slots[j]
        frame = np.empty(self.shape, self.dtype)
        if n < self.max_slots:
            slots.append(frame)
            self._next = 0
        else:
            self.spilled += 1
        return frame
