"""CapsNet (supervised, imbalanced): the margin loss and the class weights on hand-computed cases, separation of good
and defective parts after a short training with 3 defects, the vote map's decomposition, export parity,
serialisation, and the typed errors."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="needs torch (extra [train])")

from edgead.errors import BundleError, ConfigError, DataError  # noqa: E402
from edgead.models.capsnet import CapsNet, fit  # noqa: E402
from edgead.models.capsnet.losses import inverse_frequency_weights, margin_loss, weighted_margin_loss  # noqa: E402
from edgead.models.capsnet.torch_model import ANOMALOUS  # noqa: E402
from edgead.models.registry import MODELS, Supervision, build  # noqa: E402
from separation import assert_separates  # noqa: E402

STEPS = 150


INPUT_HW = (96, 128)  # the conftest's synthetic parts


@pytest.fixture(scope="module")
def data(synthetic_set):
    """16 good + 3 defective training images (~16 % defects); 8 good and 5 other defective test images."""
    return {
        "train": synthetic_set["train"],
        "train_defects": synthetic_set["defects"][:3],
        "goods": synthetic_set["goods"],
        "defects": synthetic_set["defects"][3:],
        "masks": synthetic_set["masks"][3:],
    }


@pytest.fixture(scope="module")
def trained(one_thread, data):
    model = CapsNet(INPUT_HW, steps=STEPS)
    history = fit(model, data["train"], progress=False, defective=data["train_defects"])
    assert len(history) == STEPS and history[-1] < history[0]
    return model


def test_margin_loss_hand_computed():
    lengths = torch.tensor([[0.95, 0.05], [0.5, 0.7], [0.3, 0.2]])
    labels = torch.tensor([0, 1, 0])
    # sample 0: both within margins -> 0; sample 1: 0.5 * (0.5 - 0.1)^2 + (0.9 - 0.7)^2 = 0.08 + 0.04
    # sample 2: (0.9 - 0.3)^2 + 0.5 * (0.2 - 0.1)^2 = 0.36 + 0.005
    torch.testing.assert_close(margin_loss(lengths, labels), torch.tensor([0.0, 0.12, 0.365]))


def test_inverse_frequency_weights_balance_the_classes():
    labels = torch.tensor([0, 0, 0, 1])
    torch.testing.assert_close(inverse_frequency_weights(labels), torch.tensor([2 / 3, 2 / 3, 2 / 3, 2.0]))
    lengths = torch.tensor([[0.95, 0.0], [0.95, 0.0], [0.95, 0.0], [0.9, 0.0]])  # goods right, the defect wrong
    wrong = 0.5 * 0.8**2 + 0.9**2  # 1.13, the defect's margin loss
    assert float(weighted_margin_loss(lengths, labels)) == pytest.approx(wrong / 2)  # the defect class: half
    torch.testing.assert_close(inverse_frequency_weights(torch.tensor([1, 1])), torch.ones(2))


def test_separates_good_from_defective(trained, data):
    with torch.no_grad():
        good, _ = trained(data["goods"])
        bad, bad_maps = trained(data["defects"])
    assert bad_maps.shape == (5, *INPUT_HW)
    assert_separates(good, bad, min_auroc=0.85)
    # the vote map puts more evidence inside the defects than outside
    maps, masks = bad_maps.numpy(), data["masks"]
    assert maps[masks].mean() > maps[~masks].mean()


def test_vote_map_decomposes_the_anomalous_capsule(trained, data):
    with torch.no_grad():
        u_hat, v, c = trained.route(trained.features(data["defects"][:2]))
        s = (c[:, :, ANOMALOUS, None] * u_hat[:, :, ANOMALOUS]).sum(dim=1)  # pre-squash anomalous capsule
        unit = v[:, ANOMALOUS] / v[:, ANOMALOUS].norm(dim=-1, keepdim=True)
        votes = (c[:, :, ANOMALOUS] * (u_hat[:, :, ANOMALOUS] * unit[:, None]).sum(-1)).sum(dim=1)
    torch.testing.assert_close(votes, s.norm(dim=-1), rtol=1e-4, atol=1e-5)  # |s| = sum of the cells' votes


def test_onnx_matches_torch_with_dynamic_batch(trained, data, onnx_parity):
    x = torch.cat([data["goods"][:2], data["defects"][:3]])
    onnx_parity(trained, data["goods"][:2], x, forbidden=("Dropout",))


def test_round_trip_and_registry(trained, data):
    clone = CapsNet.from_state(trained.export_params(), trained.export_state())
    with torch.no_grad():
        torch.testing.assert_close(clone(data["goods"][:2]), trained(data["goods"][:2]))
    state = trained.export_state()
    state.pop("weight")
    with pytest.raises(BundleError, match="does not fit"):
        CapsNet.from_state(trained.export_params(), state)
    assert MODELS["capsnet"].supervision is Supervision.LABELLED
    assert isinstance(build("capsnet", (64, 96), pretrained=False), CapsNet)


def test_bad_inputs_are_typed_errors(data):
    with pytest.raises(ConfigError, match="multiples of 16"):
        CapsNet((100, 128), pretrained=False)
    with pytest.raises(ConfigError, match="feature_layer"):
        CapsNet(INPUT_HW, feature_layer="stem", pretrained=False)
    model = CapsNet(INPUT_HW, pretrained=False)
    with pytest.raises(DataError, match="no labelled defective"):
        fit(model, data["train"], progress=False)
    with pytest.raises(DataError, match="no good"):
        fit(model, [], progress=False, defective=data["train_defects"])
