"""Recipes: the config keys (checked by load and check, naming the recipe), every recipe loaded at start, selection by
number or name between parts, an unknown recipe answered fail-safe and recorded, and a reload that keeps the
recipe the plant selected."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edgead.daemon.config import load_station
from edgead.daemon.preflight import check_station
from edgead.daemon.recipes import UnknownRecipe, load_recipes
from edgead.daemon.station import Station
from edgead.errors import ConfigError, EdgeadError
from edgead.plc.base import Trigger
from edgead.records import RecordStore
from edgead.verdict import Verdict

# test helpers, on sys.path through tests/conftest.py
import contract_model as cm


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("recipes")
    return cm.build_bundle(root / "a"), cm.build_bundle(root / "b", seed=1)


def _write(tmp_path: Path, bundle: Path, **keys) -> Path:
    cam = tmp_path / "cam"
    cam.mkdir(exist_ok=True)
    for i in range(6):
        cv2.imwrite(str(cam / f"{i:03d}.png"), cm.good_image(np.random.default_rng(i), (40, 40)))
    data = {"camera": {"url": f"folder://{cam}?fps=0&loop=1"}, "trigger": "camera",
            "model": {"bundle": str(bundle), "warmup_runs": 0}, "plc": {"url": "loop://", "protocol": "discrete"},
            "storage": {"database": str(tmp_path / "r.sqlite"), "save_images": "none"},
            "observe": {"metrics_listen": None}, "security": {"allow_unsigned": True}, **keys}
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("recipes, recipe, needle", [
    ([{"name": "a"}, {"name": "a"}], None, r"recipes\[1\].name: 'a' is also recipes\[0\]"),
    ([{"name": "a"}, {"name": "b", "number": 1}], None, r"recipes\[1\].number: 1 also selects recipe 'a'"),
    ([{"name": "a b"}], None, "recipes: name 'a b' must be"),
    ([{"name": "a", "number": 70000}], None, r"recipes\[a\].number: 70000 is outside 1..65535"),
    ([{"name": "a"}], "z", "recipe: 'z' is not in recipes"),
    ([{"name": "a", "modell": {}}], None, "recipes[0].modell: unknown key"),
])
def test_bad_recipe_keys_are_refused_naming_them(bundles, tmp_path, recipes, recipe, needle):
    keys = {"recipes": recipes, **({"recipe": recipe} if recipe else {})}
    with pytest.raises(ConfigError) as err:
        load_station(_write(tmp_path, bundles[0], **keys))
    assert needle in str(err.value) or re.search(needle, str(err.value)), str(err.value)


def test_check_checks_every_recipe_naming_the_one_that_fails(bundles, tmp_path):
    ok = load_station(_write(tmp_path, bundles[0], recipes=[{"name": "a"}, {"name": "b", "model": {
        "bundle": str(bundles[1]), "warmup_runs": 0}}]))
    notes = check_station(ok)
    assert any(n.startswith("recipe a (1): model") for n in notes) and any(n.startswith("recipe b (2)") for n in notes)
    assert "2 recipe(s), a in force at start; a PLC or OPC UA selects another between parts" in notes
    bad = load_station(_write(tmp_path, bundles[0], recipes=[{"name": "a"}, {"name": "b", "model": {
        "bundle": str(tmp_path / "missing.edgead")}}]))
    with pytest.raises(ConfigError, match=r"recipes\[1\] 'b': model.bundle: .*missing.edgead does not exist"):
        check_station(bad)
    with pytest.raises(EdgeadError, match=r"recipes\[1\] 'b': .*missing.edgead does not exist"):
        load_recipes(bad)  # what run (and a reload) loads: refused as a whole


def test_every_recipe_goes_through_the_stations_admission(bundles, bundle_key, tmp_path):
    """Recipes' bundles are admitted like the station's own: unsigned ones are refused by a station that trusts
    only a key, naming the recipe."""
    from edgead.bundle.signing import TrustError

    cfg = load_station(_write(tmp_path, bundles[0], security={"trusted_keys": [bundle_key.line]},
                              recipes=[{"name": "a"}, {"name": "b", "model": {"bundle": str(bundles[1])}}]))
    with pytest.raises(TrustError, match=r"recipes\[0\] 'a': .*"):
        check_station(cfg)
    with pytest.raises(TrustError, match=r"recipes\[0\] 'a': .*"):
        load_recipes(cfg)


def test_the_book_resolves_numbers_and_names_and_refuses_the_rest(bundles, tmp_path):
    cfg = load_station(_write(tmp_path, bundles[0], recipe="b", recipes=[
        {"name": "a", "number": 10},
        {"name": "b", "model": {"bundle": str(bundles[1]), "warmup_runs": 0}, "decision": {"min_defect_area_px": 7}}]))
    book = load_recipes(cfg)
    try:
        assert book.name == "b" and book.names == ("a", "b")
        assert book.decision(cfg.decision).min_defect_area_px == 7
        assert book.select(10).name == "a" and book.decision(cfg.decision) is cfg.decision  # the station's, live
        assert book.resolve("2").name == "b" and book.resolve("a").name == "a"
        assert book.model_hash != book.resolve(2).model.model_hash  # each recipe its own bundle
        for key in (3, "c", "0"):
            with pytest.raises(UnknownRecipe, match="recipes: 10 a, 2 b"):
                book.select(key)
        assert book.name == "a" and book.switches == 1
    finally:
        book.close()


def test_a_one_model_station_has_no_recipe_to_select(bundles, tmp_path):
    book = load_recipes(load_station(_write(tmp_path, bundles[0])))
    try:
        assert book.name == "" and book.names == ()
        with pytest.raises(UnknownRecipe, match="recipes: none"):
            book.select(1)
    finally:
        book.close()


def test_triggers_switch_between_parts_unknown_is_fail_safe_and_recorded_reload_keeps_the_choice(bundles, tmp_path):
    cfg = load_station(_write(tmp_path, bundles[0], recipes=[
        {"name": "a"}, {"name": "b", "model": {"bundle": str(bundles[1]), "warmup_runs": 0}}]))
    with Station(cfg) as st:
        hashes = {r.name: r.model.model_hash for r in st.model.recipes}
        outcomes = []
        for recipe, lot in ((None, "L1"), (2, None), ("zz", None), (None, "L2"), ("a", None)):
            part = st._inspect(Trigger(f"p{len(outcomes)}", 0, recipe, lot))  # noqa: SLF001 -- one part, no PLC
            st._record_and_answer(part)  # noqa: SLF001
            outcomes.append(st._finish(part))  # noqa: SLF001
        assert outcomes[2].verdict is Verdict.FAULT and "recipe 'zz' is not a recipe" in outcomes[2].error
        assert all(o.verdict is not Verdict.FAULT for i, o in enumerate(outcomes) if i != 2)
        st.model.select("b")
        st.reload(dataclasses.replace(cfg, decision=dataclasses.replace(cfg.decision, min_defect_area_px=3)))
        assert st.model.name == "b"  # the plant's choice survives a reload
    with RecordStore(cfg.storage.database) as store:
        rows = list(store.query())
    assert [(r.recipe, r.lot_id) for r in rows] == [("a", "L1"), ("b", "L1"), ("zz", "L1"), ("b", "L2"),
                                                    ("a", "L2")]
    assert [r.model_hash for r in rows] == [hashes["a"], hashes["b"], hashes["b"], hashes["b"], hashes["a"]]
    assert rows[2].plc_answer == "reject"  # fail-safe


def test_an_opcua_port_in_use_stops_the_start_with_a_device_error_and_closes_everything(bundles, tmp_path):
    pytest.importorskip("asyncua", reason="asyncua (the [opcua] extra)")
    import socket

    from edgead.errors import ExitStatus
    from edgead.opcua.server import OpcUaError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = load_station(_write(tmp_path, bundles[0], opcua={"listen": f"127.0.0.1:{port}",
                                                               "pki_dir": str(tmp_path / "pki")}))
        station = Station(cfg)
        with pytest.raises(OpcUaError, match=f"opc.tcp://127.0.0.1:{port}/edgead cannot start") as err:
            station.__enter__()
        assert err.value.exit_status == ExitStatus.DEVICE
        assert not station._closers  # noqa: SLF001 -- everything opened was closed again


@pytest.mark.parametrize("with_recipes", [False, True])
def test_start_and_reload_admit_each_bundle_once_and_load_what_check_admitted(bundles, tmp_path, monkeypatch,
                                                                               with_recipes):
    """`run` checks (hashes, signature, reference, aligner) then loads: each bundle goes through the gate once per
    start and once per reload, and the loaded model is built on the very admission check made."""
    from edgead.daemon import admission as admission_mod
    from edgead.daemon import model as model_mod

    admitted: list = []

    def counting_admit(cfg):
        found = real_admit(cfg)
        admitted.append(found)
        return found

    real_admit = admission_mod.admit
    monkeypatch.setattr(admission_mod, "admit", counting_admit)  # check's import, at call time
    monkeypatch.setattr(model_mod, "admit", counting_admit)  # load_model's, when given no admission
    recipes = [{"name": "a"}, {"name": "b", "model": {"bundle": str(bundles[1]), "warmup_runs": 0}}]
    cfg = load_station(_write(tmp_path, bundles[0], **({"recipes": recipes} if with_recipes else {})))
    models = 2 if with_recipes else 1
    with Station(cfg) as st:
        assert len(admitted) == models
        assert [r.model.aligner for r in st.model.recipes] == [a.aligner for a in admitted]  # check's, reused
        st.reload(dataclasses.replace(cfg, decision=dataclasses.replace(cfg.decision, min_defect_area_px=3)))
        assert len(admitted) == 2 * models


def test_the_shadow_bundle_is_admitted_once_per_start_and_reload(bundles, tmp_path, monkeypatch):
    """The shadow bundle goes through check's gate, and the shadow runner opens on that admission."""
    from edgead.daemon import admission as admission_mod
    from edgead.daemon import model as model_mod

    admitted: list = []

    def counting_admit(cfg):
        admitted.append(real_admit(cfg))
        return admitted[-1]

    real_admit = admission_mod.admit
    monkeypatch.setattr(admission_mod, "admit", counting_admit)
    monkeypatch.setattr(model_mod, "admit", counting_admit)
    cfg = load_station(_write(tmp_path, bundles[0], shadow={"bundle": str(bundles[1])}))
    with Station(cfg) as st:
        assert len(admitted) == 2  # the live model and the shadow, each once
        assert st.shadow.model.model_hash == admitted[1].bundle.model_hash
        st.reload(dataclasses.replace(cfg, shadow=dataclasses.replace(cfg.shadow, cpu_budget_pct=50.0)))
        assert len(admitted) == 4
        assert st.shadow.cfg.cpu_budget_pct == 50.0  # a new shadow, opened on the reload's admission
