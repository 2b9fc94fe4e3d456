"""The shadow model against the live one over the production parts: ``edgead records DB --compare``.

For every recorded part the shadow scored (the ``shadow`` table), its verdict is set beside the live verdict: they
agree, or the shadow would have accepted a part the live model did not (a *new accept*), or rejected one it
accepted (a *new reject*). Where an operator labelled the part (:mod:`edgead.records.labels`), the label is the
ground truth: how many of each model's verdicts were right, and how many of the new accepts were defects (escapes
the candidate would add). Parts the shadow skipped (over its CPU budget) are counted, never guessed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from edgead.records.labels import Label, _rows
from edgead.verdict import Verdict

_SQL = ("SELECT p.id, p.part_id, p.verdict, p.score, s.verdict, s.score, s.model_hash, "
        "(SELECT label FROM labels l WHERE l.part_row = p.id ORDER BY l.id DESC LIMIT 1) "
        "FROM parts p LEFT JOIN shadow s ON s.part_row = p.id WHERE p.id > ? ORDER BY p.id")


@dataclass
class Comparison:
    """Counts of the comparison (see the module docstring); ``changed`` lists the parts whose verdicts differ."""

    parts: int = 0
    shadowed: int = 0
    skipped: int = 0
    agree: int = 0
    new_accepts: int = 0
    new_rejects: int = 0
    labelled: int = 0
    live_correct: int = 0
    shadow_correct: int = 0
    new_accepts_labelled_defect: int = 0
    new_rejects_labelled_good: int = 0
    shadow_models: list[str] = field(default_factory=list)
    changed: list[dict] = field(default_factory=list)

    @property
    def agreement(self) -> float | None:
        return self.agree / self.shadowed if self.shadowed else None

    def to_dict(self) -> dict:
        return {**asdict(self), "agreement": self.agreement}

    def lines(self) -> list[str]:
        """The text report of ``edgead records --compare``."""
        if not self.shadowed:
            return [f"{self.parts} parts on record, none scored by a shadow model "
                    "(set shadow.bundle in the station config)"]
        out = [f"shadow {', '.join(h[:12] for h in self.shadow_models)} scored {self.shadowed} of {self.parts} "
               f"parts ({self.skipped} skipped over its CPU budget)",
               f"agreement {self.agree}/{self.shadowed} ({100 * self.agreement:.1f} %): "
               f"new accepts {self.new_accepts}, new rejects {self.new_rejects}"]
        if self.labelled:
            out.append(f"labelled parts {self.labelled}: live right on {self.live_correct}, shadow right on "
                       f"{self.shadow_correct}; new accepts labelled defect {self.new_accepts_labelled_defect}, "
                       f"new rejects labelled good {self.new_rejects_labelled_good}")
        else:
            out.append("no labelled parts: label some (edgead records label) to see which model is right")
        for row in self.changed[:20]:
            truth = f", labelled {row['label']}" if row["label"] else ""
            out.append(f"  part {row['part_id']} (row {row['row']}): live {row['live']}, shadow {row['shadow']}"
                       f"{truth}")
        if len(self.changed) > 20:
            out.append(f"  ... and {len(self.changed) - 20} more")
        return out


def compare(conn_or_store, after_row: int = 0) -> Comparison:
    """Compare the shadow's verdicts with the live ones over the parts after ``after_row``.

    Args:
        conn_or_store: a :class:`~edgead.records.RecordStore` or a read-only sqlite3 connection.
        after_row: only parts with a higher row id.
    """
    c = Comparison()
    models = set()
    for row_id, part_id, live, _score, shadow, _sscore, model, label in _rows(conn_or_store, _SQL, (int(after_row),)):
        live_v = Verdict(live)
        if live_v in (Verdict.FAULT, Verdict.NO_READ):  # no model judged the part: nothing to compare
            continue
        c.parts += 1
        if shadow is None:
            c.skipped += 1
            continue
        c.shadowed += 1
        models.add(model)
        shadow_v = Verdict(shadow)
        live_pass, shadow_pass = live_v.passes, shadow_v.passes
        if live_pass == shadow_pass:
            c.agree += 1
        elif shadow_pass:
            c.new_accepts += 1
        else:
            c.new_rejects += 1
        if label is not None:
            good = Label(label) is Label.GOOD
            c.labelled += 1
            c.live_correct += live_pass == good
            c.shadow_correct += shadow_pass == good
            c.new_accepts_labelled_defect += shadow_pass and not live_pass and not good
            c.new_rejects_labelled_good += live_pass and not shadow_pass and good
        if live_pass != shadow_pass:
            c.changed.append({"row": row_id, "part_id": part_id, "live": live_v.value, "shadow": shadow_v.value,
                              "label": label})
    c.shadow_models = sorted(models)
    return c
