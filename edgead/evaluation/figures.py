"""The evaluation report's figures, drawn with matplotlib (build host, extra ``train``) into PNG bytes.

Each function returns PNG bytes, so the report can embed them (one HTML file that opens offline). matplotlib runs
on its non-interactive Agg canvas; nothing touches a display.
"""
from __future__ import annotations

import io

import numpy as np

from edgead.errors import lazy_import
from edgead.metrics.image import curve_points

GOOD_COLOR, DEFECT_COLOR, THRESHOLD_COLOR = "#2b8cbe", "#e34a33", "black"


def _plt():
    lazy_import("matplotlib", feature="the evaluation report's figures")
    from matplotlib.figure import Figure  # the object API: no pyplot state, no display backend

    return Figure


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return buf.getvalue()


def roc_pr_png(labels, raw_scores, threshold: float) -> bytes:
    """ROC and precision-recall curves side by side, the shipped threshold marked on both."""
    Figure = _plt()
    p = curve_points(labels, raw_scores)
    at = int(np.searchsorted(-p["thresholds"], -threshold, side="right")) - 1  # last t >= threshold
    fig = Figure(figsize=(9, 3.8))
    roc, pr = fig.subplots(1, 2)
    roc.plot(p["fpr"], p["tpr"], color=DEFECT_COLOR, lw=1.5)
    roc.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
    pr.plot(p["recall"], p["precision"], color=DEFECT_COLOR, lw=1.5, drawstyle="steps-post")
    if at >= 0:
        roc.plot(p["fpr"][at + 1], p["tpr"][at + 1], "o", color=THRESHOLD_COLOR, label="shipped threshold")
        pr.plot(p["recall"][at], p["precision"][at], "o", color=THRESHOLD_COLOR, label="shipped threshold")
        roc.legend(loc="lower right")
        pr.legend(loc="lower left")
    roc.set(xlabel="false-reject rate (good parts rejected)", ylabel="defects rejected (1 - escape rate)",
            title="ROC", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
    pr.set(xlabel="recall (defects rejected)", ylabel="precision", title="precision-recall", xlim=(-0.01, 1.01),
           ylim=(-0.01, 1.01))
    return _png(fig)


def histogram_png(labels, raw_scores, threshold: float) -> bytes:
    """Raw scores of good and defective parts, with the shipped threshold as a vertical line."""
    Figure = _plt()
    labels = np.asarray(labels).astype(bool)
    raw = np.asarray(raw_scores, np.float64)
    fig = Figure(figsize=(9, 3.4))
    ax = fig.subplots()
    bins = np.histogram_bin_edges(np.r_[raw, threshold], bins=min(60, max(10, raw.size // 4)))
    ax.hist(raw[~labels], bins=bins, alpha=0.6, color=GOOD_COLOR, label=f"good ({int((~labels).sum())})")
    ax.hist(raw[labels], bins=bins, alpha=0.6, color=DEFECT_COLOR, label=f"defective ({int(labels.sum())})")
    ax.axvline(threshold, color=THRESHOLD_COLOR, lw=2, ls="--", label=f"threshold {threshold:.4g}")
    ax.set(xlabel="raw anomaly score (reject at or above the threshold)", ylabel="parts")
    ax.legend()
    return _png(fig)


def overlay_png(image: np.ndarray, amap: np.ndarray, mask: np.ndarray | None, *, title: str) -> bytes:
    """The part with its normalised anomaly map (0.5 = the pixel threshold) in colour, a colour bar as the legend,
    the map's above-threshold outline (white) and the ground truth outline (green)."""
    import cv2
    from matplotlib.lines import Line2D

    Figure = _plt()
    rgb = image if image.shape[2] == 3 else np.repeat(image, 3, axis=2)
    h, w = rgb.shape[:2]
    heat = cv2.resize(np.clip(np.asarray(amap, np.float32), 0, 1), (w, h), interpolation=cv2.INTER_LINEAR)
    fig = Figure(figsize=(4.6, 4.6 * h / w + 0.9))
    ax = fig.subplots()
    ax.imshow(rgb)
    shown = ax.imshow(heat, cmap="jet", vmin=0.0, vmax=1.0, alpha=0.45)
    ax.contour(heat, levels=[0.5], colors="white", linewidths=1)
    handles = [Line2D([], [], color="white", lw=1.5, label="map >= threshold")]
    if mask is not None and np.asarray(mask).any():
        full = cv2.resize(np.asarray(mask, np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
        ax.contour(full, levels=[0.5], colors="lime", linewidths=1)
        handles.append(Line2D([], [], color="lime", lw=1.5, label="ground truth"))
    ax.legend(handles=handles, loc="lower right", fontsize=7, facecolor="grey", framealpha=0.6)
    ax.set_axis_off()
    ax.set_title(title, fontsize=8)
    bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
    bar.set_label("normalised anomaly (0.5 = threshold)", fontsize=7)
    bar.ax.axhline(0.5, color="white", lw=1.5)
    return _png(fig)
