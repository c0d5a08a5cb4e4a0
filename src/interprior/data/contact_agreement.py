"""Agreement of inferred contact labels with stored ones (per body group, +1 precision / recall, object flag)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import Tensor

from interprior import schema
from interprior.data.clip import Clip


def _default_groups() -> dict[str, tuple[int, ...]]:
    hands = set(schema.LEFT_HAND) | set(schema.RIGHT_HAND) | set(schema.FEET)
    return {
        "left_hand": schema.LEFT_HAND,
        "right_hand": schema.RIGHT_HAND,
        "feet": schema.FEET,
        "other": tuple(i for i in range(schema.NUM_BODIES) if i not in hands),
    }


BODY_GROUPS: dict[str, tuple[int, ...]] = _default_groups()


@dataclass
class AgreementCounts:
    """Counts over frames × bodies of one group (add them up over clips, then read the rates)."""

    agree: int = 0
    total: int = 0
    true_positive: int = 0  # pred +1 and stored +1
    predicted_positive: int = 0
    stored_positive: int = 0

    def __add__(self, other: "AgreementCounts") -> "AgreementCounts":
        return AgreementCounts(*(getattr(self, k) + getattr(other, k) for k in
                                 ("agree", "total", "true_positive", "predicted_positive", "stored_positive")))

    @property
    def agreement(self) -> float:
        return self.agree / self.total if self.total else float("nan")

    @property
    def precision(self) -> float:
        return self.true_positive / self.predicted_positive if self.predicted_positive else float("nan")

    @property
    def recall(self) -> float:
        return self.true_positive / self.stored_positive if self.stored_positive else float("nan")

    def as_dict(self) -> dict:
        return {"agreement": self.agreement, "precision": self.precision, "recall": self.recall,
                "count": self.total}


def contact_agreement_counts(pred: Tensor, stored: Tensor,
                             groups: Mapping[str, Sequence[int]] | None = None) -> dict[str, AgreementCounts]:
    groups = BODY_GROUPS if groups is None else groups
    pred, stored = pred.round(), stored.round()
    out = {}
    for name, bodies in groups.items():
        p, s = pred[:, list(bodies)], stored[:, list(bodies)]
        out[name] = AgreementCounts(
            agree=int((p == s).sum()), total=int(p.numel()), true_positive=int(((p > 0) & (s > 0)).sum()),
            predicted_positive=int((p > 0).sum()), stored_positive=int((s > 0).sum()),
        )
    return out


def contact_agreement(pred: Tensor, stored: Tensor,
                      groups: Mapping[str, Sequence[int]] | None = None) -> dict[str, dict]:
    """Per body group (default: left_hand, right_hand, feet, other): fraction of frames × bodies whose labels
    agree, and precision / recall of the +1 label (pred against stored). Labels [T, 52]."""
    return {k: v.as_dict() for k, v in contact_agreement_counts(pred, stored, groups).items()}


def add_agreement(row: dict, result, clip: Clip) -> None:
    """Add to a `label_files` report row the agreement of an inference `result` (a `ContactInference`) with the
    clip's stored labels: per body group plus "all", and the object flag (rates and raw counts)."""
    groups = dict(BODY_GROUPS)
    groups["all"] = tuple(range(schema.NUM_BODIES))
    counts = contact_agreement_counts(result.labels, clip.contact, groups)
    row["agreement"] = {k: v.as_dict() for k, v in counts.items()}
    row["agreement_counts"] = {k: vars(v).copy() for k, v in counts.items()}
    row["object_flag_agreement"] = float((result.interaction.float() == clip.obj_contact.round()).float().mean())
    row["object_flag_agree_frames"] = int((result.interaction.float() == clip.obj_contact.round()).sum())


def summarize_agreement(rows: Sequence[dict]) -> dict:
    """Agreement over all clips of a `label_files` run that had labels (frames × bodies pooled)."""
    totals: dict[str, AgreementCounts] = {}
    flag_agree = flag_frames = 0
    for row in rows:
        for group, c in row.get("agreement_counts", {}).items():
            totals[group] = totals.get(group, AgreementCounts()) + AgreementCounts(**c)
        if "object_flag_agree_frames" in row:
            flag_agree += row["object_flag_agree_frames"]
            flag_frames += row["frames"]
    out = {k: v.as_dict() for k, v in totals.items()}
    if flag_frames:
        out["object_flag"] = {"agreement": flag_agree / flag_frames, "count": flag_frames}
    return out
