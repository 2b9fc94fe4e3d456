"""The shadow model on the synthetic station: a deliberately worse candidate's new accepts in `records --compare`.

The candidate is the live bundle with its threshold moved far up (`edgead threshold --image-threshold`): it accepts
every part, so each part the live model rejected is one of its new accepts. The test paces the line so that the
shadow finishes each part before the next trigger (`wait_idle`: a line whose cycle leaves the shadow room);
a second run with a tiny CPU budget shows the skips being counted instead.
"""
from __future__ import annotations

import json

import pytest
from replay_station import replay_config, step_to_end, write_config  # tests/helpers

from edgead.cli import main
from edgead.daemon.config import load_station
from edgead.daemon.station import Station
from edgead.records import RecordStore
from edgead.verdict import Verdict

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def worse(padim_bundle, bundle_key, tmp_path_factory):
    out = tmp_path_factory.mktemp("cand") / "worse"
    assert main(["threshold", "--bundle", str(padim_bundle.bundle.root), "--image-threshold", "1e9",
                 "--out", str(out), "--sign-key", str(bundle_key.key)]) == 0
    return out


def _run(tmp_path, station, bundle, shadow, budget_pct: float, pace: bool, security: dict):
    cfg = replay_config(tmp_path, station, bundle, security, storage={"save_images": "none"},
                        shadow={"bundle": str(shadow), "cpu_budget_pct": budget_pct})
    path = write_config(tmp_path, cfg)
    with Station(load_station(path)) as st:
        seen = step_to_end(st, (lambda o: st.shadow.wait_idle(60)) if pace else None)
        counts = dict(st.shadow.counts)
        text = st.metrics.render()
    return path, seen, counts, text


def test_worse_candidate_shows_its_new_accepts(small_station, padim_bundle, bundle_key, worse, tmp_path, capsys):
    path, seen, counts, text = _run(tmp_path, small_station, padim_bundle.bundle, worse, 100.0, pace=True,
                                     security=bundle_key.security)
    rejects = sum(o.verdict is Verdict.REJECT for o in seen)
    accepts = sum(o.verdict is Verdict.ACCEPT for o in seen)
    assert len(seen) == 24 and rejects >= 3 and accepts >= 3
    assert counts["scored"] == 24 and 'edgead_shadow_parts_total{outcome="scored"} 24' in text
    with RecordStore(tmp_path / "records.sqlite") as store:
        shadow_rows = store.read("SELECT part_row, model_hash, verdict FROM shadow ORDER BY part_row")
        live = {r.id: r.verdict for r in store.query()}
    assert len(shadow_rows) == 24 and {r[2] for r in shadow_rows} == {"accept"}
    hashes = {r[1] for r in shadow_rows}
    assert len(hashes) == 1 and hashes != {padim_bundle.bundle.model_hash}  # the candidate's, not the live one
    assert {o.row_id: o.verdict for o in seen} == live  # the live verdicts are the live model's own

    assert main(["records", str(path), "--compare", "--json"]) == 0
    c = json.loads(capsys.readouterr().out)
    assert (c["parts"], c["shadowed"], c["skipped"]) == (24, 24, 0)
    assert c["new_accepts"] == rejects and c["new_rejects"] == 0 and c["agree"] == accepts
    assert main(["records", str(path), "--compare"]) == 0
    assert f"new accepts {rejects}, new rejects 0" in capsys.readouterr().out


def test_over_budget_parts_are_skipped_and_counted(small_station, padim_bundle, bundle_key, worse, tmp_path, capsys):
    # 0.01 % of a core over 10 s is 1 ms: after the first part the budget is spent for the rest of the run
    _, seen, counts, text = _run(tmp_path, small_station, padim_bundle.bundle, worse, 0.01, pace=True,
                                       security=bundle_key.security)
    assert counts["scored"] == 1 and counts["skipped_budget"] == len(seen) - 1 == 23
    assert 'edgead_shadow_parts_total{outcome="skipped_budget"} 23' in text
    assert main(["records", str(tmp_path / "records.sqlite"), "--compare", "--json"]) == 0
    c = json.loads(capsys.readouterr().out)
    assert (c["shadowed"], c["skipped"]) == (1, 23)


def test_a_reload_starts_and_stops_the_shadow_and_renews_the_drift_window(small_station, padim_bundle, bundle_key,
                                                                         worse, tmp_path):
    import dataclasses

    from edgead.daemon.shadow import ShadowConfig

    cfg = load_station(write_config(tmp_path, replay_config(tmp_path, small_station, padim_bundle.bundle,
                                                            bundle_key.security, storage={"save_images": "none"})))
    with Station(cfg) as st:
        assert st.shadow is None
        st.step()
        old_drift = st.drift
        plan = st.reload(dataclasses.replace(cfg, shadow=ShadowConfig(bundle=worse)))
        assert "shadow" in plan.components and st.shadow is not None and st.drift is not old_drift
        first = st.step()
        assert st.shadow.wait_idle(60)
        second = st.step()  # carries the first part's shadow verdict in its commit
        assert st.reload(cfg).components == ("model", "shadow") and st.shadow is None  # the second's is kept too
    with RecordStore(tmp_path / "records.sqlite") as store:
        assert [r[0] for r in store.read("SELECT part_row FROM shadow")] == [first.row_id, second.row_id]
