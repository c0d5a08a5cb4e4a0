"""Clip ↔ simulator state. Joint angles always come from the file's body rotations, never its dof columns:
MuJoCo's hinges x, y, z are intrinsic XYZ Euler angles of each body's rotation relative to its parent."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from interprior.assets.embodiment import SMPLX, Embodiment
from interprior.data.clip import Clip, finite_difference
from interprior.data.state import ResetState
from interprior.rotations import (
    euler_xyz_from_quat,
    quat_conj,
    quat_mul,
    quat_to_axis_angle,
    quat_to_matrix,
)

def joint_angles_from_rotations(body_rot: Tensor, body: Embodiment = SMPLX) -> Tensor:
    """[..., B, 4] world body rotations -> [..., full dofs] hinge angles of `body`: intrinsic XYZ Euler angles
    for x, y, z hinges in unrotated frames (SMPL-X, the toy body), else each body's one hinge's angle about its
    axis (the twist of its rotation relative to its parent and its own frame)."""
    rot = body_rot.double()
    local = quat_mul(quat_conj(rot[..., list(body.parents[1:]), :]), rot[..., 1:, :])
    if body.euler_xyz:
        return euler_xyz_from_quat(local).flatten(-2)
    if any(len(a) != 1 for a in body.joint_axes[1:]):
        raise ValueError(f"body {body.name!r}: joint angles from rotations need x, y, z hinges or one hinge per body")
    frames = torch.tensor(body.body_frames[1:], dtype=rot.dtype)
    local = quat_mul(quat_conj(frames), local)  # the hinge's own rotation
    axes = torch.tensor([a[0] for a in body.joint_axes[1:]], dtype=rot.dtype)
    angle = 2.0 * torch.atan2((local[..., 1:] * axes).sum(-1), local[..., 0])
    return torch.remainder(angle + math.pi, 2.0 * math.pi) - math.pi  # q and -q are one rotation


def unwrap(angles: Tensor) -> Tensor:
    """Remove 2π jumps along the time axis (dim 0) so finite differences stay small."""
    step = angles.diff(dim=0)
    correction = -2.0 * math.pi * torch.round(step / (2.0 * math.pi))
    return angles + torch.cat([torch.zeros_like(angles[:1]), correction.cumsum(dim=0)])


def angular_velocity(rot: Tensor, fps: float) -> Tensor:
    """World-frame angular velocity [T, ..., 3] of a quaternion track [T, ..., 4] (central differences)."""
    if rot.shape[0] < 2:
        return torch.zeros(rot.shape[:-1] + (3,), dtype=rot.dtype)
    delta = quat_to_axis_angle(quat_mul(rot[1:], quat_conj(rot[:-1]))) * fps  # between consecutive frames
    out = torch.empty(rot.shape[:-1] + (3,), dtype=rot.dtype)
    out[0], out[-1] = delta[0], delta[-1]
    out[1:-1] = 0.5 * (delta[1:] + delta[:-1])
    return out


class ClipMotion:
    """A clip converted once into simulator coordinates (float64): joint angles, velocities, object track."""

    def __init__(self, clip: Clip, body: Embodiment = SMPLX):
        self.clip = clip
        fps = clip.fps
        self.root_pos = clip.root_pos.double()
        self.root_rot = clip.body_rot[:, 0].double()
        self.joint_angles = unwrap(joint_angles_from_rotations(clip.body_rot, body))  # [T, full dofs]
        self.joint_vel = finite_difference(self.joint_angles, fps)
        self.root_linvel = finite_difference(self.root_pos, fps)
        self.root_angvel = angular_velocity(self.root_rot, fps)
        self.obj_pos = clip.obj_pos.double()
        self.obj_rot = clip.obj_rot.double()
        self.obj_linvel = finite_difference(self.obj_pos, fps)
        self.obj_angvel = angular_velocity(self.obj_rot, fps)
        self.body_pos = clip.body_pos.double()

    @property
    def num_frames(self) -> int:
        return self.clip.num_frames

    def wrapped_angles(self, frames) -> Tensor:
        """Joint angles mapped back into (-π, π] (what the hinge ranges allow)."""
        a = self.joint_angles[frames]
        return torch.remainder(a + math.pi, 2.0 * math.pi) - math.pi

    def reset_state(self, frames: Tensor, variant, num_objects: int = 1):
        """ResetState for the given frames (one env per frame)."""

        dof = list(variant.dof_index)
        k = num_objects
        obj = lambda x: x[frames][:, None, :].expand(-1, k, -1)  # noqa: E731
        return ResetState(
            root_pos=self.root_pos[frames], root_rot=self.root_rot[frames],
            root_linvel=self.root_linvel[frames], root_angvel=self.root_angvel[frames],
            dof_pos=self.wrapped_angles(frames)[:, dof], dof_vel=self.joint_vel[frames][:, dof],
            obj_pos=obj(self.obj_pos), obj_rot=obj(self.obj_rot),
            obj_linvel=obj(self.obj_linvel), obj_angvel=obj(self.obj_angvel),
        )

    def qpos(self, layout, nq: int, frames=None) -> Tensor:
        """[T, nq] MuJoCo qpos for kinematic replay (objects all follow the clip's object track)."""
        frames = torch.arange(self.num_frames) if frames is None else frames
        q = torch.zeros(len(frames), nq, dtype=torch.float64)
        q[:, 0:3] = self.root_pos[frames]
        q[:, 3:7] = self.root_rot[frames]
        dof = torch.as_tensor(list(_variant_dofs(layout)))
        q[:, torch.as_tensor(layout.dof_qpos_adr)] = self.wrapped_angles(frames)[:, dof]
        for adr in layout.object_qpos_adr:
            q[:, adr:adr + 3] = self.obj_pos[frames]
            q[:, adr + 3:adr + 7] = self.obj_rot[frames]
        return q


def _variant_dofs(layout) -> tuple[int, ...]:
    return layout.extra["dof_index"]


def object_points_world(obj_pos: Tensor, obj_rot: Tensor, points: Tensor) -> Tensor:
    """[..., P, 3] world positions of object-frame points for poses [..., 3] / [..., 4] (one matmul)."""
    rot = quat_to_matrix(obj_rot)  # [..., 3, 3]
    return obj_pos[..., None, :] + points.to(obj_pos.dtype) @ rot.transpose(-1, -2)
