"""The continue hooks under the strategies: PatchCore's bank extension starting from the old rows, EfficientAD's
``continue_training`` keeping its teacher."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="needs torch")


def test_coreset_from_preselected_rows_keeps_them_first():
    from edgead.models.patchcore.coreset import greedy_coreset

    gen = torch.Generator().manual_seed(0)
    old, new = torch.randn(20, 8, generator=gen), torch.randn(200, 8, generator=gen) + 3.0
    index = greedy_coreset(torch.cat([old, new]), 30, projection_dim=0, progress=False, preselected=20)
    assert torch.equal(index[:20], torch.arange(20)) and bool((index[20:] >= 20).all())
    assert len(set(index.tolist())) == 30


def test_efficientad_continue_training_keeps_the_teacher():
    from edgead.models.efficientad import EfficientAd, fit

    model = EfficientAd((48, 64), width=0.125, ae_width=16, teacher_steps=2, steps=2)
    gen = torch.Generator().manual_seed(0)
    data = [torch.randn(4, 3, 48, 64, generator=gen)]
    fit(model, data, progress=False)
    teacher = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    norm = model.teacher_mean.clone(), model.teacher_std.clone()
    student = {k: v.clone() for k, v in model.student.state_dict().items()}
    fit(model, [torch.randn(4, 3, 48, 64, generator=gen) + 1.0], progress=False, continue_training=True)
    assert all(torch.equal(v, model.teacher.state_dict()[k]) for k, v in teacher.items())
    assert torch.equal(norm[0], model.teacher_mean) and torch.equal(norm[1], model.teacher_std)
    assert any(not torch.equal(v, model.student.state_dict()[k]) for k, v in student.items())
