"""The reference side of the MDP: what the motion data says the humanoid and object should be doing.

`RefState` mirrors `interprior.sim.batched.SimState` (world frame, wxyz quaternions, N envs) so observation,
reward and termination kernels compare the two field by field. Kernels use object 0 of the simulation.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from torch import Tensor


@dataclass
class RefState:
    root_pos: Tensor  # [N, 3]
    root_rot: Tensor  # [N, 4]
    body_pos: Tensor  # [N, B, 3]
    body_rot: Tensor  # [N, B, 4]
    body_linvel: Tensor  # [N, B, 3]
    body_angvel: Tensor  # [N, B, 3] world frame
    dof_pos: Tensor  # [N, full dofs] hinge angles (intrinsic XYZ Euler of each joint)
    obj_pos: Tensor  # [N, 3]
    obj_rot: Tensor  # [N, 4]
    obj_linvel: Tensor  # [N, 3]
    obj_angvel: Tensor  # [N, 3] world frame
    contact: Tensor  # [N, B] reference contact labels {-1 far, 0 unknown, +1 in contact}
    obj_contact: Tensor  # [N] {0, 1}
    nearest_object_vec: Tensor  # [N, B, 3] body -> nearest reference object surface point (as SimState's)

    def to(self, device) -> "RefState":
        return RefState(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})
