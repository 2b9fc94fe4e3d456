"""The evaluation report: one HTML file that opens offline (figures embedded), and ``metrics.json``.

Sections: the confusion matrix at the shipped threshold (escapes first), per-defect-type metrics, ROC and PR curves,
the score histogram with the threshold, then the worst false rejects and the worst escapes with their overlays. The
worst cases are ranked by **raw** score: the normalised score is clipped at 0 and 1, so every clearly defective part
ties at 1.0 and the weakest defects (the ones closest to escaping) would fall back to file order.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import cv2
import numpy as np

from edgead.data import Color, load_image
from edgead.data.mvtec import GOOD


def overlay(image: np.ndarray, amap: np.ndarray, mask: np.ndarray | None = None, alpha: float = 0.45) -> np.ndarray:
    """Blend a normalised map (0..1, 0.5 = threshold) over an RGB/gray image; outline the true mask in green.

    The quick OpenCV overlay of ``edgead predict --overlay-dir`` (the report draws its own, with a legend).

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


def worst_cases(labels, raw_scores, worst: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the worst false rejects (good parts, highest raw score first) and the worst escapes (defective
    parts, lowest raw score first), ``worst`` of each; equal raw scores keep file order.

    Example:
        >>> fr, esc = worst_cases([0, 0, 1, 1, 1], [0.2, 0.9, 30.0, 16.7, 18.5], 2)
        >>> fr.tolist(), esc.tolist()
        ([1, 0], [3, 4])
    """
    labels = np.asarray(labels).astype(bool)
    raw = np.asarray(raw_scores, np.float64)
    good, bad = np.flatnonzero(~labels), np.flatnonzero(labels)
    return (good[np.argsort(-raw[good], kind="stable")][:worst], bad[np.argsort(raw[bad], kind="stable")][:worst])


def per_type_metrics(result) -> list[dict]:
    """One row per defect type: its images against all good ones (image AUROC on raw scores, pixel AUROC and AUPRO
    on raw maps), with its escapes at the shipped threshold."""
    from edgead.metrics import evaluate

    labels = np.array([s.label for s in result.samples])
    types = np.array([s.defect_type for s in result.samples])
    by_type = result.metrics["confusion"]["by_type"]
    rows = []
    for name in sorted(set(types.tolist()) - {GOOD}):
        sel = (types == name) | (types == GOOD)
        idx = np.flatnonzero(sel)
        masks = [result.masks[i] for i in idx]
        has = result.raw_maps is not None and any(m.any() for m in masks)
        if not (labels[sel] == 0).any():
            m = {}
        else:
            m = evaluate(labels[sel], result.raw_scores[sel], masks if has else None,
                         [result.raw_maps[i] for i in idx] if has else None)
        esc = by_type[name]["escapes"]
        rows.append({"type": name, "n": int((types == name).sum()), "escapes": esc["count"], "escape_rate": esc["rate"],
                     "escape_upper": esc["upper"], "image_auroc": m.get("image_auroc"),
                     "pixel_auroc": m.get("pixel_auroc"), "aupro": m.get("aupro")})
    return rows


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _confusion_html(c: dict) -> str:
    esc, frr = c["escapes"], c["false_rejects"]
    bound = f"{esc['bound']} upper bound, {100 * esc['confidence']:.0f} % confidence"
    return (f'<table class="big"><tr><th></th><th>count</th><th>rate %</th><th>at most % ({bound})</th></tr>'
            f'<tr class="esc"><td>escapes (defective parts accepted)</td><td>{esc["count"]} of {esc["n"]}</td>'
            f'<td>{_pct(esc["rate"])}</td><td>{_pct(esc["upper"])}</td></tr>'
            f'<tr><td>false rejects (good parts rejected)</td><td>{frr["count"]} of {frr["n"]}</td>'
            f'<td>{_pct(frr["rate"])}</td><td>{_pct(frr["upper"])}</td></tr></table>'
            f'<p>true rejects {c["true_reject"]}, true accepts {c["true_accept"]}.</p>')


def _types_html(rows: list[dict]) -> str:
    head = ("<tr><th>defect type</th><th>images</th><th>escapes</th><th>escape rate %</th><th>at most %</th>"
            "<th>image AUROC</th><th>pixel AUROC</th><th>AUPRO</th></tr>")
    body = "".join(f"<tr><td>{html.escape(r['type'])}</td><td>{r['n']}</td><td>{r['escapes']}</td>"
                   f"<td>{_pct(r['escape_rate'])}</td><td>{_pct(r['escape_upper'])}</td><td>{_pct(r['image_auroc'])}"
                   f"</td><td>{_pct(r['pixel_auroc'])}</td><td>{_pct(r['aupro'])}</td></tr>" for r in rows)
    return f"<table>{head}{body}</table>"


def _case_html(result, i: int, color: Color, threshold: float) -> str:
    from edgead.evaluation.figures import overlay_png

    s = result.samples[i]
    verdict = result.verdicts[i].value.upper()  # the station's verdict (edgead.contract.decide)
    title = (f"{Path(s.path).name} ({s.defect_type}): {verdict}\nscore {result.scores[i]:.3f} (0.5 = threshold), "
             f"raw {result.raw_scores[i]:.4g} vs threshold {threshold:.4g}")
    png = overlay_png(load_image(s.path, color), result.maps[i].astype(np.float32),
                      result.masks[i] if s.label else None, title=title)
    caption = html.escape(title).replace("\n", "<br>")
    return f"<figure>{_img(png, Path(s.path).name)}<figcaption>{caption}</figcaption></figure>"


CSS = ("body{font-family:sans-serif;margin:1.5em;max-width:1100px}table{border-collapse:collapse;margin:.5em 0}"
       "td,th{border:1px solid #bbb;padding:.25em .6em;text-align:right}td:first-child{text-align:left}"
       "table.big{font-size:1.15em}tr.esc td{font-weight:bold;background:#fde0dc}figure{display:inline-block;"
       "margin:.3em;width:330px;font-size:.8em}img{max-width:100%}.grid{display:flex;flex-wrap:wrap}")


def write_report(out: Path, result, color: Color, title: str, worst: int = 8) -> Path:
    """Write ``report.html`` (figures embedded as data URIs: one file that opens offline) and ``metrics.json``.

    Args:
        out: the folder to write (created).
        result: the :class:`edgead.evaluation.EvalResult`, with ``metrics["threshold"]`` (raw).
        color: how to load the images for the overlays.
        title: the page title.
        worst: how many worst false rejects and escapes to show.

    Returns:
        The path of ``report.html``.

    Raises:
        MissingExtraError: without matplotlib (extra ``train``).
    """
    from edgead.evaluation.figures import histogram_png, roc_pr_png

    out.mkdir(parents=True, exist_ok=True)
    m = result.metrics
    threshold = float(m["threshold"])
    labels = np.array([s.label for s in result.samples])
    rows = per_type_metrics(result)
    false_rejects, escapes = worst_cases(labels, result.raw_scores, worst)
    summary = "".join(f"<tr><td>{k}</td><td>{_pct(m.get(k))}</td></tr>" for k in
                      ("image_auroc", "pixel_auroc", "aupro", "f1_max", "ap"))
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>",
        f"<p>model {html.escape(str(m.get('model_hash', ''))[:12])}, raw image threshold {threshold:.5g}, "
        f"{m['n_good']} good and {m['n_defective']} defective test images.</p>",
        "<h2>At the shipped threshold</h2>", _confusion_html(m["confusion"]),
        "<h2>Per defect type</h2>", _types_html(rows),
        "<h2>Threshold-free metrics (%)</h2><table>", summary, "</table>",
        _img(roc_pr_png(labels, result.raw_scores, threshold), "ROC and PR curves"),
        _img(histogram_png(labels, result.raw_scores, threshold), "score histogram"),
        "<h2>Worst escapes (defective parts, lowest raw score first)</h2><div class='grid'>",
        *(_case_html(result, i, color, threshold) for i in escapes), "</div>",
        "<h2>Worst false rejects (good parts, highest raw score first)</h2><div class='grid'>",
        *(_case_html(result, i, color, threshold) for i in false_rejects), "</div>",
        "</body></html>",
    ]
    page = out / "report.html"
    page.write_text("\n".join(parts))
    (out / "metrics.json").write_text(json.dumps({**m, "per_type": rows}, indent=2, default=float) + "\n")
    return page
