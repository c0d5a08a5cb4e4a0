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

from interprior.assets.kinematics import KinematicTree
from interprior.sim.cpu_state import CpuStateReader
from interprior.sim.divergence import DivergenceMonitor
from interprior.sim.nearest import SurfaceIndex
from interprior.assets.scene import Scene
from interprior.data.state import ResetState
from interprior.rotations import matrix_to_quat, quat_apply, quat_apply_inverse

CONTACT_FORCE_THRESHOLD = 0.1  # N; a body is in contact when a contact sensor reports a force above this


@dataclass
class SimState:
    """Batched simulated state, N envs, K objects. World frame, wxyz quaternions."""

    root_pos: Tensor  # [N, 3]
    root_rot: Tensor  # [N, 4]
    root_linvel: Tensor  # [N, 3]
    root_angvel: Tensor  # [N, 3] world frame
    dof_pos: Tensor  # [N, D] the body's simulated hinge angles (its joint order)
    dof_vel: Tensor  # [N, D]
    body_pos: Tensor  # [N, B, 3]
    body_rot: Tensor  # [N, B, 4]
    body_linvel: Tensor  # [N, B, 3]
    body_angvel: Tensor  # [N, B, 3]
    obj_pos: Tensor  # [N, K, 3]
    obj_rot: Tensor  # [N, K, 4]
    obj_linvel: Tensor  # [N, K, 3]
    obj_angvel: Tensor  # [N, K, 3] world frame
    object_force: Tensor  # [N, B, 3] net contact force on each body from the objects
    ground_force: Tensor  # [N, B, 3] net contact force on each body from the ground
    object_contact: Tensor  # [N, B] bool
    ground_contact: Tensor  # [N, B] bool
    nearest_object_vec: Tensor  # [N, B, 3] from each body to the nearest surface point of object 0
    # object 0 is the env's active object (`BatchedSim.set_active`); with several, the others follow in scene order

    def to(self, device) -> "SimState":
        return SimState(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def with_rows(self, env_ids: Tensor, rows: "SimState") -> "SimState":
        """A copy with the given envs replaced by `rows` (e.g. the state of envs that were just reset)."""
        return SimState(**{f.name: getattr(self, f.name).index_put((env_ids,), getattr(rows, f.name))
                           for f in fields(self)})




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
    points in the object frame: [P, 3] shared by all envs, or [N, P, 3] per env (envs with different objects);
    obj_pos [N, 3]; obj_rot [N, 4]. Bodies are moved into the object frame, so the search is one matrix product."""
    rot = obj_rot.float()[:, None, :].expand(-1, body_pos.shape[1], -1)
    local = quat_apply_inverse(rot, body_pos.float() - obj_pos.float()[:, None, :])  # [N, B, 3]
    pts = points.float()
    # argmin |b − p|² = argmax (b·p − |p|²/2): one matmul with the points augmented by −|p|²/2
    aug_pts = torch.cat([pts, -0.5 * pts.square().sum(-1, keepdim=True)], dim=-1)  # [(N,) P, 4]
    aug_body = torch.cat([local, torch.ones_like(local[..., :1])], dim=-1)  # [N, B, 4]
    with _all_cores(local.device):  # the one large reduction of a step: worth every core even mid-rollout
        if pts.dim() == 2:
            best = (aug_body.reshape(-1, 4) @ aug_pts.T).argmax(dim=-1)
            nearest = pts[best].reshape(local.shape)
        else:
            best = (aug_body @ aug_pts.transpose(1, 2)).argmax(dim=-1)  # [N, B]
            nearest = torch.gather(pts, 1, best[..., None].expand(-1, -1, 3))
    return quat_apply(rot, nearest - local).to(body_pos.dtype)


PARKING_SPOT = (100.0, 100.0)  # m; where the objects an env does not use rest, far from any motion
PARKING_GAP = 5.0  # m between parked objects


def parking_poses(object_points: list) -> tuple[Tensor, Tensor]:
    """([K, 3] positions, [K, 4] identity rotations): each object upright on the floor at its own parking place
    (its lowest surface point 5 mm above the floor). Envs of a multi-object scene keep the objects their clip does
    not use there, out of reach."""
    pos = torch.tensor([[PARKING_SPOT[0] + PARKING_GAP * j, PARKING_SPOT[1], 0.005 - float(np.min(p[:, 2]))]
                        for j, p in enumerate(object_points)], dtype=torch.float64).reshape(-1, 3)
    rot = torch.zeros(len(object_points), 4, dtype=torch.float64)
    rot[:, 0] = 1.0
    return pos, rot


class BatchedSim:
    def __init__(self, scene: Scene, backend, out_dtype: torch.dtype = torch.float32):
        self.scene = scene
        self.backend = backend
        self.num_envs = backend.num_envs
        self.device = backend.device
        self.out_dtype = out_dtype
        lay = scene.layout
        dev, dt = backend.device, backend.dtype
        body = scene.body
        self.tree = KinematicTree.from_model(scene.model, dtype=dt, device=dev, body=body)
        self.num_full_dofs = body.num_full_dofs
        self.num_dofs = len(lay.dof_qpos_adr)
        self._dof_index = torch.as_tensor(body.dof_index, device=dev)
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
        self.num_objects = k
        # each env uses one object, its active one; the state lists it first (object 0, what the kernels read) and
        # a reset parks the others out of reach. With one object this is the identity.
        self.active = torch.zeros(self.num_envs, dtype=torch.long, device=dev)
        self.points_by_object = torch.as_tensor(np.stack(pts), dtype=dt, device=dev) if pts else None  # [K, P, 3]
        self.object_points = self.points_by_object[0] if pts else None  # [P, 3] (object 0's, or per env below)
        # CPU: exact KD-tree search per object (the brute-force product below stays for GPU backends)
        on_cpu = torch.device(dev).type == "cpu"
        self._surface = SurfaceIndex(self.points_by_object) if pts and on_cpu else None
        # CPU: the whole state from numpy and MuJoCo's C kinematics (`cpu_state`); the torch path serves GPUs
        self.cpu_reader = CpuStateReader(scene, self._surface) if on_cpu else None
        self._park_pos, self._park_rot = (t.to(dev, dt) for t in parking_poses(pts)) if pts else (None, None)
        self.nq, self.nv = scene.model.nq, scene.model.nv
        self.seconds = 0.0  # wall time spent stepping and extracting state (for overhead reports)
        self.step_seconds = 0.0  # of which in the backend's physics stepping alone
        self.divergence = DivergenceMonitor(self.num_envs, dev)  # diverged envs of the last step, running count

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
        took = time.perf_counter() - start
        self.seconds += took
        self.step_seconds += took
        self.divergence.record(self.backend.diverged())

    @property
    def diverged(self) -> Tensor:
        """[N] bool: envs whose last step diverged (already reset to the model's default state by the backend)."""
        return self.divergence.last

    @property
    def diverged_total(self) -> int:
        """Diverged env-steps since this simulator was made."""
        return self.divergence.total

    # --- objects in use -------------------------------------------------------------------------------------
    def set_active(self, env_ids: Tensor, objects: Tensor) -> None:
        """Envs `env_ids` use object `objects` (indices into the scene's objects) from their next reset on."""
        objects = objects.long()
        if objects.device.type == "cpu" and bool(((objects < 0) | (objects >= max(self.num_objects, 1))).any()):
            # checked where the indices are made (CPU), so a GPU backend never waits on this during resets
            raise ValueError(f"object index out of range 0..{self.num_objects - 1}: {objects.tolist()}")
        self.active[env_ids.to(self.device)] = objects.to(self.device)

    def env_points(self, env_ids: Tensor | None = None) -> Tensor:
        """Object-frame surface points of each env's active object: [P, 3] when every env has the same (one
        object in the scene), else [n, P, 3]."""
        if self.num_objects <= 1:
            return self.object_points
        active = self.active if env_ids is None else self.active[env_ids.to(self.device)]
        return self.points_by_object[active]

    def _rolled(self, active: Tensor) -> Tensor:
        """[n, K] scene object index at each state slot: the active object first, then the others in order."""
        k = self.num_objects
        return (torch.arange(k, device=active.device)[None, :] + active[:, None]) % k

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
            opos, orot, olin, oang = self._scene_order(env_ids, state)
            qpos[:, self._obj_q[:, :3]] = opos
            qpos[:, self._obj_q[:, 3:]] = orot
            qvel[:, self._obj_v[:, :3]] = olin
            qvel[:, self._obj_v[:, 3:]] = quat_apply_inverse(orot, oang)
        self.backend.reset(env_ids.to(dev), qpos, qvel)

    def _scene_order(self, env_ids: Tensor, state: ResetState) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The reset's object poses and velocities [n, K, ...] in the scene's order. `state` lists them as `state()`
        does (active object first) and may hold fewer than K (e.g. only the active one): the rest are parked, at
        rest."""
        dt, dev = self.backend.dtype, self.device
        given = [x.to(dev, dt) for x in (state.obj_pos, state.obj_rot, state.obj_linvel, state.obj_angvel)]
        n, k, g = len(env_ids), self.num_objects, given[0].shape[1]
        if g > k or g < 1:
            raise ValueError(f"reset state holds {g} objects; the scene has {k}")
        if k == 1:
            return tuple(given)
        pos = self._park_pos.expand(n, -1, -1).clone()
        rot = self._park_rot.expand(n, -1, -1).clone()
        lin, ang = torch.zeros_like(pos), torch.zeros_like(pos)
        slots = self._rolled(self.active[env_ids.to(dev)])[:, :g]  # scene index of each given slot
        rows = torch.arange(n, device=dev)[:, None].expand(-1, g)
        for out, x in zip((pos, rot, lin, ang), given):
            out[rows, slots] = x
        return pos, rot, lin, ang

    # --- state ----------------------------------------------------------------------------------------------
    def full_joint_angles(self, dof: Tensor) -> Tensor:
        """Simulated hinge values [N, D] -> the full joint vector (welded joints at zero)."""
        full = dof.new_zeros(dof.shape[:-1] + (self.num_full_dofs,))
        full[..., self._dof_index] = dof
        return full

    def state(self, env_ids: Tensor | None = None) -> SimState:
        """Full state of all envs, or of `env_ids` only (rows in that order)."""
        start = time.perf_counter()
        try:
            return self._state(env_ids)
        finally:
            self.seconds += time.perf_counter() - start

    def _nearest(self, body_pos: Tensor, obj_pos: Tensor, obj_rot: Tensor, env_ids: Tensor | None) -> Tensor:
        """[n, B, 3] vectors from each body to the nearest surface point of its env's active object."""
        if self._surface is None:
            return nearest_point_vectors(body_pos, obj_pos, obj_rot, self.env_points(env_ids))
        active = None
        if self.num_objects > 1:
            active = self.active if env_ids is None else self.active[env_ids.to(self.device)]
        return self._surface.vectors(body_pos, obj_pos, obj_rot, active)

    def _state(self, env_ids: Tensor | None) -> SimState:
        if self.cpu_reader is not None:
            return self._state_cpu(env_ids)
        return self._state_torch(env_ids)

    def _state_cpu(self, env_ids: Tensor | None) -> SimState:
        qpos, qvel, sens = (t.numpy() for t in (self.backend.qpos(), self.backend.qvel(), self.backend.sensordata()))
        active = self.active if env_ids is None else self.active[env_ids.cpu()]
        if env_ids is not None:
            ids = env_ids.cpu().numpy()
            qpos, qvel, sens = qpos[ids], qvel[ids], sens[ids]
        fields = self.cpu_reader.read(qpos, qvel, sens, active.numpy() if self.num_objects > 1 else None)
        out = torch.empty((), dtype=self.out_dtype).numpy().dtype
        return SimState(**{k: torch.from_numpy(v if v.dtype == bool else v.astype(out)) for k, v in fields.items()})

    def _state_torch(self, env_ids: Tensor | None) -> SimState:
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
            obj_q, obj_v = qpos[:, self._obj_q], qvel[:, self._obj_v]  # [n, K, 7], [n, K, 6]
            if self.num_objects > 1:  # the active object first
                active = self.active if env_ids is None else self.active[env_ids.to(self.device)]
                order = self._rolled(active)
                obj_q = torch.gather(obj_q, 1, order[..., None].expand(-1, -1, 7))
                obj_v = torch.gather(obj_v, 1, order[..., None].expand(-1, -1, 6))
            obj_pos, obj_rot = obj_q[..., :3], obj_q[..., 3:]
            obj_lin, obj_ang = obj_v[..., :3], quat_apply(obj_rot, obj_v[..., 3:])
            nearest = self._nearest(body_pos, obj_pos[:, 0], obj_rot[:, 0], env_ids)
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
