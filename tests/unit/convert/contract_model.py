"""A tiny contract-conforming detector for the conversion tests: a conv backbone + a kNN head on a memory bank.

Everything is synthetic and seeded: good images are smooth noise textures, defective ones carry a bright or dark
blob (with its mask). ``build_bundle`` exports the graph through ``edgead.models.export`` and writes a bundle.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

HW = (32, 32)
CHANNELS = 3
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def good_image(rng: np.random.Generator, hw=(40, 40)) -> np.ndarray:
    """A smooth random texture (uint8 HxWx3)."""
    small = rng.integers(90, 160, size=(hw[0] // 4, hw[1] // 4, 3)).astype(np.float32)
    img = cv2.resize(small, (hw[1], hw[0]), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def defect_image(rng: np.random.Generator, hw=(40, 40)) -> tuple[np.ndarray, np.ndarray]:
    """A good texture with a bright/dark disc; returns (image, mask uint8 0/255)."""
    img = good_image(rng, hw)
    mask = np.zeros(hw, np.uint8)
    cy, cx = rng.integers(8, hw[0] - 8), rng.integers(8, hw[1] - 8)
    cv2.circle(mask, (int(cx), int(cy)), int(rng.integers(3, 6)), 255, -1)
    value = 250 if rng.random() < 0.5 else 10
    img[mask > 0] = value
    return img, mask


def _detector(bank_images: np.ndarray):
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(0)

    class TinyKnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(32, 32, 3, padding=1), nn.ReLU())
            self.register_buffer("bank", torch.zeros(1, 32))
            g = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
            k = torch.outer(g, g)
            self.register_buffer("blur", (k / k.sum()).view(1, 1, 5, 5))

        def embed(self, x):
            f = self.backbone(x)
            return F.avg_pool2d(f, 3, 1, 1)

        def forward(self, x):
            f = self.embed(x)
            n, c, h, w = f.shape
            emb = f.permute(0, 2, 3, 1).reshape(n, h * w, c)
            d2 = (emb * emb).sum(-1, keepdim=True) - 2 * emb @ self.bank.t() + (self.bank * self.bank).sum(-1)
            dist = torch.clamp(d2, min=0).min(-1).values.sqrt().reshape(n, 1, h, w)
            amap = F.interpolate(dist, size=x.shape[-2:], mode="bilinear", align_corners=False)
            amap = F.conv2d(amap, self.blur, padding=2)[:, 0]
            return amap.amax(dim=(1, 2)), amap

    model = TinyKnn().eval()
    with torch.no_grad():
        model.backbone[1].running_mean.uniform_(-0.1, 0.1)
        model.backbone[1].running_var.uniform_(0.8, 1.2)
        x = torch.from_numpy(bank_images).permute(0, 3, 1, 2).float() / 255.0
        x = F.interpolate(x, size=HW, mode="bilinear", align_corners=False)
        x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
        emb = model.embed(x).permute(0, 2, 3, 1).reshape(-1, 32)
        idx = torch.randperm(emb.shape[0])[:256]
        model.bank = emb[idx].clone()
    return model


def build_bundle(out_dir: Path, *, seed: int = 0) -> Path:
    """Export the tiny detector (fitted on seeded good images) and write a bundle at ``out_dir``."""
    from edgead.bundle import write_bundle
    from edgead.models.export import export_onnx

    rng = np.random.default_rng(seed)
    train = np.stack([good_image(rng) for _ in range(12)])
    model = _detector(train)
    norm = {"image_lo": 0.0, "image_thr": 1.0, "pixel_lo": 0.0, "pixel_thr": 1.0}
    out_dir = Path(out_dir)
    onnx_path = export_onnx(model, out_dir.parent / f".{out_dir.name}.model.onnx", input_hw=HW, channels=CHANNELS,
                            mean=MEAN, std=STD, norm=norm)
    # Thresholds from held-out good images, so the normalised 0.5 means something.
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    held = np.stack([good_image(rng) for _ in range(16)])
    raw_score, raw_map = sess.run(["raw_score", "raw_map"], {"image": held})
    norm = {"image_lo": float(raw_score.min()), "image_thr": float(raw_score.max() * 1.05),
            "pixel_lo": float(np.percentile(raw_map, 5)), "pixel_thr": float(raw_map.max() * 1.05)}
    from edgead.contract.thresholds import Calibration, Normalisation, ThresholdMethod
    from edgead.convert.onnx_edit import set_normalisation

    cal = Calibration(Normalisation(norm["image_lo"], norm["image_thr"]),
                      Normalisation(norm["pixel_lo"], norm["pixel_thr"]), ThresholdMethod.FRR, None, 16, 0)
    set_normalisation(onnx_path, cal, onnx_path)
    meta = {
        "edgead_version": "0.1.0",
        "model": {"type": "tinyknn", "params": {}},
        "input": {"height": HW[0], "width": HW[1], "channels": CHANNELS, "color": "rgb", "dtype": "uint8",
                  "layout": "NHWC"},
        "thresholds": {"image": norm["image_thr"], "pixel": norm["pixel_thr"], "method": "frr"},
        "normalisation": {"image_lo": norm["image_lo"], "pixel_lo": norm["pixel_lo"]},
    }
    bundle = write_bundle(out_dir, meta, {"model.onnx": onnx_path})
    onnx_path.unlink()
    return bundle.root


def write_good_folder(folder: Path, n: int, *, seed: int = 1, hw=(40, 40)) -> Path:
    """Write ``n`` good PNG images (RGB order on disk as BGR, like any camera dump)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"good_{i:03d}.png"), cv2.cvtColor(good_image(rng, hw), cv2.COLOR_RGB2BGR))
    return folder


def write_mvtec_test(root: Path, *, n_good: int = 10, n_bad: int = 10, seed: int = 2) -> Path:
    """Write an MVTec-layout category: train/good, test/good, test/blob (+ ground_truth/blob/*_mask.png)."""
    rng = np.random.default_rng(seed)
    write_good_folder(root / "train" / "good", 4, seed=seed + 100)
    (root / "test" / "good").mkdir(parents=True, exist_ok=True)
    (root / "test" / "blob").mkdir(parents=True, exist_ok=True)
    (root / "ground_truth" / "blob").mkdir(parents=True, exist_ok=True)
    for i in range(n_good):
        cv2.imwrite(str(root / "test" / "good" / f"{i:03d}.png"), cv2.cvtColor(good_image(rng), cv2.COLOR_RGB2BGR))
    for i in range(n_bad):
        img, mask = defect_image(rng)
        cv2.imwrite(str(root / "test" / "blob" / f"{i:03d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "ground_truth" / "blob" / f"{i:03d}_mask.png"), mask)
    return root
