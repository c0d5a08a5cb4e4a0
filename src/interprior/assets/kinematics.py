"""Batched forward kinematics of the humanoid in torch (device-agnostic).

Hinges sit at body origins. For SMPL-X and the toy body, body frames carry no rotation of their own (see the
humanoid builder), so
    R_child = R_parent · Rx(a) Ry(b) Rz(c),   p_child = p_parent + R_parent · offset_child;
any other body (a robot's single hinges about their own axes, in rotated frames) goes through `Hinges`:
    R_child = R_parent · F_child · R(axis_1, q_1) ... R(axis_K, q_K).
Any tree of such bodies (`parents`; SMPL-X by default) is processed level by level (SMPL-X: 11 levels), each level one batched operation over envs and bodies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from interprior import schema
from interprior.rotations import matrix_from_euler_xyz, matrix_to_quat, quat_to_matrix


_LEVEL_INDEX: dict = {}


def tree_levels(parents: tuple[int, ...]) -> list[list[int]]:
    """Bodies by depth (root excluded): one batched step per level."""
    depth = [0] * len(parents)
    for i in range(1, len(parents)):
        depth[i] = depth[parents[i]] + 1
    return [[i for i in range(len(parents)) if depth[i] == d] for d in range(1, max(depth) + 1)]


def level_index(device, parents: tuple[int, ...] = schema.BODY_PARENTS) -> list[tuple[Tensor, Tensor]]:
    """(bodies, parents) index tensors of each tree level, cached per tree and device."""
    key = (parents, str(device))
    if key not in _LEVEL_INDEX:
        _LEVEL_INDEX[key] = [
            (torch.tensor(lv, device=device), torch.tensor([parents[i] for i in lv], device=device))
            for lv in tree_levels(parents)
        ]
    return _LEVEL_INDEX[key]


@dataclass
class Hinges:
    """Any hinge axes and body frames, padded to K hinges per body: what bodies other than the x, y, z Euler ones
    (a robot's single hinges in rotated frames) need for forward kinematics."""

    axes: Tensor  # [B - 1, K, 3] unit axes in each body's frame (padding: zero)
    dof: Tensor  # [B - 1, K] long, each hinge's position in the full joint vector (padding: -1)
    frames: Tensor  # [B - 1, 3, 3] each body frame's rotation in its parent's frame

    @classmethod
    def of(cls, body, dtype=torch.float64, device="cpu") -> "Hinges":
        k = max(len(a) for a in body.joint_axes[1:])
        axes = torch.zeros(body.num_bodies - 1, k, 3, dtype=dtype)
        dof = torch.full((body.num_bodies - 1, k), -1, dtype=torch.long)
        for b, body_axes in enumerate(body.joint_axes[1:], start=1):
            for j, axis in enumerate(body_axes):
                axes[b - 1, j] = torch.tensor(axis, dtype=dtype)
                dof[b - 1, j] = body.dof_start[b] + j
        frames = quat_to_matrix(torch.tensor(body.body_frames[1:], dtype=dtype))
        return cls(axes.to(device), dof.to(device), frames.to(device))

    def to(self, dtype=None, device=None) -> "Hinges":
        return Hinges(self.axes.to(dtype=dtype, device=device), self.dof.to(device=device),
                      self.frames.to(dtype=dtype, device=device))

    def rotations(self, joint_angles: Tensor) -> Tensor:
        """[..., B - 1, K, 3, 3] each hinge's rotation (Rodrigues; padding: identity)."""
        angle = joint_angles[..., self.dof.clamp_min(0)] * (self.dof >= 0)  # [..., B - 1, K]
        a = self.axes.to(joint_angles.dtype)
        zero = torch.zeros_like(a[..., 0])
        cross = torch.stack([zero, -a[..., 2], a[..., 1], a[..., 2], zero, -a[..., 0], -a[..., 1], a[..., 0], zero],
                            -1).reshape(a.shape[:-1] + (3, 3))
        eye = torch.eye(3, dtype=a.dtype, device=a.device)
        s, c = torch.sin(angle)[..., None, None], torch.cos(angle)[..., None, None]
        return eye + s * cross + (1.0 - c) * (cross @ cross)

    def local(self, joint_angles: Tensor) -> Tensor:
        """[..., B - 1, 3, 3] each body's rotation in its parent's frame: frame, then its hinges in order."""
        rot = self.rotations(joint_angles)
        out = self.frames.to(joint_angles.dtype) @ rot[..., 0, :, :]
        for k in range(1, rot.shape[-3]):
            out = out @ rot[..., k, :, :]
        return out

    def relative_angular_velocity(self, joint_angles: Tensor, joint_vel: Tensor) -> Tensor:
        """[..., B - 1, 3] each body's angular velocity relative to its parent, in the parent's frame."""
        rot = self.rotations(joint_angles)
        rate = joint_vel[..., self.dof.clamp_min(0)] * (self.dof >= 0)  # [..., B - 1, K]
        turned = self.frames.to(joint_angles.dtype).expand(rot.shape[:-3] + (3, 3))
        w = torch.zeros(rot.shape[:-3] + (3,), dtype=joint_angles.dtype, device=joint_angles.device)
        for k in range(rot.shape[-3]):
            axis = self.axes[:, k].to(joint_angles.dtype)[..., None]  # [B - 1, 3, 1]
            w = w + (turned @ axis).squeeze(-1) * rate[..., k, None]
            turned = turned @ rot[..., k, :, :]
        return w


@dataclass
class KinematicTree:
    offsets: Tensor  # [B, 3] child origin in the parent frame (row 0 unused)
    parents: tuple[int, ...] = schema.BODY_PARENTS
    hinges: Hinges | None = None  # None: x, y, z hinges in unrotated frames (closed-form Euler angles)

    @property
    def num_bodies(self) -> int:
        return len(self.parents)

    @classmethod
    def from_offsets(cls, offsets, dtype=torch.float64, device="cpu",
                     parents: tuple[int, ...] = schema.BODY_PARENTS) -> "KinematicTree":
        return cls(torch.as_tensor(np.asarray(offsets), dtype=dtype, device=device), tuple(parents))

    @classmethod
    def of_body(cls, body, offsets=None, dtype=torch.float64, device="cpu") -> "KinematicTree":
        """The tree of an `Embodiment` (its spec's offsets unless `offsets` are given)."""
        if offsets is None:
            offsets = [b["pos"] for b in body.spec["bodies"]]
        hinges = None if body.euler_xyz else Hinges.of(body, dtype, device)
        return cls(torch.as_tensor(np.asarray(offsets), dtype=dtype, device=device), tuple(body.parents), hinges)

    @classmethod
    def from_model(cls, model, dtype=torch.float64, device="cpu", body=None) -> "KinematicTree":
        """The tree of the humanoid compiled in `model` (bodies 1..B; `body`: its `Embodiment`, SMPL-X if None)."""
        names = schema.BODY_NAMES if body is None else body.body_names
        ids = np.arange(1, len(names) + 1)
        if tuple(model.body(int(i)).name for i in ids) != tuple(names):
            raise ValueError(f"model bodies 1..{len(ids)} are not the humanoid in its body order")
        if body is None or body.euler_xyz:
            if not np.allclose(model.body_quat[ids[1:]], [1, 0, 0, 0]):
                raise ValueError("humanoid body frames must not be rotated")
            return cls.from_offsets(model.body_pos[ids], dtype=dtype, device=device,
                                    parents=schema.BODY_PARENTS if body is None else body.parents)
        return cls.of_body(body, model.body_pos[ids], dtype=dtype, device=device)

    def to(self, dtype=None, device=None) -> "KinematicTree":
        hinges = None if self.hinges is None else self.hinges.to(dtype, device)
        return KinematicTree(self.offsets.to(dtype=dtype, device=device), self.parents, hinges)

    def forward(self, root_pos: Tensor, root_rot: Tensor, joint_angles: Tensor) -> tuple[Tensor, Tensor]:
        """root_pos [..., 3], root_rot [..., 4] wxyz, joint_angles [..., 3 (B - 1)] (x, y, z per body 1..B-1)
        -> body_pos [..., B, 3], body_rot [..., B, 4] (wxyz, w >= 0)."""
        body_pos, body_mat = self.forward_matrices(root_pos, root_rot, joint_angles)
        return body_pos, matrix_to_quat(body_mat)

    def forward_matrices(self, root_pos: Tensor, root_rot: Tensor, joint_angles: Tensor) -> tuple[Tensor, Tensor]:
        """Like `forward`, with rotations as matrices [..., B, 3, 3] (cheaper to compose level by level)."""
        batch = root_pos.shape[:-1]
        nb = self.num_bodies
        if self.hinges is None:
            local = matrix_from_euler_xyz(joint_angles.reshape(batch + (nb - 1, 3)))
        else:
            local = self.hinges.local(joint_angles)
        offsets = self.offsets.to(root_pos.dtype)[..., None]  # [B, 3, 1]
        body_pos = root_pos.new_empty(batch + (nb, 3))
        body_mat = root_pos.new_empty(batch + (nb, 3, 3))
        body_pos[..., 0, :] = root_pos
        body_mat[..., 0, :, :] = quat_to_matrix(root_rot)
        for idx, par in level_index(root_pos.device, self.parents):
            parent = body_mat[..., par, :, :]
            body_pos[..., idx, :] = body_pos[..., par, :] + (parent @ offsets[idx]).squeeze(-1)
            body_mat[..., idx, :, :] = parent @ local[..., idx - 1, :, :]
        return body_pos, body_mat

    def velocities(
        self, body_pos: Tensor, body_rot: Tensor, joint_angles: Tensor, joint_vel: Tensor,
        root_linvel: Tensor, root_angvel_world: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """World linear and angular velocities of all bodies [..., B, 3] from joint rates.
        body_rot may be quaternions [..., B, 4] or matrices [..., B, 3, 3].

        For hinges x, y, z in series the relative angular velocity in the parent frame is
        a' e_x + b' Rx(a) e_y + c' Rx(a) Ry(b) e_z.
        """
        batch = body_pos.shape[:-2]
        mats = body_rot if body_rot.shape[-1] == 3 else quat_to_matrix(body_rot)
        nb = self.num_bodies
        if self.hinges is None:
            ang = joint_angles.reshape(batch + (nb - 1, 3))
            rate = joint_vel.reshape(batch + (nb - 1, 3))
            a, b = ang[..., 0], ang[..., 1]
            ca, sa, cb, sb = torch.cos(a), torch.sin(a), torch.cos(b), torch.sin(b)
            ra, rb, rc = rate.unbind(-1)
            w_rel = torch.stack([ra + rc * sb, rb * ca - rc * sa * cb, rb * sa + rc * ca * cb], -1)  # parent frame
        else:
            w_rel = self.hinges.relative_angular_velocity(joint_angles, joint_vel)
        # rotate every joint's relative angular velocity into the world with its parent's rotation at once
        parents = torch.as_tensor(self.parents[1:], device=body_pos.device)
        w_world = (mats[..., parents, :, :] @ w_rel[..., None]).squeeze(-1)  # [..., B - 1, 3]
        lin = body_pos.new_empty(batch + (nb, 3))
        angv = body_pos.new_empty(batch + (nb, 3))
        lin[..., 0, :], angv[..., 0, :] = root_linvel, root_angvel_world
        for idx, par in level_index(body_pos.device, self.parents):
            w_par = angv[..., par, :]
            angv[..., idx, :] = w_par + w_world[..., idx - 1, :]
            lin[..., idx, :] = lin[..., par, :] + torch.cross(w_par, body_pos[..., idx, :] - body_pos[..., par, :], dim=-1)
        return lin, angv
