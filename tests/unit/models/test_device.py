"""--device auto|cpu|cuda: resolution, clear errors without CUDA, fit_on moving the model back, the bundle's record."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="needs torch (extra [train])")

from edgead.cli import main  # noqa: E402
from edgead.errors import ConfigError, ExitStatus  # noqa: E402
from edgead.models.device import DeviceBatches, fit_on, resolve_device  # noqa: E402


def test_auto_picks_cuda_only_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") and resolve_device(None) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")


def test_cuda_without_a_gpu_names_torch_and_what_to_do(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="sees no CUDA device") as info:
        resolve_device("cuda")
    assert "--device cpu" in info.value.hint
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("cpu:1")


def test_fit_on_the_cpu_is_the_plain_fit():
    calls = []
    model = torch.nn.Linear(2, 2)
    assert fit_on(lambda m, b, **o: calls.append((m, list(b), o)) or "ok", model, [torch.ones(1, 2)],
                  torch.device("cpu"), progress=False) == "ok"
    assert calls[0][0] is model and calls[0][2] == {"progress": False}


def test_device_batches_move_and_keep_len():
    batches = [torch.ones(2, 3), torch.zeros(1, 3)]
    moved = DeviceBatches(batches, torch.device("cpu"))
    assert len(moved) == 2 and [b.shape[0] for b in moved] == [2, 1] and [b.shape[0] for b in moved] == [2, 1]


def test_bundle_records_the_device(padim_bundle):
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert padim_bundle.bundle.meta.training.device.startswith(want)


def test_cli_train_on_cuda_without_one(small_station, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: tests/gpu/test_train_cuda.py trains there")
    rc = main(["train", "--data", str(small_station.aligned), "--out", str(tmp_path / "b"), "--model", "padim",
               "--device", "cuda", "--quiet"])
    assert rc == ExitStatus.BAD_INPUT
    assert "sees no CUDA device" in capsys.readouterr().err
