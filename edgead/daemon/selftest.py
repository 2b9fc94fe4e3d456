"""The release self-test: known-good and known-defective samples judged by the station's own path.

The station config is loaded as ``edgead run`` loads it, the model through :func:`~edgead.daemon.model.load_model`
(the admission gate: hashes, signature, reference and geometry; the engine the daemon runs; the shipped reference
and the ROIs), and every sample is read as the folder camera reads frames and judged by
:meth:`~edgead.daemon.model.LoadedModel.inspect` (align, one inference per ROI, :func:`edgead.contract.decide`). The self-test
passes only if every good sample is accepted and every defective sample is rejected. ``edgead deploy`` runs it on
the station before ``current`` is switched.

``samples.json`` (written by the release build, beside the samples)::

    {"format_version": 1, "samples": [{"image": "good/00-005.png", "expect": "accept", "source": "..."},
                                      {"image": "defective/00-scratch-001.png", "expect": "reject", ...}]}

Example:
    >>> result = run_selftest(load_station("station.yaml"), read_samples("selftest/samples.json"))  # doctest: +SKIP
    >>> result.passed, result.failures()                                                       # doctest: +SKIP
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgead.camera.folder import read_frame_file
from edgead.daemon.config import StationConfig
from edgead.errors import CameraError, ConfigError, SelfTestError
from edgead.verdict import Verdict

SAMPLES_FORMAT = 1
EXPECTED = {"accept": Verdict.ACCEPT, "reject": Verdict.REJECT}
KIND = {Verdict.ACCEPT: "good", Verdict.REJECT: "defective"}


@dataclass(frozen=True)
class Sample:
    """One self-test image and the verdict it must get."""

    image: Path
    expect: Verdict

    @property
    def kind(self) -> str:
        return KIND[self.expect]


@dataclass(frozen=True)
class SampleResult:
    """What the station made of one sample."""

    image: str
    expect: str
    verdict: str
    score: float | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict == self.expect


@dataclass
class SelfTestResult:
    """The outcome: ``passed`` only when every sample got its expected verdict."""

    model_hash: str
    trust: str
    results: list[SampleResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    def failures(self) -> list[str]:
        """One sentence per sample that did not get its verdict."""
        out = []
        for r in self.results:
            if not r.ok:
                what = "known-good" if r.expect == "accept" else "known-defective"
                score = "" if r.score is None else f", score {r.score:.3f}"
                why = f" ({r.error})" if r.error else ""
                out.append(f"{what} sample {r.image} got {r.verdict}{score}{why}, expected {r.expect}")
        return out

    def to_dict(self) -> dict:
        good = [r for r in self.results if r.expect == "accept"]
        bad = [r for r in self.results if r.expect == "reject"]
        return {"passed": self.passed, "model_hash": self.model_hash, "trust": self.trust,
                "good_accepted": f"{sum(r.ok for r in good)}/{len(good)}",
                "defective_rejected": f"{sum(r.ok for r in bad)}/{len(bad)}",
                "failures": self.failures(), "samples": [asdict(r) for r in self.results]}


def read_samples(path: str | Path) -> list[Sample]:
    """Parse ``samples.json`` (images relative to its folder).

    Raises:
        ConfigError: unreadable, of another format, or with an unknown expected verdict.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        if doc.get("format_version") != SAMPLES_FORMAT:
            raise ValueError(f"format_version {doc.get('format_version')!r}, this edgead reads {SAMPLES_FORMAT}")
        return [Sample(path.parent / s["image"], EXPECTED[s["expect"]]) for s in doc["samples"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"self-test samples {path}: cannot read them ({exc})",
                          hint="the release was built by another edgead; rebuild it") from exc


def write_samples(path: Path, samples: list[tuple[str, Verdict, str]]) -> None:
    """Write ``samples.json``: ``(image relative to its folder, expected verdict, where it came from)``."""
    doc = {"format_version": SAMPLES_FORMAT,
           "samples": [{"image": img, "expect": v.value, "source": src} for img, v, src in samples]}
    path.write_text(json.dumps(doc, indent=2) + "\n")


def run_selftest(cfg: StationConfig, samples: list[Sample]) -> SelfTestResult:
    """Judge every sample through the station's path (see the module docstring).

    Args:
        cfg: the station config (as ``edgead run`` loads it).
        samples: at least one known-good and one known-defective sample.

    Returns:
        The :class:`SelfTestResult` (check ``passed``).

    Raises:
        ConfigError: no good or no defective sample.
        BundleError / TrustError / EngineError / ...: the station would not start with this config either.
    """
    from edgead.daemon.model import load_model

    kinds = {s.expect for s in samples}
    if kinds != {Verdict.ACCEPT, Verdict.REJECT}:
        missing = "known-good" if Verdict.ACCEPT not in kinds else "known-defective"
        raise ConfigError(f"self-test: no {missing} sample; a release is proven only by both kinds "
                          "(a model that accepts or rejects everything passes half a test)",
                          hint="give --selftest-good and --selftest-defective images, or --selftest-data")
    model = load_model(cfg)
    try:
        result = SelfTestResult(model.model_hash, model.trust_note)
        for s in samples:
            try:
                frame = read_frame_file(s.image, "self-test sample")
            except CameraError as exc:
                result.results.append(SampleResult(_label(s), s.expect.value, Verdict.FAULT.value, None,
                                                   exc.message))
                continue
            seen = model.inspect(frame, cfg.decision)
            score = seen.decision.score if seen.decision is not None else None
            result.results.append(SampleResult(_label(s), s.expect.value, seen.verdict.value, score, seen.error))
    finally:
        model.close()
    return result


def _label(s: Sample) -> str:
    return f"{s.image.parent.name}/{s.image.name}"


def check_passed(result: SelfTestResult) -> SelfTestResult:
    """Raise :class:`SelfTestError` naming every failing sample unless the self-test passed."""
    if not result.passed:
        raise SelfTestError("self-test failed: " + "; ".join(result.failures()),
                            hint="the release does not behave as this station's release must: not switched")
    return result
