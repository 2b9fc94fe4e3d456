"""Write docs/images/operator-page.jpg: a synthetic station run (with a shadow model), a few labels, the page.

Usage: .venv/bin/python scripts/ui_screenshot.py [OUT.png|OUT.jpg]

Trains a small PaDiM on the synthetic station, runs the daemon on replayed parts (every image archived, a stricter
copy of the bundle as shadow, its metrics endpoint on), labels a part, starts ``edgead ui`` on a free loopback port
while the daemon runs and renders the page with scripts/render_page.sh (headless Chromium), as the operator-page
test does.
"""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    from edgead.align.dataset import align_dataset
    from edgead.cli import main as cli
    from edgead.daemon.config import load_station
    from edgead.daemon.runner import Runner
    from edgead.data.synthetic import StationSpec, generate_captures, generate_dataset
    from edgead.records import RecordStore
    from edgead.records.labels import add_label
    from edgead.train.pipeline import TrainConfig, train
    from edgead.verdict import Verdict

    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "images" / "operator-page.jpg").resolve()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = StationSpec(height=192, width=240, max_shift_px=8.0, max_rotation_deg=2.0)
        raw = generate_dataset(tmp / "raw", spec, n_train=30, n_test_good=6, n_test_defect=6, aligned=False)
        align_dataset(raw, tmp / "aligned", raw / "reference.png")
        bundle = train(tmp / "aligned", tmp / "bundle", TrainConfig(model="padim", image_size=240, seed=0),
                       progress=False).bundle
        assert cli(["threshold", "--bundle", str(bundle.root), "--image-threshold",
                    str(bundle.meta.calibration.image.thr * 0.9), "--out", str(tmp / "candidate")]) == 0
        captures = generate_captures(tmp / "captures", spec, n=40, defect_rate=0.3, seed=3)
        subprocess.run([sys.executable, "-m", "edgead", "ui-passwd", str(tmp / "ops"), "anna"], input="pw\n",
                       text=True, check=True)
        cfg = {"name": "line-7 bracket", "trigger": "camera",
               "camera": {"url": f"folder://{captures}?fps=8&loop=1&pattern=*.png"},
               "reference": str(raw / "reference.png"), "model": {"bundle": str(bundle.root)},
               "plc": {"url": "loop://", "protocol": "discrete"},
               "storage": {"database": str(tmp / "records.sqlite"), "images_dir": str(tmp / "images"),
                           "save_images": "all"},
               "observe": {"metrics_listen": f"127.0.0.1:{free_port()}"}, "security": {"allow_unsigned": True},
               "shadow": {"bundle": str(tmp / "candidate"), "cpu_budget_pct": 100},
               "ui": {"operators_file": str(tmp / "ops")}}
        path = tmp / "station.yaml"
        path.write_text(yaml.safe_dump(cfg))
        seen = []
        runner = Runner(load_station(path), on_part=seen.append)
        thread = threading.Thread(target=runner.run, daemon=True)
        thread.start()
        while len(seen) < 60:
            time.sleep(0.2)
        with RecordStore(tmp / "records.sqlite") as store:
            rejects = [o for o in seen if o.verdict is Verdict.REJECT]
            if rejects:
                add_label(store, rejects[0].row_id, "good", who="anna", note="dust on the lens")
        ui = subprocess.Popen([sys.executable, "-m", "edgead", "ui", str(path), "--listen", "127.0.0.1:0"],
                              stderr=subprocess.PIPE, text=True)
        try:
            url = re.search(r"http://127\.0\.0\.1:\d+/", ui.stderr.readline()).group(0)
            png = tmp / "page.png"
            subprocess.run(["bash", str(ROOT / "scripts" / "render_page.sh"), url + "?live=0", str(png), "1280x1250",
                            "3000"], check=True, timeout=120)
            import cv2

            cv2.imwrite(str(out), cv2.imread(str(png)), [cv2.IMWRITE_JPEG_QUALITY, 82])  # a third of the PNG
        finally:
            ui.terminate()
            ui.wait(timeout=20)
            runner.stop.set()
            thread.join(timeout=60)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
