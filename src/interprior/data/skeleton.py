"""Bone offsets implied by a clip: each body's position in its parent's frame, per frame.

A consistent file has the same offset in every frame (rigid bones). The median over frames is the
subject-fitted skeleton; the spread tells which bodies contradict the file's own rotations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from interprior import schema
from interprior.rotations import quat_apply_inverse

def bone_offsets_per_frame(body_pos: Tensor, body_rot: Tensor,
                           parents: tuple[int, ...] = schema.BODY_PARENTS) -> Tensor:
    """[T, B, 3] positions and [T, B, 4] wxyz rotations -> [T, B - 1, 3] child offsets in the parent frame, for
    the body tree `parents` (SMPL-X by default)."""
    pos = body_pos.double()
    rot = body_rot.double()
    index = list(parents[1:])
    parent_pos = pos[:, index]
    parent_rot = rot[:, index]
    return quat_apply_inverse(parent_rot, pos[:, 1:] - parent_pos)


@dataclass
class FittedSkeleton:
    offsets: Tensor  # [52, 3] float64, row 0 (pelvis) is zero
    spread: Tensor  # [52] float64: max over frames of |offset - median| (m); 0 for the pelvis

    def inconsistent_bodies(self, tolerance: float = 0.01, names: tuple[str, ...] = schema.BODY_NAMES) -> list[str]:
        return [names[i] for i in range(len(self.spread)) if self.spread[i] > tolerance]


def fit_skeleton(body_pos: Tensor, body_rot: Tensor, parents: tuple[int, ...] = schema.BODY_PARENTS) -> FittedSkeleton:
    per_frame = bone_offsets_per_frame(body_pos, body_rot, parents)
    median = per_frame.median(dim=0).values
    spread = (per_frame - median).norm(dim=-1).amax(dim=0)
    zeros = torch.zeros(1, 3, dtype=median.dtype)
    return FittedSkeleton(torch.cat([zeros, median]), torch.cat([torch.zeros(1, dtype=spread.dtype), spread]))
