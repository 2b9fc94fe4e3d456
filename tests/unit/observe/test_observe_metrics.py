"""Prometheus text exposition 0.0.4: families, escaping, histogram buckets, thread safety."""
from __future__ import annotations

import re
import threading

import pytest

from edgead.observe.metrics import Counter, Gauge, Histogram, Registry, State, StationMetrics, format_value
from edgead.verdict import Verdict

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\["\\n])*",?)*\})? \S+$')


def parse(text: str) -> dict[str, float]:
    """Every sample line checked against the grammar; returns {'name{labels}': value}."""
    assert text.endswith("\n")
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) \S+ .+$", line), line
            continue
        assert SAMPLE.match(line), line
        key, value = line.rsplit(" ", 1)
        out[key] = float(value)
    return out


def test_station_metrics_exposition():
    m = StationMetrics()
    m.observe_part(Verdict.ACCEPT, {"capture": 3.0, "infer": 8.0, "total": 20.0, "signal": None}, 1795000000.5)
    m.observe_part("reject", {"infer": 1.0, "total": 2000.0, "queue": 0.5})
    m.set_queues({"images": 3})
    text = m.render()
    s = parse(text)
    assert "# TYPE edgead_parts_total counter" in text
    assert "# TYPE edgead_stage_seconds histogram" in text
    assert "# TYPE edgead_ready gauge" in text
    assert s['edgead_parts_total{verdict="accept"}'] == 1
    assert s['edgead_parts_total{verdict="reject"}'] == 1
    assert s['edgead_parts_total{verdict="no-read"}'] == 0 and s['edgead_parts_total{verdict="fault"}'] == 0
    assert s['edgead_stage_seconds_bucket{stage="infer",le="0.001"}'] == 1  # 1 ms lands in le=0.001
    assert s['edgead_stage_seconds_bucket{stage="infer",le="0.005"}'] == 1
    assert s['edgead_stage_seconds_bucket{stage="infer",le="0.01"}'] == 2
    assert s['edgead_stage_seconds_bucket{stage="infer",le="+Inf"}'] == 2
    assert s['edgead_stage_seconds_count{stage="infer"}'] == 2
    assert s['edgead_stage_seconds_sum{stage="infer"}'] == pytest.approx(0.009)
    assert s['edgead_stage_seconds_bucket{stage="total",le="1"}'] == 1  # 2 s is above the last bound
    assert s['edgead_stage_seconds_bucket{stage="total",le="+Inf"}'] == 2
    assert s['edgead_stage_seconds_count{stage="signal"}'] == 0  # None was skipped; the series still exists
    assert s['edgead_stage_seconds_count{stage="queue"}'] == 1  # the part's wait for the loop
    assert s['edgead_queue_depth{queue="images"}'] == 3 and s['edgead_queue_depth{queue="capture"}'] == 0
    assert s["edgead_up"] == 1 and s["edgead_ready"] == 0
    m.set_state(State.READY)
    assert parse(m.render())["edgead_ready"] == 1
    assert parse(m.render())["edgead_last_part_timestamp_seconds"] > 1795000000


def test_buckets_are_cumulative_and_increasing():
    m = StationMetrics()
    for ms in (0.5, 1.5, 3, 7, 15, 40, 90, 150, 300, 700, 5000):
        m.observe_part("accept", {"align": ms})
    s = parse(m.render())
    les = [(k, v) for k, v in s.items() if k.startswith('edgead_stage_seconds_bucket{stage="align"')]
    values = [v for _, v in les]
    assert values == sorted(values) and values[-1] == 11
    assert les[0][0].endswith('le="0.001"}') and les[-1][0].endswith('le="+Inf"}')


def test_escaping_and_formatting():
    c = Counter("x_total", 'help with \\ and\nnewline', ["path"])
    c.labels('a"b\\c\nd').inc(2)
    g = Gauge("g", "gauge")
    g.labels().set(float("nan"))
    text = Registry([c, g]).render()
    assert '# HELP x_total help with \\\\ and\\nnewline' in text
    assert 'x_total{path="a\\"b\\\\c\\nd"} 2' in text
    assert "g NaN" in text
    parse(text)
    assert format_value(float("inf")) == "+Inf" and format_value(0.25) == "0.25" and format_value(3.0) == "3"


def test_misuse_is_refused():
    c = Counter("c_total", "c", ["verdict"])
    with pytest.raises(ValueError):
        c.labels("a", "b")
    with pytest.raises(ValueError):
        c.labels("a").inc(-1)
    with pytest.raises(ValueError):
        Histogram("h", "h", buckets=(0.1, 0.05))
    with pytest.raises(ValueError):
        Registry([c, Counter("c_total", "again")])


def test_concurrent_updates_are_not_lost():
    m = StationMetrics()

    def work():
        for _ in range(2000):
            m.observe_part("accept", {"infer": 5.0})

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = parse(m.render())
    assert s['edgead_parts_total{verdict="accept"}'] == 8000
    assert s['edgead_stage_seconds_count{stage="infer"}'] == 8000
    assert s['edgead_stage_seconds_bucket{stage="infer",le="0.005"}'] == 8000
