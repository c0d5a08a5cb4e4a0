"""Batched forward kinematics of the humanoid in torch (device-agnostic).

Body frames carry no rotation of their own and hinges sit at body origins (see the humanoid builder), so
    R_child = R_parent · Rx(a) Ry(b) Rz(c),   p_child = p_parent + R_parent · offset_child.
Bodies are processed level by level (11 tree levels), each level one batched operation over envs and bodies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from interprior import schema
from interprior.rotations import matrix_from_euler_xyz, matrix_to_quat, quat_to_matrix


def _levels() -> list[list[int]]:
    depth = [0] * schema.NUM_BODIES
    for i in range(1, schema.NUM_BODIES):
        depth[i] = depth[schema.BODY_PARENTS[i]] + 1
    return [[i for i in range(schema.NUM_BODIES) if depth[i] == d] for d in range(1, max(depth) + 1)]


LEVELS = _levels()
_LEVEL_INDEX: dict = {}


def level_index(device) -> list[tuple[Tensor, Tensor]]:
    """(bodies, parents) index tensors of each tree level, cached per device."""
    key = str(device)
    if key not in _LEVEL_INDEX:
        _LEVEL_INDEX[key] = [
            (torch.tensor(lv, device=device), torch.tensor([schema.BODY_PARENTS[i] for i in lv], device=device))
            for lv in LEVELS
        ]
    return _LEVEL_INDEX[key]


@dataclass
class KinematicTree:
    offsets: Tensor  # [52, 3] child origin in the parent frame (row 0 unused)

    @classmethod
    def from_offsets(cls, offsets, dtype=torch.float64, device="cpu") -> "KinematicTree":
        return cls(torch.as_tensor(np.asarray(offsets), dtype=dtype, device=device))

    @classmethod
    def from_model(cls, model, dtype=torch.float64, device="cpu") -> "KinematicTree":
        ids = np.arange(1, schema.NUM_BODIES + 1)
        names = tuple(model.body(int(i)).name for i in ids)
        if names != schema.BODY_NAMES:
            raise ValueError("model bodies 1..52 are not the humanoid in schema order")
        if not np.allclose(model.body_quat[ids[1:]], [1, 0, 0, 0]):
            raise ValueError("humanoid body frames must not be rotated")
        return cls.from_offsets(model.body_pos[ids], dtype=dtype, device=device)

    def to(self, dtype=None, device=None) -> "KinematicTree":
        return KinematicTree(self.offsets.to(dtype=dtype, device=device))

    def forward(self, root_pos: Tensor, root_rot: Tensor, joint_angles: Tensor) -> tuple[Tensor, Tensor]:
        """root_pos [..., 3], root_rot [..., 4] wxyz, joint_angles [..., 153] (x, y, z per body 1..51)
        -> body_pos [..., 52, 3], body_rot [..., 52, 4] (wxyz, w >= 0)."""
        body_pos, body_mat = self.forward_matrices(root_pos, root_rot, joint_angles)
        return body_pos, matrix_to_quat(body_mat)

    def forward_matrices(self, root_pos: Tensor, root_rot: Tensor, joint_angles: Tensor) -> tuple[Tensor, Tensor]:
        """Like `forward`, with rotations as matrices [..., 52, 3, 3] (cheaper to compose level by level)."""
        batch = root_pos.shape[:-1]
        local = matrix_from_euler_xyz(joint_angles.reshape(batch + (schema.NUM_JOINTS, 3)))
        offsets = self.offsets.to(root_pos.dtype)[..., None]  # [52, 3, 1]
        body_pos = root_pos.new_empty(batch + (schema.NUM_BODIES, 3))
        body_mat = root_pos.new_empty(batch + (schema.NUM_BODIES, 3, 3))
        body_pos[..., 0, :] = root_pos
        body_mat[..., 0, :, :] = quat_to_matrix(root_rot)
        for idx, par in level_index(root_pos.device):
            parent = body_mat[..., par, :, :]
            body_pos[..., idx, :] = body_pos[..., par, :] + (parent @ offsets[idx]).squeeze(-1)
            body_mat[..., idx, :, :] = parent @ local[..., idx - 1, :, :]
        return body_pos, body_mat

    def velocities(
        self, body_pos: Tensor, body_rot: Tensor, joint_angles: Tensor, joint_vel: Tensor,
        root_linvel: Tensor, root_angvel_world: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """World linear and angular velocities of all bodies [..., 52, 3] from joint rates.
        body_rot may be quaternions [..., 52, 4] or matrices [..., 52, 3, 3].

        For hinges x, y, z in series the relative angular velocity in the parent frame is
        a' e_x + b' Rx(a) e_y + c' Rx(a) Ry(b) e_z.
        """
        batch = body_pos.shape[:-2]
        mats = body_rot if body_rot.shape[-1] == 3 else quat_to_matrix(body_rot)
        ang = joint_angles.reshape(batch + (schema.NUM_JOINTS, 3))
        rate = joint_vel.reshape(batch + (schema.NUM_JOINTS, 3))
        a, b = ang[..., 0], ang[..., 1]
        ca, sa, cb, sb = torch.cos(a), torch.sin(a), torch.cos(b), torch.sin(b)
        ra, rb, rc = rate.unbind(-1)
        w_rel = torch.stack([ra + rc * sb, rb * ca - rc * sa * cb, rb * sa + rc * ca * cb], -1)  # parent frame
        # rotate every joint's relative angular velocity into the world with its parent's rotation at once
        parents = torch.as_tensor(schema.BODY_PARENTS[1:], device=body_pos.device)
        w_world = (mats[..., parents, :, :] @ w_rel[..., None]).squeeze(-1)  # [..., 51, 3]
        lin = body_pos.new_empty(batch + (schema.NUM_BODIES, 3))
        angv = body_pos.new_empty(batch + (schema.NUM_BODIES, 3))
        lin[..., 0, :], angv[..., 0, :] = root_linvel, root_angvel_world
        for idx, par in level_index(body_pos.device):
            w_par = angv[..., par, :]
            angv[..., idx, :] = w_par + w_world[..., idx - 1, :]
            lin[..., idx, :] = lin[..., par, :] + torch.cross(w_par, body_pos[..., idx, :] - body_pos[..., par, :], dim=-1)
        return lin, angv
