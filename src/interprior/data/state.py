"""The state a reset writes into the simulator, made from clips (data) and consumed by the simulator (sim)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class ResetState:
    """What a reset writes (world frame velocities); dof arrays are the variant's D hinges."""

    root_pos: Tensor
    root_rot: Tensor
    root_linvel: Tensor
    root_angvel: Tensor
    dof_pos: Tensor
    dof_vel: Tensor
    obj_pos: Tensor  # [n, K, 3]
    obj_rot: Tensor  # [n, K, 4]
    obj_linvel: Tensor
    obj_angvel: Tensor
