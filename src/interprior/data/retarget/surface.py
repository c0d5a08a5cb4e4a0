"""Exact distances from points to an object's triangle mesh, fast for scanned meshes too (OMOMO's have 30-55k
triangles; `interprior.data.synth.meshdist.MeshDistance` tests every triangle, meant for the generated objects'
12-200).

Each query first takes the exact distance to the triangles of its `K` nearest triangle centres (a KD-tree): an
upper bound d. Only triangles whose bounding sphere comes within d can hold a nearer point, and those are
measured exactly (Ericson's closest point on a triangle, as `meshdist`). The sign, as `meshdist`: the side of the
nearest triangle's plane (among equally near ones, the one whose normal is most aligned with the offset); a mesh
that is not watertight (a scan with holes: which side is inside is not defined) gives unsigned distances.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from interprior.data.synth.meshdist import MeshDistance, closest_on_triangles

K = 8  # nearest triangle centres giving the first upper bound
CHUNK = 1024  # query points per batch (bounded memory)
BRUTE = 256  # meshes with at most this many triangles: every point against every triangle (`MeshDistance`)
PAIRS = 65536  # point-triangle pairs per batch there


class SurfaceDistance:
    """Signed distance and nearest surface point of a closed triangle mesh (object frame; negative inside)."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, closed: bool = True):
        self.closed = closed  # an open mesh (a scan with holes) has no inside: its distances are all >= 0
        v = np.asarray(vertices, dtype=np.float64)
        f = np.asarray(faces, dtype=np.int64)
        area = np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=-1)
        f = f[area > 1e-14]  # degenerate triangles have no closest point of their own
        self.vertices, self.lo, self.hi = v, v.min(axis=0), v.max(axis=0)
        self.a, self.b, self.c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
        n = np.cross(self.b - self.a, self.c - self.a)
        self.normal = n / np.linalg.norm(n, axis=-1, keepdims=True)
        self.centre = (self.a + self.b + self.c) / 3.0
        self.radius = np.linalg.norm(np.stack([self.a, self.b, self.c]) - self.centre, axis=-1).max(axis=0)
        # the largest 1 % of triangles are measured for every point, the others found through their centres
        self.small_radius = float(np.percentile(self.radius, 99))
        self.big = np.flatnonzero(self.radius > self.small_radius)
        self.small = np.flatnonzero(self.radius <= self.small_radius)
        self.tree = cKDTree(self.centre[self.small])
        self.small_mesh = MeshDistance(v, f) if len(f) <= BRUTE else None

    @classmethod
    def from_mesh(cls, mesh) -> SurfaceDistance:
        """From a trimesh; closed when it is watertight."""
        return cls(np.asarray(mesh.vertices), np.asarray(mesh.faces), bool(mesh.is_watertight))

    def _pairs(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(point, triangle) index pairs that may hold each point's nearest surface point."""
        n, k = len(points), min(K, len(self.small))
        near = self.small[self.tree.query(points, k=k)[1].reshape(n, k)]
        first = np.concatenate([near, np.broadcast_to(self.big, (n, len(self.big)))], 1)
        rows = np.repeat(np.arange(n), first.shape[1])
        bound = self._measure(points[rows], first.ravel())[0].reshape(n, -1).min(axis=1)
        balls = self.tree.query_ball_point(points, bound + self.small_radius)
        rows = np.repeat(np.arange(n), [len(b) for b in balls])
        tris = self.small[np.fromiter((t for b in balls for t in b), dtype=np.int64, count=len(rows))]
        rows, tris = np.concatenate([rows, np.repeat(np.arange(n), len(self.big))]), np.concatenate(
            [tris, np.tile(self.big, n)])
        keep = np.linalg.norm(points[rows] - self.centre[tris], axis=-1) - self.radius[tris] <= bound[rows] + 1e-9
        return rows[keep], tris[keep]

    def _measure(self, points: np.ndarray, tris: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance and closest point of each point [M, 3] to its triangle `tris` [M]."""
        with np.errstate(divide="ignore", invalid="ignore"):
            q = closest_on_triangles(points[:, None], self.a[tris, None], self.b[tris, None], self.c[tris, None])[:, 0]
        return np.linalg.norm(points - q, axis=-1), q

    def nearest(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per point [N, 3]: the nearest surface point [N, 3], the signed distance [N] and the normal [N, 3] of
        the triangle that decides the sign."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        chunk = CHUNK if len(self.centre) > BRUTE else max(1, PAIRS // len(self.centre))
        parts = [self._nearest(points[i:i + chunk]) for i in range(0, len(points), chunk)] or [
            (np.empty((0, 3)), np.empty(0), np.empty((0, 3)))]
        return tuple(np.concatenate(x) for x in zip(*parts, strict=True))

    def _nearest(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if len(self.centre) <= BRUTE:
            return self._brute(points)
        rows, tris = self._pairs(points)
        dist, q = self._measure(points[rows], tris)
        best = np.full(len(points), np.inf)
        np.minimum.at(best, rows, dist)
        off = points[rows] - q
        along = (off * self.normal[tris]).sum(-1) / np.maximum(dist, 1e-12)
        score = np.where(dist <= best[rows] + 1e-9, np.abs(along), -1.0)  # the most aligned of the nearest
        order = np.lexsort((-score, rows))
        first = order[np.r_[0, np.flatnonzero(np.diff(rows[order])) + 1]]
        side = np.where((along[first] < 0) & self.closed, -1.0, 1.0)
        return q[first], side * dist[first], self.normal[tris[first]]

    def _brute(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`_nearest` against every triangle at once (small meshes)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            q = closest_on_triangles(points[:, None], self.a[None], self.b[None], self.c[None])  # [n, F, 3]
        off = points[:, None] - q
        dist = np.linalg.norm(off, axis=-1)
        along = (off * self.normal[None]).sum(-1) / np.maximum(dist, 1e-12)
        near = dist <= dist.min(axis=1, keepdims=True) + 1e-9
        pick = np.argmax(np.where(near, np.abs(along), -1.0), axis=1)
        at = np.arange(len(points))
        side = np.where((along[at, pick] < 0) & self.closed, -1.0, 1.0)
        return q[at, pick], side * dist[at, pick], self.normal[pick]

    def signed(self, points: np.ndarray, far: float = np.inf) -> np.ndarray:
        """[N] signed distances (as `MeshDistance.signed`: points more than `far` outside the bounding box get
        their distance to the box, a lower bound)."""
        if self.small_mesh is not None:
            out = self.small_mesh.signed(points, far)
            return out if self.closed else np.abs(out)
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        out = np.linalg.norm(np.maximum(np.maximum(self.lo - p, p - self.hi), 0.0), axis=-1)
        todo = np.flatnonzero(out <= far)
        if todo.size:
            out[todo] = self.nearest(p[todo])[1]
        return out
