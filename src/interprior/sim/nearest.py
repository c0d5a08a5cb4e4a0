"""Exact nearest-surface-point search on the CPU: one KD-tree per object over its object-frame surface points.

`BatchedSim.state` needs, for every env and body, the vector to the nearest surface point of the env's active
object (64 envs x 52 bodies x 1024 points for the CPU preset). The brute-force search
(`batched.nearest_point_vectors`: one matrix product and an argmax over all points) reads and writes the whole
[N, 52, P] score table every control step; a KD-tree per object answers the same queries exactly (float64, no
approximation) by visiting a few leaves per body. Envs are grouped by their active object, one tree query per
object in use. GPU backends keep the brute-force search (no host round trip).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

LEAF_SIZE = 16  # points per KD-tree leaf (8..32 are equally fast for 1024 surface points)


class SurfaceIndex:
    """KD-trees over the surface points of K objects ([K, P, 3] object frame, or [P, 3] for one object)."""

    def __init__(self, points_by_object: Tensor):
        pts = torch.as_tensor(points_by_object).detach().cpu().double()
        if pts.dim() == 2:
            pts = pts[None]
        self.points = [p.numpy().copy() for p in pts]  # float64, one [P, 3] array per object
        self.trees = [cKDTree(p, leafsize=LEAF_SIZE) for p in self.points]

    @property
    def num_objects(self) -> int:
        return len(self.trees)

    def nearest_local(self, local: np.ndarray, objects: np.ndarray | None) -> np.ndarray:
        """Object-frame queries [n, B, 3] (float64) -> the nearest surface point of each env's object [n, B, 3].
        `objects` [n] is each env's object index (None: object 0 for every env)."""
        n, b = local.shape[:2]
        finite = np.isfinite(local).all(axis=-1, keepdims=True)
        if not finite.all():  # a diverged env (NaN/inf): any point will do, its vectors stay non-finite
            local = np.where(finite, local, 0.0)
        if objects is None or self.num_objects == 1:
            _, idx = self.trees[0].query(local.reshape(-1, 3))
            return self.points[0][idx].reshape(n, b, 3)
        out = np.empty_like(local)
        for k in np.unique(objects):
            rows = np.flatnonzero(objects == k)
            _, idx = self.trees[int(k)].query(local[rows].reshape(-1, 3))
            out[rows] = self.points[int(k)][idx].reshape(len(rows), b, 3)
        return out

    def vectors_np(self, body_pos: np.ndarray, obj_pos: np.ndarray, obj_rot: np.ndarray,
                   objects: np.ndarray | None = None) -> np.ndarray:
        """`vectors` on float64 numpy arrays."""
        rot = obj_rot[:, None, :]
        with np.errstate(invalid="ignore", over="ignore"):  # a diverged env's NaN/inf just propagate
            local = quat_apply_np(rot, body_pos - obj_pos[:, None, :], inverse=True)
            return quat_apply_np(rot, self.nearest_local(local, objects) - local)

    def vectors(self, body_pos: Tensor, obj_pos: Tensor, obj_rot: Tensor, objects: Tensor | None = None) -> Tensor:
        """[N, B, 3] world vectors from each body to the nearest surface point of its env's object, like
        `nearest_point_vectors` (body_pos [N, B, 3], obj_pos [N, 3], obj_rot [N, 4] wxyz; `objects` [N] the
        object index of each env, None: object 0). Computed in float64, returned in body_pos's dtype."""
        def np64(t: Tensor) -> np.ndarray:
            return t.detach().cpu().double().numpy()

        objs = None if objects is None else objects.detach().cpu().numpy()
        out = self.vectors_np(np64(body_pos), np64(obj_pos), np64(obj_rot), objs)
        return torch.from_numpy(out).to(body_pos.device, body_pos.dtype)


def quat_apply_np(q: np.ndarray, v: np.ndarray, inverse: bool = False) -> np.ndarray:
    """Rotate vectors v [..., 3] by unit quaternions q [..., 4] wxyz (broadcast), or by their inverse."""
    w, x, y, z = q[..., 0:1], q[..., 1:2], q[..., 2:3], q[..., 3:4]
    if inverse:
        x, y, z = -x, -y, -z
    vx, vy, vz = v[..., 0:1], v[..., 1:2], v[..., 2:3]
    tx, ty, tz = 2.0 * (y * vz - z * vy), 2.0 * (z * vx - x * vz), 2.0 * (x * vy - y * vx)  # t = 2 q_xyz x v
    return np.concatenate([vx + w * tx + (y * tz - z * ty), vy + w * ty + (z * tx - x * tz),
                           vz + w * tz + (x * ty - y * tx)], axis=-1)
