"""Mesh reading and convex decomposition of object meshes (≤ 64 convex hulls, written as .obj files).

Collision geometry (reference: Isaac Gym V-HACD, 64 hulls × 64 vertices):
  1. drop junk components (separate pieces with < 0.5 % of the surface area: stray triangles, slivers) so that a
     mesh whose main part is watertight reaches CoACD as a manifold and is not voxel-remeshed (remeshing fattens
     thin parts by about one voxel);
  2. CoACD with a concavity threshold of 0.03 and a light tree search (the default search is 5× slower on these
     meshes for the same fit), no CoACD merge;
  3. our own greedy merge down to ``max_hulls`` (cost = volume added by merging two hulls, V-HACD's criterion;
     much faster than CoACD's pairwise Hausdorff merge: seconds instead of tens of seconds for 300 pieces);
  4. outward-oriented triangles of each hull, written as .obj (optionally at most MAX_HULL_VERTICES vertices).

Hull vertices are in mesh coordinates (the object frame, see `interprior.assets.objects`). The caching of the
results lives in `interprior.assets.object_cache`.
"""

from __future__ import annotations

import heapq
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from interprior import schema
from interprior.assets.text import printable
from interprior.errors import DataFileError

# CoACD arguments (coacd.run_coacd). Measured on the 10 OMOMO sample meshes, 2 CPU cores: 1-12 s each.
COACD_PARAMS: dict = {
    "threshold": 0.03,
    "preprocess_mode": "auto",
    "preprocess_resolution": 50,
    "resolution": 2000,
    "mcts_nodes": 5,
    "mcts_iterations": 30,
    "mcts_max_depth": 1,
    "merge": False,
    "max_convex_hull": -1,
    "seed": 0,
}
MIN_COMPONENT_AREA = 0.005  # fraction of the total surface area below which a separate piece is dropped
# Optional cap on vertices per hull (None: keep CoACD's hulls). Off by default: MuJoCo and MuJoCo Warp find mesh
# support points by hill-climbing the vertex graph, so large hulls cost little, while truncating (qhull, furthest
# points first) shrank the floor lamp's shade by up to 7 mm at 128 vertices and 4 mm at 256.
MAX_HULL_VERTICES: int | None = None
TINY_HULL_VOLUME = 1e-7  # × (largest extent)³: thinner pieces are merged into a neighbour whatever the count


