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

PARENTS = torch.tensor(schema.BODY_PARENTS[1:])


def bone_offsets_per_frame(body_pos: Tensor, body_rot: Tensor) -> Tensor:
    """[T, 52, 3] positions and [T, 52, 4] wxyz rotations -> [T, 51, 3] child offsets in the parent frame."""
    pos = body_pos.double()
    rot = body_rot.double()
    parent_pos = pos[:, PARENTS]
    parent_rot = rot[:, PARENTS]
    return quat_apply_inverse(parent_rot, pos[:, 1:] - parent_pos)


@dataclass
class FittedSkeleton:
    offsets: Tensor  # [52, 3] float64, row 0 (pelvis) is zero
    spread: Tensor  # [52] float64: max over frames of |offset - median| (m); 0 for the pelvis

    def inconsistent_bodies(self, tolerance: float = 0.01) -> list[str]:
        return [schema.BODY_NAMES[i] for i in range(schema.NUM_BODIES) if self.spread[i] > tolerance]


def fit_skeleton(body_pos: Tensor, body_rot: Tensor) -> FittedSkeleton:
    per_frame = bone_offsets_per_frame(body_pos, body_rot)
    median = per_frame.median(dim=0).values
    spread = (per_frame - median).norm(dim=-1).amax(dim=0)
    zeros = torch.zeros(1, 3, dtype=median.dtype)
    return FittedSkeleton(torch.cat([zeros, median]), torch.cat([torch.zeros(1, dtype=spread.dtype), spread]))
