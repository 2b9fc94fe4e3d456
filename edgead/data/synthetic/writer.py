"""Write synthetic stations to disk: an MVTec-layout dataset, or a replay folder of raw captures.

Every image is drawn from its own generator seeded by ``(seed, split, index)``, so a dataset is reproducible and
asking for more images does not change the ones already there.

Example:
    >>> root = generate_dataset("/tmp/bracket", StationSpec(), n_train=60)     # doctest: +SKIP
    >>> scan_category(root).median_hw                                          # doctest: +SKIP
    (256, 320)
"""
from __future__ import annotations

import dataclasses
import json
import os
from enum import Enum
from pathlib import Path

import numpy as np

from edgead.data.images import IMAGE_SUFFIXES, write_image
from edgead.data.mvtec import GOOD
from edgead.data.synthetic.spec import DefectType, Pose, StationSpec, random_pose
from edgead.data.synthetic.station import reference_image, render_part
from edgead.errors import DataError

TRUTH_FORMAT = "edgead-synthetic/1"


class _Split(int, Enum):
    """Seed component of each split, so that splits never share random streams."""

    TRAIN = 0
    TEST_GOOD = 1
    TEST_DEFECT = 2
    CAPTURE = 3


def _rng(seed: int, split: _Split, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, int(split), index])


def _prepare(out_dir: str | os.PathLike) -> Path:
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"output folder {str(out)!r} exists and is not empty",
                        hint="choose a new folder or delete this one; stale images would mix into the data")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _spec_dict(spec: StationSpec) -> dict:
    raw = dataclasses.asdict(spec)
    raw["color"] = spec.color.value
    raw["defect_types"] = [t.value for t in spec.defect_types]
    return raw


def _write_mask(path: Path, mask: np.ndarray) -> None:
    write_image(path, (mask.astype(np.uint8) * 255)[:, :, None])


def generate_dataset(out_dir: str | os.PathLike, spec: StationSpec = StationSpec(), n_train: int = 60,
                     n_test_good: int = 20, n_test_defect: int = 20, seed: int = 0, aligned: bool = True,
                     suffix: str = ".png") -> Path:
    """Write a dataset in the MVTec AD layout, plus ``reference.png`` and ``truth.json``.

    Defective test images cycle through ``spec.defect_types``. ``truth.json`` lists, per image, its relative
    path, label, defect type, pose and mask path.

    Args:
        out_dir: a new or empty folder.
        spec: the station.
        n_train: good training images.
        n_test_good: good test images.
        n_test_defect: defective test images (with masks in ``ground_truth``).
        seed: the dataset's seed.
        aligned: True: poses are the residual of an aligner (<= 0.5 px); False: raw misaligned captures.
        suffix: image format, one of ``.png .jpg .jpeg .bmp`` (masks are always PNG).

    Returns:
        The dataset root.

    Raises:
        DataError: if the folder is not empty, a count is negative or ``n_train`` is 0, or the suffix is unknown.
    """
    if n_train < 1 or n_test_good < 0 or n_test_defect < 0 or suffix.lower() not in IMAGE_SUFFIXES:
        raise DataError(f"cannot generate n_train={n_train}, n_test_good={n_test_good}, "
                        f"n_test_defect={n_test_defect}, suffix={suffix!r}",
                        hint=f"n_train >= 1, other counts >= 0, suffix one of {', '.join(IMAGE_SUFFIXES)}")
    root = _prepare(out_dir)
    width = max(3, len(str(max(n_train, n_test_good, n_test_defect))))
    records: list[dict] = []

    def emit(rel: str, split: _Split, index: int, defect: DefectType | None, mask_rel: str | None) -> None:
        rng = _rng(seed, split, index)
        pose = random_pose(spec, rng, aligned=aligned)
        image, mask = render_part(spec, pose, defect, rng)
        write_image(root / rel, image)
        if mask_rel is not None:
            _write_mask(root / mask_rel, mask)
        records.append({"path": rel, "label": int(defect is not None),
                        "defect_type": defect.value if defect else GOOD, "pose": pose.to_dict(), "mask": mask_rel})

    for i in range(n_train):
        emit(f"train/{GOOD}/{i:0{width}d}{suffix}", _Split.TRAIN, i, None, None)
    for i in range(n_test_good):
        emit(f"test/{GOOD}/{i:0{width}d}{suffix}", _Split.TEST_GOOD, i, None, None)
    counts = {t: 0 for t in spec.defect_types}
    for i in range(n_test_defect):
        kind = spec.defect_types[i % len(spec.defect_types)]
        stem = f"{counts[kind]:0{width}d}"
        counts[kind] += 1
        emit(f"test/{kind.value}/{stem}{suffix}", _Split.TEST_DEFECT, i, kind,
             f"ground_truth/{kind.value}/{stem}_mask.png")
    write_image(root / "reference.png", reference_image(spec))
    truth = {"format": TRUTH_FORMAT, "spec": _spec_dict(spec), "seed": seed, "aligned": aligned,
             "reference": "reference.png", "images": records}
    (root / "truth.json").write_text(json.dumps(truth, indent=1))
    return root


