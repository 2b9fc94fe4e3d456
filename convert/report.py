"""The conversion report: every candidate's gate numbers, the choice, and how the engine gets built (JSON + Markdown)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from edgead.convert.gate import GateReport


@dataclass
class Candidate:
    """One candidate of a conversion: its artifact, gate numbers and latency on this machine.

    Attributes:
        name: the candidate's name (``int8``, ``int8+stride8``, ``fp32+opt+bank25``).
        precision: the numeric precision of its graph (``fp32``, ``fp16``, ``int8``).
        size_bytes: the graph's size.
        latency_median_ms, latency_p99_ms: ``infer`` of one image on this machine (None when not timed).
        gate: the accuracy gate's report (None without a check set).
        details: what was done to the graph (recorded in ``conversion:`` when it is kept).
    """

    name: str
    precision: str
    size_bytes: int
    latency_median_ms: float | None = None
    latency_p99_ms: float | None = None
    gate: GateReport | None = None
    details: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.gate is None or self.gate.passed


@dataclass
class ConversionReport:
    """What ``edgead convert`` did.

    Attributes:
        source: source bundle path; source_hash: its ``bundle_sha256``.
        target, backend: the target profile and its runtime.
        requested, chosen: the precision asked for (maybe ``auto``) and the name of the candidate written.
        out: the output bundle; candidates: every candidate built.
        engine: ``built: <path>`` or what to run on the target.
        trtexec: the equivalent trtexec command (TensorRT targets) or None.
        forced: written although the gate failed.
        notes: candidates not built, and why (OpenVINO not installed, a CPU feature missing).
    """

    source: str
    source_hash: str
    target: str
    backend: str
    requested: str
    chosen: str
    out: str
    candidates: list[Candidate]
    engine: str
    trtexec: str | None
    forced: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str) + "\n"

    def to_markdown(self) -> str:
        lines = [f"# Conversion of `{self.source}` for `{self.target}` ({self.backend})", "",
                 f"- source bundle hash: `{self.source_hash}`",
                 f"- precision: requested `{self.requested}`, chosen **`{self.chosen}`**" +
                 (" (forced past the gate)" if self.forced else ""),
                 f"- output bundle: `{self.out}`", f"- engine: {self.engine}", "",
                 "| candidate | size (KiB) | latency median / p99 (ms) | image AUROC Δ (pt) | pixel AUROC Δ (pt) "
                 "| score drift max / p99 | agreement | new accepts / rejects | extra escapes (bound) "
                 "| extra false rejects (bound) | largest defect score fall | gate |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for c in self.candidates:
            g = c.gate
            lat = "n/a" if c.latency_median_ms is None else f"{c.latency_median_ms:.2f} / {c.latency_p99_ms:.2f}"
            if g is None:
                cells = ["n/a"] * 8 + ["not run (no --check)"]
            else:
                pix = "n/a" if g.pixel_auroc_delta_pt is None else f"{g.pixel_auroc_delta_pt:+.2f}"
                cells = [f"{g.image_auroc_delta_pt:+.2f}", pix, f"{g.score_drift_max:.4f} / {g.score_drift_p99:.4f}",
                         f"{100 * g.agreement:.1f}%", f"{g.new_accepts} / {g.new_rejects}", *_evidence_cells(g),
                         "pass" if g.passed else "FAIL: " + "; ".join(g.reasons)]
            lines.append(f"| {c.name} | {c.size_bytes / 1024:.0f} | {lat} | " + " | ".join(cells) + " |")
        lines += _evidence_lines(self.candidates, self.chosen)
        if self.notes:
            lines += ["", *(f"- {note}" for note in self.notes)]
        if self.trtexec:
            lines += ["", "Equivalent trtexec command (writes a bare engine; edgead needs its header, so prefer "
                      "`edgead build-engine`):", "", "```", self.trtexec, "```"]
        return "\n".join(lines) + "\n"


def _evidence_cells(g: GateReport) -> list[str]:
    e = g.evidence
    if e is None:
        return ["n/a"] * 3
    return [e.bound_text("escape"), e.bound_text("false_reject"), e.fall_text()]


def _evidence_lines(candidates: list[Candidate], chosen: str) -> list[str]:
    """What the check set shows beyond itself: the allowances, and each candidate it could not clear, with what to
    do (convert/evidence.py)."""
    gated = [c for c in candidates if c.gate is not None and c.gate.evidence is not None]
    if not gated:
        return []
    e = gated[0].gate.evidence
    lines = ["", f"What the check set shows beyond its own images ({100 * e.confidence:.0f} % one-sided "
             f"Clopper-Pearson upper bounds): a lossy candidate must show its extra escape rate (defective images "
             f"FP32 rejects that it accepts) below {e.max_extra_escape_pct:g} % and its extra false-reject rate "
             f"below {e.max_extra_false_reject_pct:g} %, and no defect FP32 rejects may score more than "
             f"{e.max_defect_score_fall:g} lower than on FP32 (normalised score, 0.5 = threshold). Exact candidates differ "
             f"from FP32 by float rounding only; the bounds do not apply to them."]
    for c in gated:
        reasons = c.gate.evidence.reasons()
        if reasons:
            lines.append(f"- `{c.name}`{' (kept, forced)' if c.name == chosen else ''}: " + "; ".join(reasons))
    return lines
