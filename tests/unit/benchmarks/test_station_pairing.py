"""benchmarks/station.py compares each station with a bare engine that has its own runtime options: one bare engine
per distinct (backend, threads, idle threads) among the variants, named in the tables; literal inputs."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from station import (NAMES, VARIANTS, engine_labels, engine_options, pair_engines, station_table,  # noqa: E402
                     tail_table)

from edgead.config import from_dict  # noqa: E402
from edgead.daemon.config import ModelSection  # noqa: E402

ORT = "onnxruntime"
T2, T1, SPIN, OV2 = (ORT, 2, "block"), (ORT, 1, "block"), (ORT, 2, "spin"), ("openvino", 2, "block")


def test_variants_with_the_same_options_share_one_bare_engine_in_order_of_first_use():
    got = pair_engines({"none": T2, "none-t1": T1, "all": T2, "camera-none": T2, "all-t1": T1, "none-spin": SPIN})
    assert list(got) == [T2, T1, SPIN]
    assert got == {T2: ["none", "all", "camera-none"], T1: ["none-t1", "all-t1"], SPIN: ["none-spin"]}


def test_one_bare_engine_keeps_its_old_name_several_are_named_by_what_differs():
    assert engine_labels([T2]) == {T2: "bare `engine.infer`"}
    assert engine_labels([T2, T1]) == {T2: "bare `engine.infer`, 2 threads", T1: "bare `engine.infer`, 1 thread"}
    assert engine_labels([T2, SPIN]) == {T2: "bare `engine.infer`, `block`", SPIN: "bare `engine.infer`, `spin`"}
    assert engine_labels([T2, ("openvino", 1, "block")])[("openvino", 1, "block")] == \
        "bare `engine.infer`, openvino, 1 thread"


@pytest.fixture
def two_cores(monkeypatch):
    from edgead.infer import threads

    monkeypatch.setattr(threads, "usable_cores", lambda: 2)


def test_each_variant_s_model_section_gives_its_bare_engine_s_options(two_cores):
    def options(variant):
        return engine_options(from_dict(ModelSection, VARIANTS[variant][2].get("model", {}), "model"), ORT)

    assert {v: options(v) for v in ("none", "all", "camera-none", "camera-all", "none-gc", "all-nice0")} == \
        dict.fromkeys(("none", "all", "camera-none", "camera-all", "none-gc", "all-nice0"), T2)
    assert options("none-t1") == options("none-left") == options("all-t1") == T1  # cores_left on 2 cores: 1
    assert options("none-spin") == SPIN and options("none-spin-run") == (ORT, 2, "spin_in_run")
    assert options("none-ov") == OV2 and options("none-ov-t1") == ("openvino", 1, "block")
    assert set(NAMES) == set(VARIANTS)


def _station(p50, bare_name, ratio):
    return {"bare_engine": bare_name, "daemon_ms": {"p50": p50, "p99": 2 * p50},
            "plc_round_trip_ms": {"p50": p50 + 1, "p99": 2 * p50 + 1}, "ratio_p50_vs_bare": ratio,
            "p99_over_p50": 2.0, "infer_in_daemon_p50_vs_bare": 1.0, "parts_per_min": 5000.0}


def test_the_table_names_the_bare_engine_of_each_row_when_there_are_several():
    t2, t1 = "bare `engine.infer`, 2 threads", "bare `engine.infer`, 1 thread"
    res = {"stations": {"none": _station(10.0, t2, 1.25), "none-t1": _station(11.5, t1, 1.15)},
           "bare_engines": {t2: {"p50": 8.0, "p99": 12.0}, t1: {"p50": 10.0, "p99": 11.0}}}
    lines = station_table(res, NAMES)
    assert lines[0].startswith("| station | per-part p50 (ms) | p99 (ms) | compared with | p50 / bare engine p50 |")
    assert lines[1] == "|---" * 9 + "|"
    assert lines[2] == f"| {NAMES['none']} | 10.00 | 20.00 | {t2} | **1.25x** | 2.00 | 1.00x | 11.00 / 21.00 | 5000 |"
    assert lines[3].startswith(f"| {NAMES['none-t1']} | 11.50 | 23.00 | {t1} | **1.15x** |")
    assert lines[4:] == [f"| {t2} | 8.00 | 12.00 | | 1.00x | 1.50 | | | |",
                         f"| {t1} | 10.00 | 11.00 | | 1.00x | 1.10 | | | |"]


def test_with_one_bare_engine_the_table_is_as_before():
    name = "bare `engine.infer`"
    res = {"stations": {"none": _station(10.0, name, 1.25)}, "bare_engines": {name: {"p50": 8.0, "p99": 12.0}}}
    lines = station_table(res, NAMES)
    assert lines[0] == ("| station | per-part p50 (ms) | p99 (ms) | p50 / bare engine p50 | p99 / p50 | infer stage "
                        "p50 / bare | PLC round trip p50 / p99 (ms) | parts/min |")
    assert lines[2:] == [f"| {NAMES['none']} | 10.00 | 20.00 | **1.25x** | 2.00 | 1.00x | 11.00 / 21.00 | 5000 |",
                         f"| {name} | 8.00 | 12.00 | 1.00x | 1.50 | | | |"]


def test_the_tail_table_has_a_row_per_bare_engine():
    tail = {"by_place": [{"places": [0, 5], "n": 5, "p50": 1.0, "slow": 0, "slow_pct": 2.0}],
            "per_turn": {"counts": [], "worst_tenth_share_pct": 30.0}}
    res = {"stations": {"none": {"tail": tail, "infer_tail": tail}},
           "bare_engines": {"bare `engine.infer`, 2 threads": {"tail": tail}, "bare `engine.infer`, 1 thread":
                            {"tail": tail}}}
    lines = tail_table(res, NAMES)
    assert lines[-2:] == ["| bare `engine.infer`, 2 threads | 2.0 % | 30 % |",
                          "| bare `engine.infer`, 1 thread | 2.0 % | 30 % |"]
