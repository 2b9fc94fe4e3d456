"""``edgead update``: extend a bundle with a new task (variant) and write a new bundle (pure API; the CLI calls this).

Steps: load the bundle and rebuild its model from the state -> scan the new data (colour and aspect must match the
bundle) -> hold out good validation images -> apply the strategy (``strategies.STRATEGIES``) -> add the task to the
replay buffer (old tasks shrink to their share) -> recalibrate the threshold on the validation images of **all**
tasks (the target false-reject rate then holds over their union) -> write with ``write_trained_bundle`` (the
``tasks`` and ``replay`` sections, ``replay.npz`` and the strategy's files).

A bundle from ``edgead train`` has no replay buffer yet: the first update rebuilds the first task's fit/validation
split from ``training.data`` (same seed and counts as training), so that folder must still exist then.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from edgead.bundle import Bundle, check_output, load_bundle
from edgead.bundle.arrays import caps_for
from edgead.bundle.signing import KeySource
from edgead.continual.context import UpdateContext, UpdateOptions
from edgead.continual.history import Task, now_utc, task_history, unique_name
from edgead.continual.replay import REPLAY_FILE, VAL_PER_TASK, ReplayBuffer
from edgead.continual.strategies import STRATEGIES, USES_REPLAY, Strategy, resolve_strategy
from edgead.data import Color, fingerprint, load_image, scan_category
from edgead.errors import BundleError, ConfigError, DataError

log = logging.getLogger(__name__)
DEFAULT_REPLAY = 32  # replay images over all tasks when a replay strategy is used and no budget is given
ASPECT_TOLERANCE = 0.05


@dataclass(frozen=True)
class UpdateResult:
    """What :func:`update_bundle_with_task` produced.

    Attributes:
        bundle: the new bundle.
        strategy: the strategy used.
        task: the added task.
        replay: the replay buffer summary (counts and bytes).
        info: the strategy's facts (e.g. bank sizes).
        seconds: wall time.
    """

    bundle: Bundle
    strategy: Strategy
    task: Task
    replay: dict
    info: dict
    seconds: float


def refuse_converted(src: Bundle) -> None:
    """A converted bundle (INT8, FP16, an engine target) is not updated: its graph is not the one its model state
    was exported to, and the new bundle would silently drop the conversion and its accuracy gate.

    Raises:
        BundleError: naming the conversion and the FP32 bundle to update instead.
    """
    conv = src.meta.conversion
    if conv is None:
        return
    target, precision = conv.target, conv.precision.value
    source = conv.source_bundle_sha256[:12]
    raise BundleError(f"bundle {src.root} is converted ({precision} for {target}); update refuses it: the new task "
                      "would be learnt on the FP32 model and the conversion dropped without its accuracy gate",
                      hint=f"update the FP32 bundle it was converted from (model hash {source}), then convert the "
                           f"result again: edgead convert --bundle NEW --target {target} --precision {precision} ...")


def update_bundle_with_task(bundle: str | os.PathLike | Bundle, data_dir: str | os.PathLike,
                            out: str | os.PathLike, *, strategy: str | Strategy | None = None,
                            replay: int | None = None, name: str | None = None, val_fraction: float = 0.2,
                            val_per_task: int = VAL_PER_TASK, target_frr: float | None = None,
                            options: UpdateOptions = UpdateOptions(), force: bool = False,
                            sign_key: KeySource | None = None) -> UpdateResult:
    """Extend ``bundle`` with the task in ``data_dir`` and write the result to ``out``.

    Args:
        bundle: the bundle (directory, archive or loaded :class:`Bundle`).
        data_dir: the new task, MVTec layout (``train/good`` required).
        out: the bundle directory to write.
        strategy: a :class:`Strategy` value allowed for the model type (default: the model's default).
        replay: total replay images over all tasks (default: 32 for ``replay``, else the current count).
        name: the task's name (default: the data folder's name).
        val_fraction: share of the new task's good images held out for the threshold.
        val_per_task: held-out images kept per task in the buffer.
        target_frr: target false-reject rate (default: the bundle's).
        options: the strategy options (:class:`UpdateOptions`).
        force: replace an existing bundle at ``out``.
        sign_key: Ed25519 private key (or its file) to sign the new bundle with (None: unsigned).

    Returns:
        The :class:`UpdateResult`.

    Raises:
        ConfigError: unknown strategy for the model type, negative budget.
        DataError: the new data does not fit the bundle (colour, aspect), too few images, first task's data gone.
        BundleError: the bundle is unreadable, has no model state, or is a converted bundle.
        OutputError: ``out`` exists (without ``force``).
    """
    t0 = time.perf_counter()
    from edgead.models.export import Preprocess
    from edgead.models.registry import from_state
    from edgead.train.pipeline import holdout_split, validation_count, write_trained_bundle

    src = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    refuse_converted(src)
    check_output(out, force=force)
    model_type = src.model_type
    chosen = resolve_strategy(model_type, strategy)
    history = task_history(src.meta)
    color = src.meta.color
    budget = _budget(replay, chosen, src)
    old_buffer = _load_buffer(src, history, color, val_per_task, budget)
    category = _check_data(data_dir, color, old_buffer)
    images = [load_image(s.path, color) for s in category.train]
    fit_idx, val_idx = holdout_split(len(images), validation_count(len(images), val_fraction), options.seed)
    fit_images, val_images = [images[i] for i in fit_idx], [images[i] for i in val_idx]

    state = src.load_arrays("state.npz")  # headers checked against the caps in the bundle's metadata first
    model = from_state(model_type, src.meta.model.params, state)
    if src.meta.preprocessing is None:
        raise BundleError(f"bundle {src.root}: edgead.yaml has no preprocessing section",
                          hint="extend only bundles written by `edgead train` or `edgead update`")
    pre = Preprocess(model.input_hw, src.meta.preprocessing.mean, src.meta.preprocessing.std, color.channels)
    ctx = UpdateContext(bundle=src, model_type=model_type, model=model, preprocess=pre, fit_images=fit_images,
                        old_buffer=old_buffer, options=options)
    log.info("update %s with %s (%d fit, %d validation images), strategy %s", src.root, category.name,
             len(fit_images), len(val_images), chosen.value)
    outcome = STRATEGIES[chosen](ctx)
    buffer = old_buffer.add_task(fit_images, val_images, budget=budget, val_per_task=val_per_task,
                                 seed=options.seed)
    cal_images = ([im for arr in buffer.validation for im in arr] if outcome.calibrate_on_all
                  else list(buffer.validation[-1]))
    task = Task(name=unique_name(history, name or category.name), data=str(Path(data_dir).resolve()),
                data_fingerprint=fingerprint(category.train), n_images=len(fit_images),
                n_validation=len(val_images), added_utc=now_utc(), strategy=chosen.value)
    frr = target_frr if target_frr is not None else (src.meta.calibration.target_frr or 0.01)
    training = {"data": task.data, "data_fingerprint": task.data_fingerprint, "n_images": task.n_images,
                "n_validation": len(cal_images), "seed": options.seed,
                "continual": {"strategy": chosen.value, "from_bundle": src.model_hash, **outcome.info}}
    summary = {**buffer.summary(), "budget": budget, "val_per_task": val_per_task,
               "policy": "even split, seeded uniform within a task"}
    written = write_trained_bundle(
        outcome.model, model_type, out, pre=pre, color=color, val_images=cal_images, target_frr=frr,
        batch_size=options.batch_size, training=training, started=t0,
        extra_meta={"tasks": [t.to_dict() for t in history + [task]], "replay": summary,
                    **_carried_geometry(src, images)},
        extra_files={REPLAY_FILE: buffer.to_bytes(), **outcome.extra_files}, sign_key=sign_key)
    return UpdateResult(written, chosen, task, summary, outcome.info, time.perf_counter() - t0)


def _carried_geometry(src: Bundle, images: list) -> dict:
    """The source bundle's ``geometry`` (same station, same reference); the training-image size only while the new
    task's images have it too."""
    import dataclasses

    from edgead.bundle.geometry import common_size

    geometry = src.meta.geometry
    if geometry is None:
        return {}
    if geometry.image_hw is not None and common_size([im.shape for im in images]) != geometry.image_hw:
        geometry = dataclasses.replace(geometry, image_hw=None)
    return {"geometry": geometry.to_dict()} if geometry.to_dict() else {}


def _check_data(data_dir, color: Color, buffer: ReplayBuffer):
    """The new task's category; its colour must be the bundle's and its aspect ratio that of the old tasks."""
    category = scan_category(data_dir)
    if Color(category.color) is not color:
        raise DataError(f"new task {category.root} is {Color(category.color).value}, the bundle takes "
                        f"{color.value} images", hint="extend a bundle trained on the same camera colour mode")
    old = next((a for a in buffer.validation if len(a)), None)
    if old is not None:
        (h, w), (oh, ow) = category.median_hw, old.shape[1:3]
        if abs((w / h) / (ow / oh) - 1.0) > ASPECT_TOLERANCE:
            raise DataError(f"new task {category.root} images are {h}x{w}, the bundle's tasks {oh}x{ow} (aspect "
                            f"{w / h:.2f} vs {ow / oh:.2f})",
                            hint="crop the new images like the old ones, or train a new bundle")
    return category


def _budget(replay: int | None, strategy: Strategy, bundle: Bundle) -> int:
    """The replay budget: as given; else the bundle's, at least ``DEFAULT_REPLAY`` for a replay strategy."""
    if replay is not None:
        if replay < 0:
            raise ConfigError(f"--replay {replay} must be >= 0", hint="give the total replay images, e.g. 32")
        return int(replay)
    current = bundle.meta.replay.budget if bundle.meta.replay else 0
    return max(DEFAULT_REPLAY, current) if strategy in USES_REPLAY else current


def _load_buffer(bundle: Bundle, history: list[Task], color: Color, val_per_task: int, budget: int
                 ) -> ReplayBuffer:
    """The bundle's replay buffer; for a bundle from ``edgead train``, the first task's split rebuilt from its data.

    The first task's replay sample is filled to ``budget`` here; :meth:`ReplayBuffer.add_task` then shrinks it to
    its share.
    """
    if REPLAY_FILE in bundle.manifest.get("files", {}):
        buffer = ReplayBuffer.load(bundle.file(REPLAY_FILE), caps_for(bundle.meta, REPLAY_FILE))
        if buffer.n_tasks != len(history):
            raise DataError(f"bundle {bundle.root}: replay buffer holds {buffer.n_tasks} tasks, the tasks section "
                            f"{len(history)}", hint="the bundle was edited by hand; restore it")
        return buffer
    from edgead.train.pipeline import holdout_split

    first = history[0]
    try:
        category = scan_category(first.data)
    except DataError as exc:
        raise DataError(f"bundle {bundle.root} has no replay buffer and its training data {first.data} is not "
                        f"readable ({exc.message})", hint="restore that folder for the first update") from exc
    if first.data_fingerprint and fingerprint(category.train) != first.data_fingerprint:
        raise DataError(f"training data {first.data} changed since the bundle was trained (fingerprint differs)",
                        hint="restore the original images for the first update")
    seed = (bundle.meta.training.seed if bundle.meta.training else None) or 0
    n = len(category.train)
    fit_idx, val_idx = holdout_split(n, first.n_validation, seed)
    images = [load_image(s.path, color) for s in category.train]
    return ReplayBuffer.empty().add_task([images[i] for i in fit_idx], [images[i] for i in val_idx],
                                         budget=budget, val_per_task=val_per_task,
                                         seed=seed)
