"""benchmarks/tail.py: where the slow parts of a station benchmark are, from literal per-part series."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from tail import Turns, by_place, p99_from_place, places, slow_gaps, slow_per_turn, tail_profile  # noqa: E402


def test_a_parts_place_is_its_index_modulo_the_turn():
    assert places(np.array([0, 1, 4, 5, 9, 10]), 5).tolist() == [0, 1, 4, 0, 4, 0]


def test_by_place_counts_the_slow_parts_of_each_bucket():
    # two turns of 5: the first part of each is slow (9), the rest 1
    values = np.array([9, 1, 1, 1, 1, 9, 1, 1, 1, 1], np.float64)
    rows = by_place(values, places(np.arange(10), 5), threshold=5.0, block=5, bounds=(0, 1, 2))
    assert [r["places"] for r in rows] == [[0, 1], [1, 2], [2, 5]]
    assert [r["n"] for r in rows] == [2, 2, 6]
    assert [r["slow"] for r in rows] == [2, 0, 0]
    assert rows[0]["slow_pct"] == 100.0 and rows[2]["slow_pct"] == 0.0
    assert rows[0]["p50"] == 9.0 and rows[1]["p50"] == 1.0


def test_buckets_beyond_the_block_are_dropped():
    rows = by_place(np.ones(4), places(np.arange(4), 2), threshold=5.0, block=2, bounds=(0, 1, 2, 5))
    assert [r["places"] for r in rows] == [[0, 1], [1, 2]]


def test_p99_from_a_later_place_leaves_the_first_parts_out():
    values = np.array([9, 1, 1, 1, 9, 1, 1, 1], np.float64)
    out = p99_from_place(values, places(np.arange(8), 4), starts=(0, 1))
    assert out["0"]["n"] == 8 and out["1"]["n"] == 6
    assert out["1"]["p99"] == 1.0
    assert out["0"]["p99"] > 8.0


def test_slow_parts_in_one_turn_make_its_worst_tenth_hold_them_all():
    turn = np.repeat(np.arange(10), 3)
    values = np.ones(30)
    values[[3, 4, 5]] = 7.0  # turn 1 only
    out = slow_per_turn(values, turn, threshold=5.0)
    assert out["counts"] == [0, 3, 0, 0, 0, 0, 0, 0, 0, 0]
    assert out["worst_tenth_share_pct"] == 100.0


def test_slow_parts_one_per_turn_spread_evenly():
    turn = np.repeat(np.arange(10), 3)
    values = np.ones(30)
    values[::3] = 7.0
    assert slow_per_turn(values, turn, threshold=5.0)["worst_tenth_share_pct"] == 10.0


def test_no_slow_part_has_no_share():
    assert slow_per_turn(np.ones(6), np.zeros(6), threshold=5.0)["worst_tenth_share_pct"] == 0.0


def test_gaps_are_taken_within_a_turn_only():
    t = np.array([0.0, 5.0, 10.0, 100.0, 100.01])
    turn = np.array([0, 0, 0, 1, 1])
    slow = np.array([True, True, True, True, True])
    out = slow_gaps(t, turn, slow, bounds=(0.05, 4.0, 6.0))
    assert out["bins"][0] == [0.0, 0.05]
    assert out["counts"] == [1, 0, 2, 0]  # 0.01 s in turn 1; 5 s twice in turn 0; none across turns (90 s)
    assert out["median_s"] == 5.0


def test_no_gap_without_two_slow_parts_in_a_turn():
    out = slow_gaps(np.array([0.0, 1.0]), np.array([0, 1]), np.array([True, True]), bounds=(1.0,))
    assert out["counts"] == [0, 0] and np.isnan(out["median_s"])


def test_profile_leaves_unanswered_parts_out():
    values = np.array([np.nan, 1, 1, 1, 9, 1, 1, 1], np.float64)
    out = tail_profile(values, places(np.arange(8), 4), np.arange(8) // 4, block=4, t_s=np.arange(8, dtype=np.float64))
    assert out["from_place"]["0"]["n"] == 7
    assert sum(r["n"] for r in out["by_place"]) == 7
    assert out["by_place"][0] == {"places": [0, 1], "n": 1, "p50": 9.0, "slow": 1, "slow_pct": 100.0}
    assert out["per_turn"]["counts"] == [0, 1]
    assert out["gaps"]["counts"] == [0] * 6


def test_turns_note_place_and_turn_with_re_warm_parts_first():
    t = Turns(12)
    assert t.add(2, counted=False, new_turn=True) == range(0, 2)
    assert t.add(3, counted=True, new_turn=False) == range(2, 5)
    t.add(2, counted=False, new_turn=True)
    t.add(3, counted=True, new_turn=False)
    assert t.turn[:t.n].tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert t.place[:t.n].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    assert t.counted[:t.n].tolist() == [False, False, True, True, True, False, False, True, True, True]


def test_turns_without_re_warm_count_every_part():
    t = Turns(4)
    t.add(2, counted=True, new_turn=True)
    t.add(2, counted=True, new_turn=True)
    measured, every = t.masks(warmup=2)
    assert measured.tolist() == [False, False, True, True]
    assert every.tolist() == measured.tolist()


def test_masks_leave_the_warm_up_out_and_keep_the_measured_turns_re_warm_parts():
    t = Turns(12)
    for _ in range(2):  # turn 0 is the warm-up (3 counted parts), turn 1 is measured
        t.add(2, counted=False, new_turn=True)
        t.add(3, counted=True, new_turn=False)
    measured, every = t.masks(warmup=3)
    assert measured.tolist() == [False] * 7 + [True] * 3
    assert every.tolist() == [False] * 5 + [True] * 5


def test_a_warm_up_part_in_the_first_measured_turn_stays_out_of_every():
    t = Turns(6)
    t.add(1, counted=False, new_turn=True)
    t.add(4, counted=True, new_turn=False)  # warm-up 2: the turn's first two counted parts are warm-up
    measured, every = t.masks(warmup=2)
    assert measured.tolist() == [False, False, False, True, True]
    assert every.tolist() == [True, False, False, True, True]


def test_turns_refuse_more_parts_than_their_capacity():
    t = Turns(2)
    t.add(2, counted=True, new_turn=True)
    with pytest.raises(ValueError, match="capacity of 2"):
        t.add(1, counted=True, new_turn=False)


def _tail(slow_pcts, worst):
    rows = [{"places": list(b), "n": n, "p50": 1.0, "slow": 0, "slow_pct": pct}
            for b, n, pct in zip(((0, 1), (1, 2), (2, 5)), (0 if slow_pcts[0] is None else 4, 4, 12), slow_pcts)]
    return {"by_place": rows, "per_turn": {"counts": [], "worst_tenth_share_pct": worst}}


def test_the_docs_table_names_each_series_and_leaves_the_re_warm_places_out():
    from station import tail_table

    res = {"rewarm": 1, "stations": {"none": {"tail": _tail([None, 25.0, 0.0], 50.0),
                                              "infer_tail": _tail([None, 0.0, 0.0], 10.0)}},
           "bare_engines": {"bare `engine.infer`": {"tail": _tail([None, 0.0, 8.3], 100.0)}}}
    lines = tail_table(res, {"none": "PLC trigger"})
    head = lines.index("| series | place 1 | places 2-4 | worst tenth of turns |")
    assert "place 0 is the re-warm part, not counted" in lines[0]
    assert lines[head + 2:] == ["| PLC trigger | 25.0 % | 0.0 % | 50 % |",
                                "| PLC trigger: infer stage | 0.0 % | 0.0 % | 10 % |",
                                "| bare `engine.infer` | 0.0 % | 8.3 % | 100 % |"]
