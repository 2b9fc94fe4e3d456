"""`edgead check` means `edgead run` will start: the configs of issue 15 (items 5-7) are refused naming the key, and
a walk over every key of the schema shows that a value `check` accepts is one `run` starts and runs with."""
from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path

import pytest
import yaml

from edgead.cli import main
from edgead.daemon.config import StationConfig, load_station
from edgead.daemon.preflight import check_station
from edgead.errors import CameraError, EdgeadError, ExitStatus, PlcError


@pytest.fixture(scope="module")
def base(small_station, padim_bundle, bundle_key) -> dict:
    """A station that starts on software twins only: folder replay, ASCII results onto loop://, camera-triggered."""
    return {
        "trigger": "camera",
        "camera": {"url": f"folder://{small_station.captures}?fps=0&loop=1&pattern=*.png"},
        "reference": str(small_station.reference),
        "model": {"bundle": str(padim_bundle.bundle.root), "warmup_runs": 0},
        "plc": {"url": "loop://", "protocol": "ascii"},
        "observe": {"metrics_listen": None},
        "security": bundle_key.security,  # the bundle is signed by the tests' key (tests/conftest.py)
    }


def write(folder: Path, cfg: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "station.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def with_key(cfg: dict, dotted: str, value) -> dict:
    out = yaml.safe_load(yaml.safe_dump(cfg))
    node = out
    parts = dotted.replace("[]", "[0]").split(".")
    for part in parts[:-1]:
        if part.endswith("[0]"):
            node = node.setdefault(part[:-3], [{}])[0]
        else:
            node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def check_cli(path: Path, capsys) -> tuple[int, str]:
    rc = main(["check", str(path)])
    out = capsys.readouterr()
    return rc, out.out + out.err


OVERLONG = "/tmp/" + "/".join(["d" * 60] * 9) + "/records.sqlite"

# (what the issue found, the key, the value, extra keys for the setting)
REFUSED = [
    ("5: NaN rotation", "alignment.max_rotation_deg", math.nan, {}),
    ("5: infinite rotation", "alignment.max_rotation_deg", math.inf, {}),
    ("5: negative ORB features", "alignment.orb_features", -5, {}),
    ("5: GIF archive", "storage.image_format", "gif", {}),
    ("5: overlong database path", "storage.database", OVERLONG, {}),
    ("5: unknown template field", "plc.ascii.pass_template", "OK {partid}", {}),
    ("5: unknown encoding", "plc.ascii.encoding", "bogus", {}),
    ("5: 4 GB rotation search", "alignment.rotation_step_deg", 1.0e-9, {}),
    ("6: counter on the verdict register", "plc.registers.counter_register", 0, {"plc.protocol": "modbus-server"}),
    ("6: pass coil on the result-valid coil", "plc.registers.pass_coil", 1, {"plc.protocol": "modbus-server"}),
    ("6: no verdict carrier", "plc.registers.verdict_register", None,
     {"plc.protocol": "modbus-server", "plc.registers.pass_coil": None}),
    ("6: a reject that reads as accept", "plc.ascii.reject_template", "OK {part_id}", {}),
]


@pytest.mark.parametrize("why, key, value, extra", REFUSED, ids=[r[0] for r in REFUSED])
def test_the_configs_of_items_5_and_6_are_refused_naming_the_key(base, tmp_path, capsys, why, key, value, extra):
    cfg = with_key(base, key, value)
    for k, v in extra.items():
        cfg = with_key(cfg, k, v)
    rc, out = check_cli(write(tmp_path, cfg), capsys)
    assert rc == ExitStatus.BAD_INPUT, out
    named = key if key != "storage.database" else "records database path"
    assert named in out, out


def test_item_7_default_storage_resolves_against_the_config_file_not_the_working_directory(
        base, tmp_path, capsys, monkeypatch):
    """The defaults `records.sqlite` and `images` live beside the config file (systemd runs the daemon in /)."""
    cfg_dir, elsewhere = tmp_path / "etc", tmp_path / "cwd"
    elsewhere.mkdir()
    path = write(cfg_dir, base)
    monkeypatch.chdir(elsewhere)
    cfg = load_station(path)
    assert cfg.storage.database == cfg_dir / "records.sqlite" and cfg.storage.images_dir == cfg_dir / "images"
    assert cfg.model.bundle.is_absolute()
    (cfg_dir / "records.sqlite").mkdir()  # unusable where run would put it; the working directory is fine
    rc, out = check_cli(path, capsys)
    assert rc == ExitStatus.BAD_INPUT and "storage.database" in out and str(cfg_dir) in out, out


def test_a_relative_folder_camera_resolves_against_the_config_file(base, tmp_path, monkeypatch):
    cfg = with_key(base, "camera.url", "folder://captures?fps=0")
    path = write(tmp_path / "etc", cfg)
    monkeypatch.chdir(tmp_path)
    assert load_station(path).camera.url == f"folder://{tmp_path / 'etc' / 'captures'}?fps=0"


def test_check_does_not_create_the_database(base, tmp_path, capsys):
    cfg = with_key(base, "storage.database", str(tmp_path / "state" / "records.sqlite"))
    rc, out = check_cli(write(tmp_path, cfg), capsys)
    assert rc == 0, out
    assert "will be created at start" in out and not (tmp_path / "state").exists()


def test_passwords_never_reach_the_output(base, tmp_path, capsys):
    cfg = with_key(base, "camera.url", "rtsp://admin:hunter2@127.0.0.1:1/stream?token=s3cret")
    rc, out = check_cli(write(tmp_path, cfg), capsys)
    assert rc == 0 and "admin:***@127.0.0.1" in out, out
    assert "hunter2" not in out and "s3cret" not in out
    bad = with_key(cfg, "camera.url", "rstp://admin:hunter2@127.0.0.1:1/stream")  # a typo in the scheme
    rc, out = check_cli(write(tmp_path, bad), capsys)
    assert rc == ExitStatus.BAD_INPUT and "hunter2" not in out and "admin:***@" in out, out


def test_check_names_the_inference_threads_run_will_use_and_refuses_other_rules(base, tmp_path, capsys):
    from edgead.infer.threads import usable_cores

    left = max(1, usable_cores() - 1)
    rc, out = check_cli(write(tmp_path, with_key(base, "model.intra_op_threads", "cores_left")), capsys)
    assert rc == 0, out
    assert (f"runtime onnxruntime, {left} inference thread{'s' if left != 1 else ''} (model.intra_op_threads: "
            f"cores_left, {usable_cores()} usable cores)") in out, out
    rc, out = check_cli(write(tmp_path, with_key(base, "model.intra_op_threads", "auto")), capsys)
    assert rc == ExitStatus.BAD_INPUT and "model.intra_op_threads" in out and "'cores_left'" in out, out


# -- the schema walk ----------------------------------------------------------------------------------------------

def leaf_keys(cls: type = StationConfig, prefix: str = "") -> list[tuple[str, typing.Any]]:
    """Every key of the schema with its type (``rois[].x`` for the fields of a list of sections)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init or (not prefix and f.name == "source"):
            continue
        dotted, tp = f"{prefix}{f.name}", hints[f.name]
        if dataclasses.is_dataclass(tp):
            out += leaf_keys(tp, dotted + ".")
        elif typing.get_origin(tp) in (tuple, list) and dataclasses.is_dataclass(typing.get_args(tp)[0]):
            out += leaf_keys(typing.get_args(tp)[0], dotted + "[].")
        else:
            out.append((dotted, tp))
    return out


def bad_values(tp) -> list:
    """Values at and beyond the edges for a type (enums and booleans are closed sets: the loader refuses others)."""
    args = typing.get_args(tp)
    values = [None] if type(None) in args else []
    for t in [a for a in args if a is not type(None)] or [tp]:
        if t is int:
            values += [-1, 0, 1, 2 ** 40]
        elif t is float:
            values += [math.nan, math.inf, -1.0, 0.0, 1e-9, 1e12]
        elif t is str:
            values += ["", "bogus", "{x}", "x" * 5000]
        elif t is Path:
            values += ["", "no/such/file", OVERLONG, "/proc/edgead/x"]
        elif isinstance(t, type) and issubclass(t, bool):
            values += [True, False]
    return values


# The devices: `check` validates their URLs, `run` opens them (a port that is not there fails only there).
DEVICE_KEYS = {"camera.url", "plc.url"}

# Protocol-specific keys are consumed by run only under their protocol; walk them under it.
SETTING = {"plc.modbus.": {"plc.protocol": "modbus-server"}, "plc.registers.": {"plc.protocol": "modbus-server"},
           "plc.discrete.": {"plc.protocol": "discrete"}, "recipes[].": {"recipes": [{"name": "a"}]},
           "rois[].": {"rois": [{"name": "part", "x": 0, "y": 0, "width": 96, "height": 96}],
                       "model.geometry_check": "warn"}}  # crops of a whole-part model: the override


def walk_cases(base: dict) -> list[tuple[str, object, dict]]:
    cases = []
    for key, tp in leaf_keys():
        setting = next((v for k, v in SETTING.items() if key.startswith(k)), {})
        for value in bad_values(tp):
            cfg = base
            for k, v in setting.items():
                cfg = with_key(cfg, k, v)
            cases.append((key, value, with_key(cfg, key, value)))
    return cases


@pytest.mark.timeout(1200)
def test_every_key_check_accepts_is_one_run_starts_with(base, tmp_path, monkeypatch):
    """For every key of the schema and values at and beyond its edges: either `check` refuses the value naming the
    key, or the station built from it starts on its software twins and inspects parts without an internal error.
    (The model is loaded once per distinct model/reference/alignment/ROI setting.)"""
    from edgead.daemon import model as model_mod
    from edgead.daemon import recipes as recipes_mod
    from edgead.daemon.station import Station

    cache: dict = {}
    real_load = model_mod.load_model

    class Shared(model_mod.LoadedModel):
        def close(self) -> None:  # the cache owns the engine; closed at the end
            pass

    def cached_load(cfg, admission=None):
        k = repr((cfg.model, cfg.reference, cfg.alignment, cfg.rois, cfg.camera.max_image_px))
        if k not in cache:
            cache[k] = real_load(cfg)
        return Shared(**vars(cache[k]))

    monkeypatch.setattr(recipes_mod, "load_model", cached_load)
    def shown(value) -> str:
        text = repr(value)
        return text if len(text) < 60 else text[:40] + f"...({len(text)} chars)"

    cases = walk_cases(base)
    keys = {k for k, _ in leaf_keys()}
    assert len(keys) > 90 and {"storage.synchronous", "plc.ascii.reject_template", "rois[].width"} <= keys
    refused, started, failures = 0, 0, []
    for n, (key, value, cfg) in enumerate(cases):
        folder = tmp_path / f"case{n}"
        try:
            path = write(folder, cfg)
            check_station(load_station(path))
        except EdgeadError as exc:
            refused += 1
            last = key.split(".")[-1]
            if last not in str(exc) and key.split(".")[0] not in str(exc):
                failures.append(f"{key}={shown(value)}: refused without naming the key: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{key}={shown(value)}: check crashed: {type(exc).__name__}: {exc}")
            continue
        try:
            with Station(load_station(path)) as station:
                outcomes = [station.step() for _ in range(2)]
            internal = [o.error for o in outcomes if o is not None and o.error and "internal error" in o.error]
            if internal:
                failures.append(f"{key}={shown(value)}: passed check, then {internal[0]}")
            started += 1
        except (CameraError, PlcError) as exc:
            if key not in DEVICE_KEYS:  # check covers everything but opening the devices themselves
                failures.append(f"{key}={shown(value)}: passed check, a device failed: {type(exc).__name__}: "
                                f"{str(exc)[:200]}")
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{key}={shown(value)}: passed check, run failed: {type(exc).__name__}: {str(exc)[:300]}")
    for loaded in cache.values():
        loaded.close()
    assert not failures, "\n".join(failures)
    assert refused > 100 and started > 20  # the walk exercised both sides
