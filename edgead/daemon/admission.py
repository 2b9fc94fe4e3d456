"""What a station admits: the bundle (hashes, names inside it), signed by a trusted key or pinned, with its reference
and ROIs matching the geometry the bundle was trained for.

:func:`admit` is the one gate. ``edgead check`` (:func:`edgead.daemon.preflight.check_station`), ``edgead run`` and
a SIGHUP reload (:func:`edgead.daemon.model.load_model`) and the deploy self-test on the station all go through it,
so each refuses the same bundles with the same messages.

Example:
    >>> a = admit(load_station("station.yaml"))                  # doctest: +SKIP
    >>> a.trust.note(), a.notes                                  # doctest: +SKIP
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from edgead.align.roi import Roi, check_rois
from edgead.bundle import Bundle, load_bundle
from edgead.bundle.geometry import geometry_problems
from edgead.bundle.signing import read_public_key
from edgead.bundle.trust import TrustPolicy, TrustReport, check_trust
from edgead.daemon.config import GeometryCheck, StationConfig
from edgead.contract.graph import Color
from edgead.data import load_image
from edgead.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class Admission:
    """An admitted bundle with the station's reference (in the bundle's colour mode) and checked ROIs.

    Attributes:
        bundle: the verified bundle.
        trust: how it was admitted (key id, or the ``allow_unsigned`` warning).
        color: the bundle's colour mode.
        reference: the station's reference image, or None.
        rois: the station's ROIs, checked against the reference.
        notes: lines for ``edgead check``.
        warnings: what the operator must see at start (``allow_unsigned``, a ``geometry_check: warn`` override).
        aligner: the :class:`~edgead.align.Aligner` that ``check`` built on the reference, handed on to the loaded
            model so that start-up builds it once.
    """

    bundle: Bundle
    trust: TrustReport
    color: Color
    reference: np.ndarray | None = None
    rois: list[Roi] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    aligner: object | None = None


def trust_policy(cfg: StationConfig) -> TrustPolicy:
    """The ``security`` section as a :class:`TrustPolicy` (key files relative to the config file).

    Raises:
        ConfigError: naming ``security.trusted_keys[i]`` when a key cannot be read or parsed.
    """
    base = cfg.source.parent if cfg.source else None
    keys = tuple(read_public_key(k, base, where=f"security.trusted_keys[{i}]")
                 for i, k in enumerate(cfg.security.trusted_keys))
    return TrustPolicy(keys, cfg.security.allow_unsigned, cfg.security.model_sha256)


def admit(cfg: StationConfig) -> Admission:
    """Load and verify the station's bundle, check its trust, reference, ROIs and geometry.

    Returns:
        The :class:`Admission`.

    Raises:
        ConfigError: no bundle or reference file, bad keys, ROIs without a reference, or (``geometry_check:
            enforce``) a reference or ROI that does not match the bundle, naming both.
        BundleError / TrustError: a bundle that is tampered with, escapes its folder, is unsigned or signed by an
            unknown key (naming the key id), or is not the pinned model.
        ImageError: an unreadable reference.
    """
    if not cfg.model.bundle.exists():
        raise ConfigError(f"model.bundle: {cfg.model.bundle} does not exist", hint="train or copy a bundle there")
    bundle = load_bundle(cfg.model.bundle)
    trust = check_trust(bundle, trust_policy(cfg))
    color = bundle.meta.color
    adm = Admission(bundle, trust, color)
    adm.notes.append(f"model {bundle.model_type} {bundle.model_hash[:12]} from {cfg.model.bundle}: {trust.note()}")
    if trust.warning:
        adm.warnings.append(trust.warning)
    if cfg.reference is not None:
        if not cfg.reference.is_file():
            raise ConfigError(f"reference: {cfg.reference} does not exist", hint="save an image of a good part there")
        adm.reference = load_image(cfg.reference, color, max_px=cfg.camera.max_image_px)
        adm.rois = check_rois([Roi(r.name, r.x, r.y, r.width, r.height) for r in cfg.rois], adm.reference.shape)
        adm.notes.append(f"reference {cfg.reference.name} {adm.reference.shape[1]}x{adm.reference.shape[0]}, "
                         f"{len(cfg.rois) or 1} ROI(s)")
    elif cfg.rois:
        raise ConfigError("rois: ROIs need a reference image (reference: PATH)")
    _check_geometry(cfg, adm)
    return adm


def _check_geometry(cfg: StationConfig, adm: Admission) -> None:
    record = adm.bundle.meta.geometry
    if record is None:
        adm.notes.append("geometry: the bundle records none (trained before edgead recorded it); reference and "
                         "ROIs not compared")
        return
    inputs = [(f"ROI {r.name!r}", r.height, r.width) for r in adm.rois]
    if not inputs and adm.reference is not None:
        inputs = [("the aligned frame (no ROIs: the reference's size)", *adm.reference.shape[:2])]
    problems = geometry_problems(record, adm.reference, str(cfg.reference), inputs)
    if not problems:
        adm.notes.append("geometry: reference and ROIs match the bundle" if adm.reference is not None else
                         "geometry: no reference on this station; frames are judged as captured")
        return
    text = "; ".join(problems)
    if cfg.model.geometry_check is GeometryCheck.ENFORCE:
        raise ConfigError(f"model.bundle {cfg.model.bundle} was not trained for this station: {text}",
                          hint="deploy the bundle trained for this reference and these ROIs, or set "
                               "model.geometry_check: warn to run it anyway (docs/bundle-format.md)")
    adm.warnings.append(f"model.geometry_check is warn: running a bundle not trained for this station: {text}")
