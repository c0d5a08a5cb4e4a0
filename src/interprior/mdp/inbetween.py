"""Stage III kernels (InterPrior §3 "Stage III"): the sparse success reward of single-frame in-betweening, the
posture checks of fallen starts and getting up. Pure batched tensor functions, no simulator.

**Success reward.** An episode carries one sparse goal: a target frame L steps ahead and a mask of the given
components. The reward is ``r_succ · 1[every given component is within its tolerance]``, where a component's
distance is the L1 norm of its masked residual (`goal_residuals`: target − current, root heading frame) per given
item (body, object, contact body), averaged over the given items of that component:

====================  ===========================================  ===============================
component             per-item distance                            tolerance (`SuccessTolerances`)
====================  ===========================================  ===============================
body positions        |Δx|+|Δy|+|Δz| of each given body (m)         `body_position` (0.2 m)
body rotations        L1 of the 6-entry tan-norm residual           `body_rotation` (0.6)
object position       |Δx|+|Δy|+|Δz| (m)                            `object_position` (0.2 m)
object rotation       L1 of the tan-norm residual                   `object_rotation` (0.6)
contacts              |target − current| per given contact body     `contact` (0.5: must match)
====================  ===========================================  ===============================

Components with nothing given pass; a mask with nothing given is never a success (there is nothing to reach).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from interprior.config import require
from interprior.mdp.goals import GoalLayout, entry_mask
from interprior.rotations import quat_apply

COMPONENTS = ("body_pos", "body_rot", "obj_pos", "obj_rot", "contact")
ENTRIES = {"body_pos": 3, "body_rot": 6, "obj_pos": 3, "obj_rot": 6, "contact": 1}  # residual entries per item


@dataclass
class SuccessTolerances:
    body_position: float = 0.2  # m, L1 over x, y, z, mean over the given bodies
    body_rotation: float = 0.6  # L1 of the tan-norm residual, mean over the given bodies
    object_position: float = 0.2  # m
    object_rotation: float = 0.6
    contact: float = 0.5  # a given contact must match (residual 0; a mismatch is 1)
    reward: float = 1.0  # r_succ

    def __post_init__(self):
        require(self, positive=("body_position", "body_rotation", "object_position", "object_rotation", "contact",
                                "reward"))

    def by_component(self) -> dict[str, float]:
        return {"body_pos": self.body_position, "body_rot": self.body_rotation, "obj_pos": self.object_position,
                "obj_rot": self.object_rotation, "contact": self.contact}


def component_distances(residual: Tensor, bits: Tensor, layout: GoalLayout) -> tuple[dict[str, Tensor],
                                                                                      dict[str, Tensor]]:
    """Per component, ([N] mean L1 residual per given item, [N] bool anything given) from one token's residual
    [N, feature_size] and bits [N, bit_size]."""
    masked = residual.abs() * entry_mask(bits.to(residual.dtype), layout)
    distances, given = {}, {}
    for name in COMPONENTS:
        feats = masked[:, layout.feature_slices[name]]
        count = bits[:, layout.bit_slices[name]].sum(1)
        given[name] = count > 0
        distances[name] = feats.sum(1) / count.clamp_min(1).to(feats.dtype)
    return distances, given


def success_reward(residual: Tensor, bits: Tensor, layout: GoalLayout, tol: SuccessTolerances) -> Tensor:
    """[N] exactly 0 or `tol.reward`: every given component within its tolerance, something given."""
    distances, given = component_distances(residual, bits, layout)
    limits = tol.by_component()
    ok = torch.ones(residual.shape[0], dtype=torch.bool, device=residual.device)
    anything = torch.zeros_like(ok)
    for name in COMPONENTS:
        ok &= ~given[name] | (distances[name] < limits[name])
        anything |= given[name]
    return (ok & anything).to(residual.dtype) * tol.reward


# --- posture ------------------------------------------------------------------------------------------------------
def torso_tilt(torso_rot: Tensor) -> Tensor:
    """[N] angle (rad) between the torso's up axis and the world's up (0 upright, π/2 lying)."""
    up = quat_apply(torso_rot, torso_rot.new_tensor([0.0, 0.0, 1.0]).expand(torso_rot.shape[0], 3))
    return torch.acos(up[:, 2].clamp(-1.0, 1.0))


def is_fallen(pelvis_height: Tensor, torso_rot: Tensor, max_height: float = 0.5, min_tilt: float = 1.0) -> Tensor:
    """[N] a fallen state: the pelvis below `max_height` m (sitting, kneeling, lying) or the torso tilted more than
    `min_tilt` rad (≈ 57°) from upright."""
    return (pelvis_height < max_height) | (torso_tilt(torso_rot) > min_tilt)


def is_standing(pelvis_height: Tensor, torso_rot: Tensor, min_height: float = 0.8,
                max_tilt: float = 0.5236) -> Tensor:
    """[N] standing: the pelvis at least `min_height` m up and the torso within `max_tilt` rad (30°) of upright."""
    return (pelvis_height >= min_height) & (torso_tilt(torso_rot) <= max_tilt)


def upright_reward(pelvis_height: Tensor, torso_rot: Tensor, stand_height: float = 0.9) -> Tensor:
    """[N] in [0, 1]: the getting-up shaping term, the product of the pelvis height's share of standing height and
    the torso's cosine to upright (clamped at 0)."""
    height = (pelvis_height / stand_height).clamp(0.0, 1.0)
    return height * torch.cos(torso_tilt(torso_rot)).clamp_min(0.0)
