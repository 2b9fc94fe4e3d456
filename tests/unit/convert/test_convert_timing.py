"""Candidate timing in turns: a load change while converting reaches every candidate alike (a fake clock, so no
test depends on this machine's speed)."""
from __future__ import annotations

import numpy as np
import pytest

from edgead.convert import gate


class Clock:
    """A perf_counter whose time only moves when a fake engine runs: cost x the load of the moment."""

    def __init__(self):
        self.now, self.calls, self.load_after = 0.0, 0, None

    def __call__(self) -> float:
        return self.now

    def run(self, cost_s: float) -> None:
        self.calls += 1
        load = 3.0 if self.load_after is not None and self.calls > self.load_after else 1.0
        self.now += cost_s * load


class FakeEngine:
    def __init__(self, clock: Clock, cost_s: float, order: list, name: str):
        self.clock, self.cost_s, self.order, self.name = clock, cost_s, order, name

    def infer(self, image):
        self.order.append(self.name)
        self.clock.run(self.cost_s)


def engines(clock, order):
    return {"slow": FakeEngine(clock, 0.010, order, "slow"), "fast": FakeEngine(clock, 0.008, order, "fast")}


def test_candidates_take_turns_in_reversed_order_each_round(monkeypatch):
    clock, order = Clock(), []
    monkeypatch.setattr(gate.time, "perf_counter", clock)
    got = gate.measure_latencies(engines(clock, order), np.zeros((1, 4, 4, 3), np.uint8), runs=4, rounds=2,
                                 warmup=1)
    assert order == ["slow", "fast"] + ["slow"] * 2 + ["fast"] * 4 + ["slow"] * 2
    assert got["slow"][0] == pytest.approx(10.0) and got["fast"][0] == pytest.approx(8.0)  # the fake clock


def test_a_load_change_midway_does_not_pick_the_slower_candidate(monkeypatch):
    """The machine gets 3x slower after 60 calls: timed one after the other, the second (faster) candidate looks
    slower; timed in turns, each sees both loads and the faster one stays faster."""
    image = np.zeros((1, 4, 4, 3), np.uint8)
    for rounds, fooled in ((1, True), (6, False)):
        clock, order = Clock(), []
        clock.load_after = 60
        monkeypatch.setattr(gate.time, "perf_counter", clock)
        got = gate.measure_latencies(engines(clock, order), image, runs=60, rounds=rounds, warmup=0)
        assert (got["fast"][0] > got["slow"][0]) is fooled
