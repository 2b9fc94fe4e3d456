"""The bundle's metadata (``edgead.yaml``) as one frozen, typed :class:`BundleMeta`, parsed and validated once
(its sections: :mod:`edgead.contract.sections`).

:func:`edgead.bundle.load_bundle` parses it; every reader uses its attributes (``bundle.meta.input.color``,
``bundle.meta.calibration.image.thr``), never the YAML mapping. Writers give :func:`edgead.bundle.write_bundle`
a ``BundleMeta`` or a mapping, which is parsed the same way before anything is written. Sections and keys this
edgead does not know are kept (``extra``) and written back unchanged. The keys: docs/bundle-format.md.

Example:
    >>> meta = BundleMeta.from_dict({"format_version": 1, "model": {"type": "patchcore", "params": {}},
    ...     "input": {"height": 64, "width": 96, "channels": 1},
    ...     "thresholds": {"image": 2.0, "pixel": None, "method": "frr"}, "normalisation": {"image_lo": 1.0}})
    >>> meta.input.color.value, meta.input.spec, meta.calibration.image.thr
    ('gray', InputSpec(height=64, width=96, channels=1), 2.0)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from edgead.contract.graph import Color, Precision
from edgead.contract.integrity import ArrayRecord, Geometry, parse_arrays
from edgead.contract.layout import Layout
from edgead.contract.sections import (Conversion, InputInfo, ModelInfo, Preprocessing, Reader, Replay, Task,
                                      Training)
from edgead.contract.thresholds import Calibration
from edgead.errors import BundleError, CalibrationError

FORMAT_VERSION = 1
META = "edgead.yaml"


def _calibration(r: Reader) -> Calibration:
    r.used.update(("thresholds", "normalisation"))
    try:
        return Calibration.from_dict(r.data)
    except CalibrationError as exc:
        raise BundleError(f"{r.where}: {exc.message}", hint=exc.hint) from exc


@dataclass(frozen=True)
class BundleMeta:
    """The whole ``edgead.yaml``.

    Attributes:
        format_version: the bundle format (``FORMAT_VERSION``).
        model: the model type and parameters.
        input: the graph input.
        calibration: ``thresholds`` and ``normalisation`` (raw units; normalised 0.5 == threshold).
        preprocessing: the graph's resize and normalisation (None in hand-made bundles).
        edgead_version, created_utc: who wrote it, when.
        backbone: ``{name, weights_sha256, ...}`` as written (None when absent).
        training: what the model was fitted on (None when absent).
        metrics: test-split metrics at training time (None when there was no test split).
        tasks: the tasks learnt (after ``edgead update``; empty: one task, ``training``).
        replay: the replay buffer (after ``edgead update``).
        conversion: set by ``edgead convert``.
        geometry: the reference and image size the model was trained for (None: not recorded).
        layout: how frames and ROIs reach the model (orientation, native-resolution tiles); the plain layout for a
            bundle without the section.
        arrays: each ``.npz`` file's array count and bytes (set by ``write_bundle``; the caps of its loading).
        extra: top-level sections this edgead does not know, kept as written.
    """

    model: ModelInfo
    input: InputInfo
    calibration: Calibration
    format_version: int = FORMAT_VERSION
    preprocessing: Preprocessing | None = None
    edgead_version: str | None = None
    created_utc: str | None = None
    backbone: Mapping[str, Any] | None = None
    training: Training | None = None
    metrics: Mapping[str, Any] | None = None
    tasks: tuple[Task, ...] = ()
    replay: Replay | None = None
    conversion: Conversion | None = None
    geometry: Geometry | None = None
    layout: Layout = Layout()
    arrays: Mapping[str, ArrayRecord] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def color(self) -> Color:
        """The colour mode images are loaded in (``input.color``)."""
        return self.input.color

    @property
    def precision(self) -> Precision:
        """The graph's precision: the conversion's, FP32 for a bundle that was not converted."""
        return self.conversion.precision if self.conversion is not None else Precision.FP32

    @classmethod
    def from_dict(cls, data: Mapping, where: str = META) -> "BundleMeta":
        """Parse and validate the YAML mapping.

        Raises:
            BundleError: naming the section and key that is missing or invalid.
        """
        r = Reader(data, where)
        tasks = r.get("tasks", list, [])
        meta = cls(
            model=ModelInfo.parse(r.section("model")),
            input=InputInfo.parse(r.section("input")),
            calibration=_calibration(r),
            format_version=r.get("format_version", int, FORMAT_VERSION),
            preprocessing=r.optional("preprocessing", Preprocessing.parse),
            edgead_version=r.get("edgead_version", str, None),
            created_utc=r.get("created_utc", str, None),
            backbone=r.get("backbone", dict, None),
            training=r.optional("training", Training.parse),
            metrics=r.get("metrics", dict, None),
            tasks=tuple(Task.parse(Reader(t, f"{where}.tasks[{i}]")) for i, t in enumerate(tasks)),
            replay=r.optional("replay", Replay.parse),
            conversion=r.optional("conversion", Conversion.parse),
            geometry=r.optional("geometry", Geometry.parse),
            layout=Layout.parse(r.get("layout", lambda v: v, None), f"{where}.layout"),
            arrays=r.optional("arrays", parse_arrays) or {},
        )
        return dataclasses.replace(meta, extra=r.rest())

    def to_dict(self) -> dict:
        """The YAML mapping (plain types), sections in the order of docs/bundle-format.md."""
        out: dict[str, Any] = {"format_version": self.format_version}
        for key in ("edgead_version", "created_utc"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["model"] = self.model.to_dict()
        if self.backbone is not None:
            out["backbone"] = dict(self.backbone)
        out["input"] = self.input.to_dict()
        if self.preprocessing is not None:
            out["preprocessing"] = self.preprocessing.to_dict()
        out.update(self.calibration.to_dict())
        if not self.layout.is_plain:
            out["layout"] = self.layout.to_dict()
        for key in ("training", "metrics", "tasks", "replay", "conversion", "geometry"):
            value = getattr(self, key)
            if key == "tasks":
                if value:
                    out["tasks"] = [t.to_dict() for t in value]
            elif value is not None:
                out[key] = value.to_dict() if hasattr(value, "to_dict") else dict(value)
        if self.arrays:
            out["arrays"] = {name: rec.to_dict() for name, rec in self.arrays.items()}
        out.update(self.extra)
        return out

    def replace(self, **changes) -> "BundleMeta":
        """A copy with these attributes changed (``meta.replace(calibration=new)``)."""
        return dataclasses.replace(self, **changes)