def generate_captures(out_dir: str | os.PathLike, spec: StationSpec = StationSpec(), n: int = 100,
                      defect_rate: float = 0.3, seed: int = 0, lighting_trend: float = 0.0) -> Path:
    """Write a replay folder of raw (misaligned) captures for the ``folder://`` camera.

    Files are ``000000.png``, ``000001.png``, ...; defect masks go to ``masks/<stem>_mask.png``; ``truth.json``
    maps each file to its label, defect type, pose, mask and part id. Only captures lie at the top level (no
    reference image: use :func:`reference_image` with the same spec).

    Args:
        out_dir: a new or empty folder.
        spec: the station.
        n: number of captures.
        defect_rate: probability that a part is defective (types drawn uniformly from ``spec.defect_types``).
        seed: the run's seed.
        lighting_trend: the illumination drifts linearly over the run, from its level at the first capture to
            ``1 + lighting_trend`` times it at the last (-0.4: a lamp dimming to 60 %); 0 keeps it steady. The
            drift alarms' test replays such a run.

    Returns:
        The folder.

    Raises:
        DataError: if the folder is not empty, ``n < 1``, ``defect_rate`` is outside [0, 1] or ``lighting_trend``
            outside (-1, 1].
    """
    if not -1.0 < lighting_trend <= 1.0:
        raise DataError(f"lighting_trend={lighting_trend} is outside (-1, 1]", hint="e.g. -0.4: a lamp dimming to 60 %")
    if n < 1 or not 0.0 <= defect_rate <= 1.0:
        raise DataError(f"cannot generate n={n} captures with defect_rate={defect_rate}",
                        hint="n >= 1 and 0 <= defect_rate <= 1")
    root = _prepare(out_dir)
    files: dict[str, dict] = {}
    for i in range(n):
        rng = _rng(seed, _Split.CAPTURE, i)
        defect = (spec.defect_types[int(rng.integers(len(spec.defect_types)))]
                  if rng.random() < defect_rate else None)
        pose = random_pose(spec, rng, aligned=False)
        light = 1.0 + lighting_trend * (i / (n - 1) if n > 1 else 0.0)
        image, mask = render_part(spec, pose, defect, rng, light)
        name = f"{i:06d}.png"
        write_image(root / name, image)
        mask_rel = None
        if defect is not None:
            mask_rel = f"masks/{i:06d}_mask.png"
            _write_mask(root / mask_rel, mask)
        files[name] = {"label": int(defect is not None), "defect_type": defect.value if defect else GOOD,
                       "pose": pose.to_dict(), "mask": mask_rel, "part_id": f"S{seed}-{i:06d}"}
    truth = {"format": TRUTH_FORMAT, "spec": _spec_dict(spec), "seed": seed, "defect_rate": defect_rate,
             "lighting_trend": lighting_trend, "files": files}
    (root / "truth.json").write_text(json.dumps(truth, indent=1))
    return root


def pose_of(record: dict) -> Pose:
    """The :class:`Pose` of a ``truth.json`` record."""
    return Pose(**record["pose"])
