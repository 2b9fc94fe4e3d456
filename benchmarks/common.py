"""Shared helpers of the benchmark scripts: dataset discovery, timing statistics, docs section updates."""
from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("EDGEAD_DATASETS", ROOT.parent / "shared" / "datasets"))
DOC = ROOT / "docs" / "benchmarks.md"


def categories(names: list[str] | None = None) -> list[Path]:
    """The real categories under ../shared/datasets (all, or those named), sorted."""
    if not DATASETS.is_dir():
        raise SystemExit(f"no datasets at {DATASETS}: set EDGEAD_DATASETS or check out ../shared")
    found = sorted(p for p in DATASETS.iterdir() if (p / "train" / "good").is_dir())
    if names:
        found = [p for p in found if p.name in names]
    return found


def stats_ms(samples_s: list[float] | np.ndarray) -> dict:
    """Median and p99 in ms of a list of seconds."""
    a = np.asarray(samples_s, np.float64) * 1e3
    return {"median_ms": float(np.median(a)), "p99_ms": float(np.percentile(a, 99)), "n": int(a.size)}


def machine() -> str:
    """One line describing where the numbers were taken."""
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def update_section(name: str, body: str) -> None:
    """Replace ``<!-- BEGIN name -->...<!-- END name -->`` in docs/benchmarks.md (append if absent)."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    block = f"<!-- BEGIN {name} -->\n{body.rstrip()}\n<!-- END {name} -->"
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)


def save_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=float) + "\n")


def merge_rows(path: Path, rows: list[dict], key: tuple[str, ...], field: str = "rows") -> list[dict]:
    """The rows of earlier runs (``path``'s ``field``) not re-measured now, then the new ones, matched on ``key``:
    runs of different models, categories or strategies (a slow model on fewer categories) build one table. A key
    missing from a row (a field added later) matches ``None``."""
    new = {tuple(r.get(k) for k in key) for r in rows}
    old = json.loads(path.read_text()).get(field, []) if path.is_file() else []
    return [r for r in old if tuple(r.get(k) for k in key) not in new] + rows


def subset_category(root: Path, max_train: int | None, work: Path, seed: int = 0) -> Path:
    """``root`` itself, or a copy of its layout under ``work`` whose train/good is a seeded subset of ``max_train``.

    The subset links the chosen images and the whole ``test``/``ground_truth`` folders (symlinks, nothing copied),
    so evaluation runs on the same fixed test split.
    """
    good = sorted(p for p in (root / "train" / "good").iterdir() if p.is_file())
    if not max_train or len(good) <= max_train:
        return root
    keep = np.sort(np.random.default_rng(seed).choice(len(good), size=max_train, replace=False))
    out = work / f"{root.name}-train{max_train}-seed{seed}"
    (out / "train" / "good").mkdir(parents=True, exist_ok=True)
    for i in keep:
        link = out / "train" / "good" / good[i].name
        if not link.exists():
            link.symlink_to(good[i].resolve())
    for name in ("test", "ground_truth"):
        if (root / name).is_dir() and not (out / name).exists():
            (out / name).symlink_to((root / name).resolve(), target_is_directory=True)
    return out


def onnx_parameter_counts(onnx_path: Path, buffers: dict[str, np.ndarray]) -> dict:
    """Floating-point values stored in an ONNX graph, split into fitted data and weights.

    Counts every float initializer and ``Constant`` node value. A tensor is ``bank`` when it holds the same
    values (in any order or layout) as one of ``buffers``, the model's registered torch buffers without batch-norm
    running statistics: memory banks, Gaussian means and inverse covariances, kNN banks, feature statistics (and
    the fixed smoothing/pooling constants, a few hundred values). Everything else is ``weights`` (trained or
    pretrained, the frozen backbone included, batch norm folded in). A buffer stored twice (e.g. a bank and its
    transpose) counts twice: it is what the graph holds.

    Returns:
        ``{"weights": int, "bank": int}``.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    tensors = list(model.graph.initializer)
    tensors += [a.t for n in model.graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    by_size: dict[int, list[np.ndarray]] = {}
    for b in buffers.values():
        if np.issubdtype(b.dtype, np.floating) and b.size > 1:
            by_size.setdefault(b.size, []).append(np.sort(b.astype(np.float32).ravel()))
    counts = {"weights": 0, "bank": 0}
    for t in tensors:
        arr = numpy_helper.to_array(t)
        if not np.issubdtype(arr.dtype, np.floating):
            continue
        flat = np.sort(arr.astype(np.float32).ravel())
        is_bank = any(np.allclose(flat, b, rtol=1e-5, atol=1e-6) for b in by_size.get(arr.size, ()))
        counts["bank" if is_bank else "weights"] += int(arr.size)
    return counts


def calibration_list(data: Path, max_n: int, work: Path, seed: int = 0) -> Path:
    """A ``.txt`` list of at most ``max_n`` good training images (seeded; 0: all), for ``convert --calib``."""
    good = sorted(p for p in (data / "train" / "good").iterdir() if p.is_file())
    if max_n and len(good) > max_n:
        good = [good[i] for i in np.sort(np.random.default_rng(seed).choice(len(good), max_n, replace=False))]
    out = work / f"calib-{data.name}.txt"
    out.write_text("".join(f"{p.resolve()}\n" for p in good))
    return out


def model_overrides(model: str, overrides: dict) -> dict:
    """The ``--set KEY=VALUE`` overrides that ``model`` has as parameters (the others leave it at its defaults)."""
    from edgead.models.registry import get_spec

    return {k: v for k, v in overrides.items() if k in get_spec(model).defaults}


def start_daemon(config: Path, tmp: Path, timeout_s: float = 600.0):
    """``python -m edgead run CONFIG`` in its own process (as under systemd), returned once it said READY=1 on its
    own sd_notify socket: ``(process, notify socket, log path)``; the daemon's stderr goes to the log.

    Raises:
        SystemExit: the daemon exited or did not get ready within ``timeout_s``, with the end of its log.
    """
    import socket
    import subprocess
    import sys
    import time

    sock_path = tmp / f"notify-{config.stem}.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(1.0)
    log = tmp / f"{config.stem}.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "edgead", "run", str(config)],
                                env=dict(os.environ, NOTIFY_SOCKET=str(sock_path)), stdout=subprocess.DEVNULL,
                                stderr=err)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if "READY=1" in sock.recv(4096).decode():
                return proc, sock, log
        except socket.timeout:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_daemon(proc)
                sock.close()
                raise SystemExit(f"{config.stem}: the daemon did not start (rc {proc.poll()}): "
                                 f"{log.read_text()[-2000:]}")


def stop_daemon(proc) -> None:
    """SIGCONT (a held daemon), then SIGTERM and up to 120 s for a clean stop, then SIGKILL."""
    import signal
    import subprocess

    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
