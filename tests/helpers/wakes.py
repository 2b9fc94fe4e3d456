"""``assert_woken(link)``: a PLC link's wait for a trigger ends when another thread wakes it (an OPC UA request)."""
from __future__ import annotations

import threading
import time


def assert_woken(link, after_s: float = 0.05) -> None:
    """Wake ``link`` from a thread ``after_s`` into a one-minute ``wait_trigger``; the wait must end with None, well
    before the minute (a generous bound: the point is that it ends, not how fast)."""
    assert link.wakeable
    timer = threading.Timer(after_s, link.wake)
    timer.start()
    t = time.monotonic()
    try:
        assert link.wait_trigger(60_000) is None
        assert time.monotonic() - t < 30  # woken: not the minute it was given
    finally:
        timer.cancel()
        timer.join()
