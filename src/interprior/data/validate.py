"""Consistency checks on a loaded clip, reported as findings instead of exceptions.

`load_clip` already rejects files that cannot be used at all. These checks look for content that loads but
contradicts itself: body positions that disagree with the file's own rotations, a root that is not body 0,
contact labels outside their value set, feet deep below the floor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from interprior.assets.bodies import embodiment
from interprior.assets.embodiment import Embodiment
from interprior.data.clip import Clip
from interprior.data.intermimic import QUAT_NORM_TOLERANCE, load_clip
from interprior.data.skeleton import fit_skeleton
from interprior.errors import DataFileError, InterpriorError
from interprior.rotations import quat_angle, quat_conj, quat_mul, quat_normalize

Severity = Literal["error", "warning", "info"]

ROOT_POS_TOLERANCE = 1e-3  # m: root position must be body 0's position
ROOT_ROT_TOLERANCE = 1e-3  # rad: root rotation must be body 0's rotation
FLOOR_TOLERANCE = -0.05  # m: a foot body below this height is worth mentioning


@dataclass
class Finding:
    severity: Severity
    code: str
    message: str
    bodies: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def validate_clip(clip: Clip, tolerance: float = 0.01) -> list[Finding]:
    """All findings for one clip. `tolerance` (m) is how far a bone offset may vary over frames."""
    try:
        body = clip_body(clip)
        clip.check_shapes(body.num_bodies)
    except (ValueError, InterpriorError) as err:
        return [Finding("error", "shape", str(err))]
    if clip.num_frames == 0:
        return [Finding("error", "empty", f"clip {clip.name} has no frames")]
    findings = _check_finite(clip)
    if findings:
        return findings  # every later check would be meaningless on NaN/inf
    findings += _check_quaternions(clip, body)
    if not any(f.code == "body_quat_norm" for f in findings):
        findings += _check_kinematic_chain(clip, body, tolerance)
    findings += _check_root_is_body0(clip, body)
    findings += _check_contact_labels(clip, body)
    findings += _check_feet_above_floor(clip, body)
    findings += [Finding("info", "load_note", note) for note in clip.notes]
    return findings


def validate_file(path: str | Path, tolerance: float = 0.01) -> tuple[Clip | None, list[Finding]]:
    """Load and validate; a file that cannot be loaded gives (None, [one error finding])."""
    try:
        clip = load_clip(path)
    except DataFileError as err:
        return None, [Finding("error", "load", str(err))]
    return clip, validate_clip(clip, tolerance)


def clip_body(clip: Clip) -> Embodiment:
    """The body a clip is of: the one its motion file names, else SMPL-X (InterMimic's files)."""
    return embodiment(clip.body or "full")


# --- checks ------------------------------------------------------------------------------------------------


def _check_finite(clip: Clip) -> list[Finding]:
    fields = ("root_pos", "root_rot", "body_pos", "body_rot", "obj_pos", "obj_rot", "obj_contact", "contact")
    bad = [name for name in fields if not torch.isfinite(getattr(clip, name)).all()]
    if not bad:
        return []
    return [Finding("error", "non_finite", f"NaN or inf values in {', '.join(bad)}")]


def _check_quaternions(clip: Clip, body: Embodiment) -> list[Finding]:
    findings = []
    for code, what, quats in (
        ("root_quat_norm", "root rotation", clip.root_rot),
        ("obj_quat_norm", "object rotation", clip.obj_rot),
    ):
        off = _norm_error(quats)
        if off.amax() > QUAT_NORM_TOLERANCE:
            findings.append(Finding("error", code, _norm_message(what, off)))
    off = _norm_error(clip.body_rot)  # [T, B]
    bad_bodies = _names((off > QUAT_NORM_TOLERANCE).any(dim=0), body)
    if bad_bodies:
        findings.append(Finding("error", "body_quat_norm", _norm_message("body rotations", off), bad_bodies))
    return findings


def _norm_error(quats: Tensor) -> Tensor:
    return (quats.double().norm(dim=-1) - 1.0).abs()


def _norm_message(what: str, off: Tensor) -> str:
    frames = (off > QUAT_NORM_TOLERANCE).reshape(off.shape[0], -1).any(dim=1).nonzero().flatten()
    return (
        f"{what}: {frames.numel()} frame(s) with |norm - 1| > {QUAT_NORM_TOLERANCE:g} "
        f"(first frame {int(frames[0])}, worst |norm - 1| = {float(off.amax()):.3g})"
    )


def _check_kinematic_chain(clip: Clip, body: Embodiment, tolerance: float) -> list[Finding]:
    """A rigid bone keeps its offset in the parent's frame; bodies whose offset moves contradict the rotations."""
    skeleton = fit_skeleton(clip.body_pos, quat_normalize(clip.body_rot), body.parents)
    bad = skeleton.inconsistent_bodies(tolerance, body.body_names)
    if not bad:
        return []
    deviations = ", ".join(f"{name} {100 * float(skeleton.spread[body.body_index[name]]):.1f} cm" for name in bad)
    message = (
        f"{len(bad)} bodies' offsets to their parent vary by more than {100 * tolerance:g} cm over frames, "
        f"contradicting the file's own rotations (max deviation: {deviations})"
    )
    return [Finding("warning", "kinematic_chain", message, bad)]


def _check_root_is_body0(clip: Clip, body: Embodiment) -> list[Finding]:
    findings, root = [], body.body_names[0]
    pos_gap = (clip.root_pos - clip.body_pos[:, 0]).norm(dim=-1).amax()
    if pos_gap > ROOT_POS_TOLERANCE:
        findings.append(Finding(
            "warning", "root_pos", f"root position differs from {root} position by up to {100 * pos_gap:.2f} cm",
            [root],
        ))
    relative = quat_mul(quat_conj(quat_normalize(clip.root_rot)), quat_normalize(clip.body_rot[:, 0]))
    angle_gap = quat_angle(relative.double()).amax()
    if angle_gap > ROOT_ROT_TOLERANCE:
        findings.append(Finding(
            "warning", "root_rot", f"root rotation differs from {root} rotation by up to {angle_gap:.4f} rad",
            [root],
        ))
    return findings


def _check_contact_labels(clip: Clip, body: Embodiment) -> list[Finding]:
    findings = []
    labels = clip.contact
    invalid = ~((labels == -1) | (labels == 0) | (labels == 1))  # [T, B]
    if invalid.any():
        findings.append(Finding(
            "error", "contact_labels",
            f"{int(invalid.sum())} contact label(s) outside {{-1, 0, 1}} "
            f"(first frame {int(invalid.any(dim=1).nonzero()[0])})",
            _names(invalid.any(dim=0), body),
        ))
    flag_invalid = ~((clip.obj_contact == 0) | (clip.obj_contact == 1))
    if flag_invalid.any():
        findings.append(Finding(
            "error", "obj_contact",
            f"{int(flag_invalid.sum())} object-contact flag(s) outside {{0, 1}} "
            f"(first frame {int(flag_invalid.nonzero()[0])})",
        ))
    return findings


def _check_feet_above_floor(clip: Clip, body: Embodiment) -> list[Finding]:
    feet = list(body.resolved.feet)
    foot_z = clip.body_pos[:, feet, 2]  # [T, feet]
    lowest = float(foot_z.amin())
    if lowest >= FLOOR_TOLERANCE:
        return []
    below = foot_z.amin(dim=0) < FLOOR_TOLERANCE
    names = [body.body_names[feet[i]] for i in range(len(feet)) if below[i]]
    frame = int((foot_z.amin(dim=1) < FLOOR_TOLERANCE).nonzero()[0])
    return [Finding(
        "info", "feet_below_floor",
        f"foot bodies go down to z = {lowest:.3f} m (below {FLOOR_TOLERANCE} m; first frame {frame})",
        names,
    )]


def _names(per_body: Tensor, body: Embodiment) -> list[str]:
    return [body.body_names[i] for i in per_body.nonzero().flatten().tolist()]


def count_by_severity(findings: list[Finding]) -> dict[str, int]:
    return {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
