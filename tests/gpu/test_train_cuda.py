"""One short training of every model on CUDA (``--device cuda``), exported and evaluated like a CPU bundle.

Skipped with the reason where torch sees no CUDA device (CI, build hosts without a GPU).
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="needs torch (extra [train])")

pytestmark = pytest.mark.gpu

SHORT = {"draem": {"steps": 4}, "efficientad": {"teacher_steps": 4, "steps": 4}, "vt-adl": {"epochs": 1},
         "piade": {"epochs": 1}, "ae-knn": {"epochs": 1}, "capsnet": {"steps": 4}}


@pytest.fixture(scope="module")
def cuda():
    if not torch.cuda.is_available():
        pytest.skip(f"needs a CUDA device; torch {torch.__version__} sees none "
                    f"({'CUDA ' + torch.version.cuda if torch.version.cuda else 'a CPU-only build'})")
    return torch.device("cuda")


@pytest.mark.parametrize("model", ["patchcore", "padim", "draem", "efficientad", "vt-adl", "piade", "ae-knn"])
def test_short_training_on_cuda(cuda, model, small_station, tmp_path):
    from edgead.train.pipeline import TrainConfig, train

    cfg = TrainConfig(model=model, image_size=160, device="cuda", params=SHORT.get(model, {}), preset="quick")
    result = train(small_station.aligned, tmp_path / model, cfg, progress=False)
    assert result.bundle.meta.training.device.startswith("cuda")
    assert result.metrics["image_auroc"] is not None  # evaluated by ONNX Runtime like any bundle
    state = result.bundle.state_path
    assert state.is_file()


PAPER_SHORT = {"draem": {"steps": 2}, "efficientad": {"teacher_steps": 2, "steps": 2}, "vt-adl": {"epochs": 1},
               "piade": {"epochs": 1}, "ae-knn": {"epochs": 1}}


@pytest.mark.parametrize("model", sorted(PAPER_SHORT))
def test_cuda_defaults_to_the_paper_preset_and_trains_its_architecture(cuda, model, small_station, tmp_path,
                                                                          monkeypatch):
    from edgead.models.registry import model_params
    from edgead.train.pipeline import TrainConfig, train

    monkeypatch.setenv("EDGEAD_TEACHER_CACHE", str(tmp_path / "teachers"))  # EfficientAD distils its own here
    cfg = TrainConfig(model=model, image_size=160, device="cuda", params=PAPER_SHORT[model], evaluate=False)
    bundle = train(small_station.aligned, tmp_path / model, cfg, progress=False).bundle
    assert bundle.meta.training.preset == "paper"
    paper = model_params(model, "paper", **PAPER_SHORT[model])
    assert {k: bundle.meta.model.params[k] for k in paper if k != "seed"} == {k: v for k, v in paper.items()
                                                                              if k != "seed"}
