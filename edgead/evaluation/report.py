"""Evaluation report: heatmap overlays of the worst cases and a Markdown metrics table."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from edgead.data import Color, load_image


def overlay(image: np.ndarray, amap: np.ndarray, mask: np.ndarray | None = None, alpha: float = 0.45) -> np.ndarray:
    """Blend a normalised map (0..1, 0.5 = threshold) over an RGB/gray image; outline the true mask in green.

    Returns:
        An RGB uint8 image at the image's size.
    """
    rgb = image if image.shape[2] == 3 else np.repeat(image, 3, axis=2)
    h, w = rgb.shape[:2]
    heat = cv2.resize(np.clip(amap.astype(np.float32), 0, 1), (w, h), interpolation=cv2.INTER_LINEAR)
    color = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]
    out = cv2.addWeighted(rgb, 1 - alpha, color, alpha, 0)
    contours, _ = cv2.findContours((heat >= 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, (255, 255, 255), 1)
    if mask is not None and mask.any():
        m = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, (0, 255, 0), 1)
    return out


def write_report(out: Path, result, color: Color, title: str, worst: int = 8) -> Path:
    """Write ``metrics.json``, ``report.md`` and overlays of the worst false rejects and misses."""
    out.mkdir(parents=True, exist_ok=True)
    labels = np.array([s.label for s in result.samples])
    good = np.flatnonzero(labels == 0)
    bad = np.flatnonzero(labels == 1)
    cases = [("good-highest", i) for i in good[np.argsort(-result.scores[good])][:worst]]
    cases += [("defect-lowest", i) for i in bad[np.argsort(result.scores[bad])][:worst]]
    rows = []
    for kind, i in cases:
        s = result.samples[i]
        img = overlay(load_image(s.path, color), result.maps[i], result.masks[i])
        name = f"{kind}-{s.defect_type}-{Path(s.path).stem}.png"
        cv2.imwrite(str(out / name), img[:, :, ::-1])
        rows.append(f"| {kind} | {s.defect_type} | {Path(s.path).name} | {result.scores[i]:.3f} | "
                    f"{result.raw_scores[i]:.4g} | ![]({name}) |")
    (out / "metrics.json").write_text(json.dumps(result.metrics, indent=2, default=float) + "\n")
    table = "\n".join(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |"
                      for k, v in result.metrics.items())
    (out / "report.md").write_text(
        f"# {title}\n\n| metric | value |\n|---|---|\n{table}\n\n## Worst cases\n\n"
        "| case | type | file | score | raw | overlay |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    return out / "report.md"
