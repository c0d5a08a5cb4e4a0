"""State extraction for CPU backends: numpy and MuJoCo's own C kinematics instead of many small torch ops.

`BatchedSim.state` on the CPU spends its time in per-operation overhead (the torch forward kinematics walks the
tree level by level, dozens of tiny kernels per call), not in arithmetic. Here the humanoid's body poses and
velocities come from `mj_kinematics` / `mj_comPos` / `mj_comVel` on the final qpos/qvel, env by env (about 10 us
an env), and everything else is a handful of numpy operations; the result equals the torch path (`batched.py`,
kept for GPU backends) to float64 rounding. Quantities describe the state *after* the last physics step, as there.
"""

from __future__ import annotations

import mujoco
import numpy as np

from interprior.sim.nearest import SurfaceIndex, quat_apply_np

CONTACT_FORCE_THRESHOLD = 0.1  # N (same as batched.CONTACT_FORCE_THRESHOLD)


class BodyKinematics:
    """World poses and velocities of chosen bodies from qpos/qvel, by MuJoCo's C kinematics on one MjData."""

    def __init__(self, model: mujoco.MjModel, body_ids):
        self.model, self.data = model, mujoco.MjData(model)
        ids = np.asarray(body_ids, dtype=np.int64)
        roots = np.asarray(model.body_rootid)[ids]  # cvel is taken at subtree_com of each body's root
        self.num_bodies = len(ids)
        # contiguous ids (the humanoid: bodies 1..52, one root) read as slices: views instead of gathers
        contiguous = len(ids) > 0 and np.array_equal(ids, np.arange(ids[0], ids[0] + len(ids)))
        self.ids = slice(int(ids[0]), int(ids[0]) + len(ids)) if contiguous else ids
        self.root_ids = slice(int(roots[0]), int(roots[0]) + 1) if len(set(roots.tolist())) == 1 else roots

    def __call__(self, qpos: np.ndarray, qvel: np.ndarray) -> tuple[np.ndarray, ...]:
        """qpos [n, nq], qvel [n, nv] -> (pos [n, B, 3], quat [n, B, 4] wxyz with w >= 0, linear velocity of the
        body origin [n, B, 3], angular velocity [n, B, 3]), world frame, float64."""
        m, d, ids, roots = self.model, self.data, self.ids, self.root_ids
        n, b = qpos.shape[0], self.num_bodies
        pos, quat = np.empty((n, b, 3)), np.empty((n, b, 4))
        cvel, com = np.empty((n, b, 6)), np.empty((n, b, 3))
        for i in range(n):
            d.qpos[:] = qpos[i]
            d.qvel[:] = qvel[i]
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            mujoco.mj_comVel(m, d)
            pos[i], quat[i], cvel[i], com[i] = d.xpos[ids], d.xquat[ids], d.cvel[ids], d.subtree_com[roots]
        np.negative(quat, out=quat, where=quat[..., :1] < 0)  # the torch path's sign convention
        ang = cvel[..., :3]
        lin = cvel[..., 3:] + _cross(ang, pos - com)  # spatial velocity moved from the subtree com to the origin
        return pos, quat, lin, ang


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    out[..., 0] = a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1]
    out[..., 1] = a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2]
    out[..., 2] = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    return out


class CpuStateReader:
    """The fields of `SimState` (numpy, float64; contacts bool) from a CPU backend's qpos/qvel/sensordata."""

    def __init__(self, scene, surface: SurfaceIndex | None):
        lay = scene.layout
        self.kinematics = BodyKinematics(scene.model, lay.humanoid_body_ids)
        self.surface = surface
        self.num_objects = lay.num_objects
        self.dof_q, self.dof_v = np.asarray(lay.dof_qpos_adr), np.asarray(lay.dof_qvel_adr)
        self.ground = np.asarray(lay.ground_sensor_adr)[:, None] + np.arange(4)  # [52, 4]
        self.objsens = np.asarray(lay.object_sensor_adr)[..., None] + np.arange(4)  # [52, K, 4]
        self.obj_q = np.asarray(lay.object_qpos_adr)[:, None] + np.arange(7)  # [K, 7]
        self.obj_v = np.asarray(lay.object_qvel_adr)[:, None] + np.arange(6)

    def read(self, qpos: np.ndarray, qvel: np.ndarray, sens: np.ndarray, active: np.ndarray | None) -> dict:
        """Rows of qpos/qvel/sens = envs; `active` [n] each env's active object (None: one object or none)."""
        with np.errstate(invalid="ignore", over="ignore"):  # a diverged env's NaN/inf just propagate
            return self._read(qpos, qvel, sens, active)

    def _read(self, qpos: np.ndarray, qvel: np.ndarray, sens: np.ndarray, active: np.ndarray | None) -> dict:
        body_pos, body_rot, body_lin, body_ang = self.kinematics(qpos, qvel)
        ground_force = sens[:, self.ground][..., 1:]  # [n, 52, 3]
        out = {
            "root_pos": qpos[:, 0:3], "root_rot": qpos[:, 3:7], "root_linvel": qvel[:, 0:3],
            "root_angvel": quat_apply_np(qpos[:, 3:7], qvel[:, 3:6]),  # free joint: body frame -> world
            "dof_pos": qpos[:, self.dof_q], "dof_vel": qvel[:, self.dof_v],
            "body_pos": body_pos, "body_rot": body_rot, "body_linvel": body_lin, "body_angvel": body_ang,
            "ground_force": ground_force,
        }
        n = qpos.shape[0]
        if self.num_objects:
            out["object_force"] = sens[:, self.objsens][..., 1:].sum(axis=2)
            obj_q, obj_v = qpos[:, self.obj_q], qvel[:, self.obj_v]  # [n, K, 7], [n, K, 6]
            if self.num_objects > 1 and active is not None:  # the active object first, then the others in order
                order = (np.arange(self.num_objects)[None, :] + active[:, None]) % self.num_objects
                obj_q = np.take_along_axis(obj_q, order[..., None], axis=1)
                obj_v = np.take_along_axis(obj_v, order[..., None], axis=1)
            out.update(obj_pos=obj_q[..., :3], obj_rot=obj_q[..., 3:], obj_linvel=obj_v[..., :3],
                       obj_angvel=quat_apply_np(obj_q[..., 3:], obj_v[..., 3:]))
            out["nearest_object_vec"] = self.surface.vectors_np(body_pos, obj_q[:, 0, :3], obj_q[:, 0, 3:],
                                                                active if self.num_objects > 1 else None)
        else:
            out["object_force"] = np.zeros_like(ground_force)
            out.update(obj_pos=np.zeros((n, 0, 3)), obj_rot=np.zeros((n, 0, 4)), obj_linvel=np.zeros((n, 0, 3)),
                       obj_angvel=np.zeros((n, 0, 3)), nearest_object_vec=np.zeros_like(body_pos))
        out["object_contact"] = _norm(out["object_force"]) > CONTACT_FORCE_THRESHOLD
        out["ground_contact"] = _norm(ground_force) > CONTACT_FORCE_THRESHOLD
        return out


def _norm(v: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("...i,...i->...", v, v))
