"""Batched HOI simulator over any backend: PD action mapping, full humanoid/object state, contacts, features.

Derived quantities are computed from the backend's final qpos/qvel with torch forward kinematics, so they
describe the state *after* the last physics step (MuJoCo's own xpos/sensors describe the state before it).
Contact sensors are MuJoCo's native `<contact>` sensors of the last physics step, split into object contact
and ground contact per body.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from interprior import schema
from interprior.assets.scene import Scene
from interprior.rotations import matrix_to_quat, quat_apply, quat_apply_inverse
from interprior.sim.kinematics import KinematicTree

CONTACT_FORCE_THRESHOLD = 0.1  # N; a body is in contact when a contact sensor reports a force above this


@dataclass
class SimState:
    """Batched simulated state, N envs, K objects. World frame, wxyz quaternions."""

    root_pos: Tensor  # [N, 3]
    root_rot: Tensor  # [N, 4]
    root_linvel: Tensor  # [N, 3]
    root_angvel: Tensor  # [N, 3] world frame
    dof_pos: Tensor  # [N, D] variant's hinge angles (schema order)
    dof_vel: Tensor  # [N, D]
    body_pos: Tensor  # [N, 52, 3]
    body_rot: Tensor  # [N, 52, 4]
    body_linvel: Tensor  # [N, 52, 3]
    body_angvel: Tensor  # [N, 52, 3]
    obj_pos: Tensor  # [N, K, 3]
    obj_rot: Tensor  # [N, K, 4]
    obj_linvel: Tensor  # [N, K, 3]
    obj_angvel: Tensor  # [N, K, 3] world frame
    object_force: Tensor  # [N, 52, 3] net contact force on each body from the objects
    ground_force: Tensor  # [N, 52, 3] net contact force on each body from the ground
    object_contact: Tensor  # [N, 52] bool
    ground_contact: Tensor  # [N, 52] bool
    nearest_object_vec: Tensor  # [N, 52, 3] from each body to the nearest surface point of object 0

    def to(self, device) -> "SimState":
        return SimState(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def with_rows(self, env_ids: Tensor, rows: "SimState") -> "SimState":
        """A copy with the given envs replaced by `rows` (e.g. the state of envs that were just reset)."""
        return SimState(**{f.name: getattr(self, f.name).index_put((env_ids,), getattr(rows, f.name))
                           for f in fields(self)})


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


@contextmanager
def _all_cores(device):
    """Temporarily use all CPU threads (callers may have pinned torch to one thread for small kernels)."""
    before = torch.get_num_threads()
    wanted = os.cpu_count() or 1
    if device.type != "cpu" or before >= wanted:
        yield
        return
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def nearest_point_vectors(body_pos: Tensor, obj_pos: Tensor, obj_rot: Tensor, points: Tensor) -> Tensor:
    """[N, B, 3] world vectors from each body to its nearest object surface point.
    points [P, 3] in the object frame; obj_pos [N, 3]; obj_rot [N, 4]. Bodies are moved into the object frame so
    all envs share one point set and the search is one matrix product."""
    rot = obj_rot.float()[:, None, :].expand(-1, body_pos.shape[1], -1)
    local = quat_apply_inverse(rot, body_pos.float() - obj_pos.float()[:, None, :])  # [N, B, 3]
    pts = points.float()
    # argmin |b − p|² = argmax (b·p − |p|²/2): one matmul with the points augmented by −|p|²/2
    aug_pts = torch.cat([pts, -0.5 * pts.square().sum(-1, keepdim=True)], dim=-1)  # [P, 4]
    aug_body = torch.cat([local.reshape(-1, 3), torch.ones_like(local.reshape(-1, 3)[:, :1])], dim=-1)
    with _all_cores(local.device):  # the one large reduction of a step: worth every core even mid-rollout
        nearest = pts[(aug_body @ aug_pts.T).argmax(dim=-1)].reshape(local.shape)
    return quat_apply(rot, nearest - local).to(body_pos.dtype)


class BatchedSim:
    def __init__(self, scene: Scene, backend, out_dtype: torch.dtype = torch.float32):
        self.scene = scene
        self.backend = backend
        self.num_envs = backend.num_envs
        self.device = backend.device
        self.out_dtype = out_dtype
        lay = scene.layout
        dev, dt = backend.device, backend.dtype
        self.tree = KinematicTree.from_model(scene.model, dtype=dt, device=dev)
        self.num_dofs = len(lay.dof_qpos_adr)
        self._dof_index = torch.as_tensor(scene.variant.dof_index, device=dev)
        self._dof_q = torch.as_tensor(lay.dof_qpos_adr, device=dev)
        self._dof_v = torch.as_tensor(lay.dof_qvel_adr, device=dev)
        k = lay.num_objects
        self._obj_q = torch.as_tensor(lay.object_qpos_adr, device=dev)[:, None] + torch.arange(7, device=dev)
        self._obj_v = torch.as_tensor(lay.object_qvel_adr, device=dev)[:, None] + torch.arange(6, device=dev)
        self._ground = torch.as_tensor(lay.ground_sensor_adr, device=dev)[:, None] + torch.arange(4, device=dev)
        self._objsens = (torch.as_tensor(lay.object_sensor_adr, device=dev)[..., None] + torch.arange(4, device=dev))
        self.action_offset = torch.as_tensor(lay.action_offset, dtype=dt, device=dev)
        self.action_scale = torch.as_tensor(lay.action_scale, dtype=dt, device=dev)
        pts = [np.asarray(a.surface_points) for a in scene.config.objects]
        self.object_points = torch.as_tensor(pts[0], dtype=dt, device=dev) if pts else None
        self.num_objects = k
        self.nq, self.nv = scene.model.nq, scene.model.nv
        self.seconds = 0.0  # wall time spent stepping and extracting state (for overhead reports)

    # --- control --------------------------------------------------------------------------------------------
    def action_to_targets(self, action: Tensor) -> Tensor:
        """a in [-1, 1]^D (clipped) -> PD targets offset + scale * a."""
        a = action.to(self.device, self.action_scale.dtype).clamp(-1.0, 1.0)
        return self.action_offset + self.action_scale * a

    def step(self, action: Tensor | None = None, targets: Tensor | None = None) -> None:
        if (action is None) == (targets is None):
            raise ValueError("step needs exactly one of action or targets")
        ctrl = self.action_to_targets(action) if action is not None else targets
        start = time.perf_counter()
        self.backend.step(ctrl)
        self.seconds += time.perf_counter() - start

    # --- reset ----------------------------------------------------------------------------------------------
    def reset(self, env_ids: Tensor, state: ResetState) -> None:
        dt, dev = self.backend.dtype, self.device
        n = len(env_ids)
        qpos = torch.zeros(n, self.nq, dtype=dt, device=dev)
        qvel = torch.zeros(n, self.nv, dtype=dt, device=dev)
        root_rot = state.root_rot.to(dev, dt)
        qpos[:, 0:3] = state.root_pos.to(dev, dt)
        qpos[:, 3:7] = root_rot
        qpos[:, self._dof_q] = state.dof_pos.to(dev, dt)
        qvel[:, 0:3] = state.root_linvel.to(dev, dt)
        qvel[:, 3:6] = quat_apply_inverse(root_rot, state.root_angvel.to(dev, dt))  # free joint: body frame
        qvel[:, self._dof_v] = state.dof_vel.to(dev, dt)
        if self.num_objects:
            orot = state.obj_rot.to(dev, dt)
            qpos[:, self._obj_q[:, :3]] = state.obj_pos.to(dev, dt)
            qpos[:, self._obj_q[:, 3:]] = orot
            qvel[:, self._obj_v[:, :3]] = state.obj_linvel.to(dev, dt)
            qvel[:, self._obj_v[:, 3:]] = quat_apply_inverse(orot, state.obj_angvel.to(dev, dt))
        self.backend.reset(env_ids.to(dev), qpos, qvel)

    # --- state ----------------------------------------------------------------------------------------------
    def full_joint_angles(self, dof: Tensor) -> Tensor:
        """Variant hinge values [N, D] -> all 153 (welded joints at zero)."""
        full = dof.new_zeros(dof.shape[:-1] + (schema.NUM_DOFS,))
        full[..., self._dof_index] = dof
        return full

    def state(self, env_ids: Tensor | None = None) -> SimState:
        """Full state of all envs, or of `env_ids` only (rows in that order)."""
        start = time.perf_counter()
        try:
            return self._state(env_ids)
        finally:
            self.seconds += time.perf_counter() - start

    def _state(self, env_ids: Tensor | None) -> SimState:
        qpos, qvel, sens = self.backend.qpos(), self.backend.qvel(), self.backend.sensordata()
        if env_ids is not None:
            ids = env_ids.to(qpos.device)
            qpos, qvel, sens = qpos[ids], qvel[ids], sens[ids]
        root_pos, root_rot = qpos[:, 0:3], qpos[:, 3:7]
        root_linvel = qvel[:, 0:3]
        root_angvel = quat_apply(root_rot, qvel[:, 3:6])
        dof_pos, dof_vel = qpos[:, self._dof_q], qvel[:, self._dof_v]
        angles, rates = self.full_joint_angles(dof_pos), self.full_joint_angles(dof_vel)
        body_pos, body_mat = self.tree.forward_matrices(root_pos, root_rot, angles)
        body_rot = matrix_to_quat(body_mat)
        body_lin, body_ang = self.tree.velocities(body_pos, body_mat, angles, rates, root_linvel, root_angvel)
        ground = sens[:, self._ground]  # [N, 52, 4] (found, force xyz)
        ground_force = ground[..., 1:]
        if self.num_objects:
            objs = sens[:, self._objsens]  # [N, 52, K, 4]
            object_force = objs[..., 1:].sum(dim=2)
            obj_q, obj_v = qpos[:, self._obj_q], qvel[:, self._obj_v]
            obj_pos, obj_rot = obj_q[..., :3], obj_q[..., 3:]
            obj_lin, obj_ang = obj_v[..., :3], quat_apply(obj_rot, obj_v[..., 3:])
            nearest = nearest_point_vectors(body_pos, obj_pos[:, 0], obj_rot[:, 0], self.object_points)
        else:
            n = qpos.shape[0]
            object_force = torch.zeros_like(ground_force)
            obj_pos = obj_lin = obj_ang = qpos.new_zeros(n, 0, 3)
            obj_rot = qpos.new_zeros(n, 0, 4)
            nearest = torch.zeros_like(body_pos)
        out = self.out_dtype
        return SimState(
            root_pos=root_pos.to(out), root_rot=root_rot.to(out), root_linvel=root_linvel.to(out),
            root_angvel=root_angvel.to(out), dof_pos=dof_pos.to(out), dof_vel=dof_vel.to(out),
            body_pos=body_pos.to(out), body_rot=body_rot.to(out), body_linvel=body_lin.to(out),
            body_angvel=body_ang.to(out), obj_pos=obj_pos.to(out), obj_rot=obj_rot.to(out),
            obj_linvel=obj_lin.to(out), obj_angvel=obj_ang.to(out),
            object_force=object_force.to(out), ground_force=ground_force.to(out),
            object_contact=object_force.norm(dim=-1) > CONTACT_FORCE_THRESHOLD,
            ground_contact=ground_force.norm(dim=-1) > CONTACT_FORCE_THRESHOLD,
            nearest_object_vec=nearest.to(out),
        )