# --------------------------------------------------------------------------------------------------------------
# mesh and hull files
# --------------------------------------------------------------------------------------------------------------
def read_mesh(path: str | Path):
    """The mesh as a ``trimesh.Trimesh`` (faces as in the file, no processing); DataFileError when it cannot be
    read or has no usable triangles."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "mesh file not found")
    source, extra = str(path), {}
    if path.suffix.lower() == ".obj":  # a text format: decoded here (trimesh would guess binary data's charset)
        source = io.BytesIO(_obj_text(path).encode("utf-8"))
        extra = {"file_type": "obj", "resolver": trimesh.resolvers.FilePathResolver(str(path))}
    try:
        mesh = trimesh.load(source, force="mesh", process=False, **extra)
    except Exception as e:  # trimesh raises many kinds on malformed files
        raise DataFileError(path, f"cannot parse mesh: {type(e).__name__}: {printable(str(e))}") from None
    if not isinstance(mesh, trimesh.Trimesh):
        raise DataFileError(path, "file holds no triangle mesh")
    if len(mesh.faces) == 0 or len(mesh.vertices) == 0:
        raise DataFileError(path, "mesh has no faces (no triangles could be read from the file)")
    if not np.all(np.isfinite(mesh.vertices)):
        raise DataFileError(path, "mesh has non-finite vertex coordinates")
    if not mesh.area > 0:
        raise DataFileError(path, "mesh has zero surface area")
    return mesh


def _obj_text(path: Path) -> str:
    """The text of an OBJ file (UTF-8, or Latin-1 for old files with accented comments); DataFileError for binary
    data (NUL bytes or more than 1% control bytes)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataFileError(path, f"cannot read mesh file: {e.strerror or e}") from None
    control = sum(data.count(bytes([b])) for b in range(32) if b not in (9, 10, 11, 12, 13))
    if b"\0" in data or control > 0.01 * len(data):
        raise DataFileError(path, "not a text OBJ mesh (the file holds binary data)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_hull(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices [V, 3] and faces [F, 3] of a hull .obj written by this module."""
    verts, faces = [], []
    for line in Path(path).read_text().splitlines():
        if line.startswith("v "):
            verts.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("f "):
            faces.append([int(x.split("/")[0]) - 1 for x in line.split()[1:4]])
    return np.array(verts, dtype=np.float64), np.array(faces, dtype=np.int64)


def write_obj(path: Path, verts: np.ndarray, faces: np.ndarray) -> None:
    """Write a triangle mesh as a minimal .obj (vertices and 1-based faces)."""
    lines = [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in verts]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    path.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------------------------
# decomposition
# --------------------------------------------------------------------------------------------------------------
def decompose(mesh, max_hulls: int = schema.MAX_CONVEX_HULLS, path: str | Path = "<mesh>"
              ) -> tuple[list[tuple[np.ndarray, np.ndarray, float]], int]:
    """Convex decomposition of a trimesh mesh: [(vertices, outward faces, volume)] with ≤ max_hulls entries, plus
    the number of pieces CoACD produced before merging."""
    import coacd

    clean = _main_components(mesh)
    coacd.set_log_level("error")
    parts = coacd.run_coacd(coacd.Mesh(np.asarray(clean.vertices, np.float64), np.asarray(clean.faces, np.int32)),
                            **COACD_PARAMS)
    scale = float(np.ptp(clean.vertices, axis=0).max())
    hulls = merge_hulls([v for v, _ in parts], max_hulls, tiny_volume=TINY_HULL_VOLUME * scale**3)
    out = []
    for verts in hulls:
        verts = _cap_vertices(verts, MAX_HULL_VERTICES)
        verts, faces, volume = _oriented_hull(verts)
        out.append((verts, faces, volume))
    if not out:
        raise DataFileError(path, "mesh has no volume: convex decomposition produced no solid hull")
    return out, len(parts)


def _main_components(mesh):
    """The mesh without separate pieces under MIN_COMPONENT_AREA of the total area (the largest always stays)."""
    import trimesh

    merged = trimesh.Trimesh(mesh.vertices, mesh.faces, process=True)
    comps = merged.split(only_watertight=False)
    if len(comps) <= 1:
        return merged
    areas = np.array([c.area for c in comps])
    keep = [c for c, a in zip(comps, areas) if a >= MIN_COMPONENT_AREA * areas.sum() or a == areas.max()]
    return trimesh.util.concatenate(keep) if len(keep) > 1 else keep[0]


def _hull_volume(points: np.ndarray) -> tuple[np.ndarray, float]:
    """(hull vertices, volume); a flat or degenerate set gives its unique points and volume 0."""
    from scipy.spatial import ConvexHull, QhullError

    try:
        h = ConvexHull(points)
        return points[h.vertices], float(h.volume)
    except (QhullError, ValueError):
        return np.unique(points, axis=0), 0.0


def merge_hulls(pieces: Sequence[np.ndarray], max_hulls: int, tiny_volume: float = 0.0) -> list[np.ndarray]:
    """Greedy merge of convex pieces (vertex arrays) until at most ``max_hulls`` remain; pieces thinner than
    ``tiny_volume`` are always merged into their cheapest neighbour. Cost of merging A and B:
    vol(hull(A ∪ B)) − vol(A) − vol(B), the volume the merge adds (V-HACD's criterion)."""
    verts, vols = [], []
    for p in pieces:
        p = np.asarray(p, dtype=np.float64)
        if len(p) == 0:
            continue
        v, vol = _hull_volume(p)
        verts.append(v)
        vols.append(vol)
    if not verts:
        return []
    alive = [True] * len(verts)
    lo = [v.min(0) for v in verts]
    hi = [v.max(0) for v in verts]
    scale = float(np.ptp(np.concatenate(verts), axis=0).max()) or 1.0

    def cost(i: int, j: int) -> float:
        return _hull_volume(np.concatenate([verts[i], verts[j]]))[1] - vols[i] - vols[j]

    def gap(i: int, j: int) -> float:
        return float(np.max(np.maximum(lo[i] - hi[j], lo[j] - hi[i]).clip(min=0.0)))

    def merge(i: int, j: int) -> int:
        v, vol = _hull_volume(np.concatenate([verts[i], verts[j]]))
        alive[i] = alive[j] = False
        verts.append(v)
        vols.append(vol)
        alive.append(True)
        lo.append(v.min(0))
        hi.append(v.max(0))
        return len(verts) - 1

    # 1. slivers first: each into the neighbour that costs least (nearest ones only)
    while True:
        tiny = [i for i in range(len(verts)) if alive[i] and vols[i] <= tiny_volume]
        others = [j for j in range(len(verts)) if alive[j]]
        if not tiny or len(others) < 2:
            break
        i = tiny[0]
        cands = [j for j in others if j != i]
        gaps = np.array([gap(i, j) for j in cands])
        near = [j for j, g in zip(cands, gaps) if g <= gaps.min() + 0.02 * scale]
        merge(i, min(near, key=lambda j: cost(i, j)))
    if sum(alive) == 1 and vols[alive.index(True)] <= tiny_volume:
        return []

    # 2. count limit: cheapest pairs among neighbours (bounding boxes within 2 % of the object size)
    count = sum(alive)
    reach = 0.02 * scale
    heap: list = []

    def push(i: int, cands) -> None:
        for j in cands:
            if j != i and alive[j] and gap(i, j) <= reach:
                heapq.heappush(heap, (cost(i, j), i, j))

    if count > max_hulls:
        ids = [i for i in range(len(verts)) if alive[i]]
        for a, i in enumerate(ids):
            push(i, ids[a + 1:])
    while count > max_hulls:
        if not heap:  # no neighbours left within reach: widen it
            reach *= 2.0
            ids = [i for i in range(len(verts)) if alive[i]]
            for a, i in enumerate(ids):
                push(i, ids[a + 1:])
            continue
        _, i, j = heapq.heappop(heap)
        if alive[i] and alive[j]:
            k = merge(i, j)
            count -= 1
            push(k, range(k))
    return [verts[i] for i in range(len(verts)) if alive[i]]


def _cap_vertices(verts: np.ndarray, limit: int | None) -> np.ndarray:
    """At most ``limit`` hull vertices: qhull stops after adding limit − 4 points (furthest first)."""
    from scipy.spatial import ConvexHull, QhullError

    if limit is None or len(verts) <= limit:
        return verts
    try:
        return verts[ConvexHull(verts, qhull_options=f"TA{limit - 4}").vertices]
    except QhullError:
        return verts


def _oriented_hull(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Convex hull with only its own vertices and outward-facing triangles: (vertices, faces, volume)."""
    from scipy.spatial import ConvexHull

    h = ConvexHull(points)
    used = np.unique(h.simplices)
    remap = np.full(len(points), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    verts = points[used]
    faces = remap[h.simplices]
    tri = verts[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    flip = np.einsum("ij,ij->i", normal, h.equations[:, :3]) < 0
    faces[flip] = faces[flip][:, ::-1]
    return verts, faces, float(h.volume)
