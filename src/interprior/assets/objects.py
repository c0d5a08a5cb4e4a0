"""Object assets: a mesh becomes ≤ 64 convex hulls (CoACD, cached on disk), 1024 surface points, and MJCF.

Layout of an objects folder: ``objects_dir/<name>/<name>.obj`` (InterMimic/OMOMO: meshes centred at their vertex
mean). The **object frame is the mesh file's own frame**: the motion files give the pose of that frame, hull
vertices are written in mesh coordinates, surface points are in mesh coordinates, and the MuJoCo body frame equals
the mesh frame (MuJoCo re-centres mesh geoms internally and compensates with the geom's pose, so a geom placed at
the body origin shows the file's vertices exactly where the file puts them).

Collision geometry (reference: Isaac Gym V-HACD, 64 hulls × 64 vertices):
  1. drop junk components (separate pieces with < 0.5 % of the surface area: stray triangles, slivers) so that a
     mesh whose main part is watertight reaches CoACD as a manifold and is not voxel-remeshed (remeshing fattens
     thin parts by about one voxel);
  2. CoACD with a concavity threshold of 0.03 and a light tree search (the default search is 5× slower on these
     meshes for the same fit), no CoACD merge;
  3. our own greedy merge down to ``max_hulls`` (cost = volume added by merging two hulls, V-HACD's criterion;
     much faster than CoACD's pairwise Hausdorff merge: seconds instead of tens of seconds for 300 pieces);
  4. outward-oriented triangles of each hull, written as .obj (optionally at most MAX_HULL_VERTICES vertices).

Everything is cached under a key made of the sha256 of the mesh bytes and all parameters above; a cache entry is
written into a temporary folder and renamed into place, so an interrupted run never leaves a half entry.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from interprior import schema
from interprior.errors import DataFileError

log = logging.getLogger(__name__)

CACHE_VERSION = 1
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
# Contacts: condim 6 with torsional and rolling friction 0.01 (InterMimic's PhysX shape props: torsion 0.01, rolling
# 0.01). Measured after a 0.5 m drop: with condim 3 (or 4) and no rolling resistance the clothes stand rocks on its
# base disc for > 5 s and the floor lamp, trash can and vacuum take 2.3-2.8 s when tilted; with condim 6 all ten
# sample objects settle in 0.4-2.1 s (tests/test_objects.py). In a contact pair MuJoCo uses the larger condim and
# the larger of each friction coefficient, so humanoid-object contacts are 6-dimensional too.
GEOM_CONDIM = 6
# Light velocity damping on the object's free joint (InterMimic damps objects too: linear/angular 0.01 in PhysX).
# Measured: without it a floor lamp dropped on its round shade rocks for 2.1 s; with 0.02 every sample object
# dropped from 0.5 m (two orientations) is at rest within 1.5 s.
FREE_JOINT_DAMPING = 0.02
TORSIONAL_FRICTION = 0.01
ROLLING_FRICTION = 0.01
HULL_RGBA = "0.55 0.62 0.75 1"


# --------------------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------------------
def find_object_mesh(objects_dir: str | Path, name: str) -> Path:
    """Path of ``objects_dir/<name>/<name>.obj``; DataFileError naming the expected path when it is missing."""
    objects_dir = Path(objects_dir)
    path = objects_dir / name / f"{name}.obj"
    if path.is_file():
        return path
    if not objects_dir.is_dir():
        raise DataFileError(objects_dir, "objects folder not found (expected <objects>/<name>/<name>.obj)")
    available = available_objects(objects_dir)
    listing = ", ".join(available) if available else "none"
    raise DataFileError(path, f"object mesh not found; objects available in {objects_dir}: {listing}")


def available_objects(objects_dir: str | Path) -> list[str]:
    """Names with an ``<name>/<name>.obj`` inside ``objects_dir`` (sorted)."""
    objects_dir = Path(objects_dir)
    if not objects_dir.is_dir():
        return []
    return sorted(d.name for d in objects_dir.iterdir() if (d / f"{d.name}.obj").is_file())


def default_cache_dir() -> Path:
    """``$INTERPRIOR_CACHE/hulls`` when INTERPRIOR_CACHE is set, else ``~/.cache/interprior/hulls``."""
    root = os.environ.get("INTERPRIOR_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "interprior"
    return base / "hulls"


@dataclass
class ObjectAsset:
    """A simulation-ready rigid object. Everything is in the object (= mesh file) frame, metres, SI units."""

    name: str
    mesh_path: Path
    hull_files: list[Path]  # convex hull meshes (.obj) in the cache, mesh coordinates
    surface_points: np.ndarray  # float32 [1024, 3], uniform on the mesh surface, seed 2024
    density: float
    friction: float
    mass: float  # density × total hull volume (what MuJoCo computes from the geoms)
    extents: np.ndarray  # [3] size of the mesh's bounding box
    bounds: np.ndarray = field(default_factory=lambda: np.zeros((2, 3)))  # [2, 3] bbox min / max
    hull_volumes: list[float] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # cache key/dir, timings, parameters, from_cache
    condim: int = GEOM_CONDIM
    _prefix: str = field(default="", repr=False, compare=False)

    @property
    def num_hulls(self) -> int:
        return len(self.hull_files)

    def mesh_names(self, prefix: str = "") -> list[str]:
        return [f"{prefix}{self.name}_hull{k:02d}" for k in range(len(self.hull_files))]

    def asset_xml(self, prefix: str = "") -> str:
        """``<mesh>`` elements (for ``<asset>``), named ``<prefix><name>_hullNN``. A later ``body_xml`` call without
        an explicit prefix uses this one."""
        self._prefix = prefix
        return "\n".join(
            f'    <mesh name={_attr(n)} file={_attr(str(Path(f).resolve()))} inertia="convex"/>'
            for n, f in zip(self.mesh_names(prefix), self.hull_files)
        )

    def body_xml(self, body_name: str, pos: Sequence[float] = (0.0, 0.0, 0.0),
                 quat_wxyz: Sequence[float] = (1.0, 0.0, 0.0, 0.0), prefix: str | None = None) -> str:
        """A free body whose frame is the mesh frame, one mesh geom per hull. ``prefix`` selects the meshes
        emitted by ``asset_xml(prefix)`` (default: the prefix of the last ``asset_xml`` call)."""
        from interprior.assets import humanoid as hum

        prefix = self._prefix if prefix is None else prefix
        lines = [f"    <body name={_attr(body_name)} pos=\"{_fmt(pos)}\" quat=\"{_fmt(quat_wxyz)}\">",
                 f"      <joint name={_attr(body_name + '_free')} type=\"free\" damping=\"{FREE_JOINT_DAMPING:g}\"/>"]
        for k, mesh in enumerate(self.mesh_names(prefix)):
            lines.append(
                f"      <geom name={_attr(f'{body_name}_hull{k:02d}')} type=\"mesh\" mesh={_attr(mesh)} "
                f"density=\"{self.density:g}\" "
                f"friction=\"{self.friction:g} {TORSIONAL_FRICTION:g} {ROLLING_FRICTION:g}\" condim=\"{self.condim}\" "
                f"contype=\"{hum.OBJECT_CONTYPE}\" conaffinity=\"{hum.OBJECT_CONAFFINITY}\" group=\"0\" "
                f"rgba=\"{HULL_RGBA}\"/>"
            )
        lines.append("    </body>")
        return "\n".join(lines)


def load_object(objects_dir: str | Path, name: str, cache_dir: str | Path | None = None,
                max_hulls: int = schema.MAX_CONVEX_HULLS) -> ObjectAsset:
    """Find ``objects_dir/<name>/<name>.obj``, decompose it into ≤ ``max_hulls`` convex hulls and sample its
    surface points, or read both from the cache (``cache_dir``, default ``default_cache_dir()``)."""
    if int(max_hulls) < 1:
        raise ValueError(f"max_hulls must be at least 1, got {max_hulls}")
    mesh_path = find_object_mesh(objects_dir, name)
    return load_mesh_asset(mesh_path, name=name, cache_dir=cache_dir, max_hulls=int(max_hulls))


def load_mesh_asset(mesh_path: str | Path, name: str | None = None, cache_dir: str | Path | None = None,
                    max_hulls: int = schema.MAX_CONVEX_HULLS) -> ObjectAsset:
    """Like ``load_object`` for any mesh file (name defaults to the file stem)."""
    mesh_path = Path(mesh_path)
    name = name or mesh_path.stem
    try:
        data = mesh_path.read_bytes()
    except OSError as e:
        raise DataFileError(mesh_path, f"cannot read mesh file: {e.strerror or e}") from None
    params = _cache_params(max_hulls)
    digest = hashlib.sha256(data).hexdigest()
    key = hashlib.sha256((digest + json.dumps(params, sort_keys=True)).encode()).hexdigest()[:20]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = root / f"{_safe(name)}-{key}"

    meta = _read_entry(entry)
    from_cache = meta is not None
    if meta is None:
        meta = _build_entry(mesh_path, digest, params, root, entry, max_hulls)
    hull_files = [entry / f for f in meta["hull_files"]]
    points = np.load(entry / "surface_points.npy")
    bounds = np.array(meta["bounds"], dtype=np.float64)
    density = _density(mesh_path, sum(meta["hull_volumes"]))
    info = {k: meta[k] for k in ("mesh_sha256", "decompose_seconds", "coacd_pieces", "params") if k in meta}
    info.update(cache_key=key, cache_entry=str(entry), from_cache=from_cache)
    return ObjectAsset(
        name=name, mesh_path=mesh_path, hull_files=hull_files, surface_points=points, density=density,
        friction=schema.FRICTION, mass=float(density * sum(meta["hull_volumes"])),
        extents=bounds[1] - bounds[0], bounds=bounds, hull_volumes=list(meta["hull_volumes"]), info=info,
    )


def _density(mesh_path: Path, hull_volume: float) -> float:
    """The object's density: `schema.OBJECT_DENSITY`, unless a sidecar `<name>.json` beside the mesh gives
    ``{"density": kg/m³}`` or ``{"mass_kg": kg}`` (then density = mass / volume of the convex hulls)."""
    sidecar = mesh_path.with_suffix(".json")
    if not sidecar.is_file():
        return schema.OBJECT_DENSITY
    try:
        spec = json.loads(sidecar.read_text())
    except (OSError, ValueError) as e:
        raise DataFileError(sidecar, f"cannot read object properties ({e})") from None
    keys = set(spec) & {"density", "mass_kg"} if isinstance(spec, dict) else set()
    if len(keys) != 1:
        raise DataFileError(sidecar, 'expected exactly one of "density" (kg/m³) or "mass_kg"')
    key = keys.pop()
    value = spec[key]
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise DataFileError(sidecar, f"{key} must be a positive number, got {value!r}")
    return float(value) if key == "density" else float(value) / hull_volume


def ground_and_object_xml(asset: ObjectAsset, pos: Sequence[float] = (0.0, 0.0, 0.0),
                          quat: Sequence[float] = (1.0, 0.0, 0.0, 0.0), body_name: str | None = None) -> str:
    """A complete MJCF with a ground plane (friction 0.9), 1/120 s implicitfast steps and the object as a free
    body at ``pos`` / ``quat`` (wxyz). Solver options match ``interprior.assets.scene.SceneConfig``'s defaults."""
    from interprior.assets import humanoid as hum
    from interprior.assets.scene import FLOOR, SceneConfig

    cfg = SceneConfig()
    body_name = body_name or asset.name
    return f"""<mujoco model={_attr('object_' + asset.name)}>
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{cfg.physics_dt:.10g}" integrator="implicitfast" cone="pyramidal" solver="Newton"
          iterations="{cfg.solver_iterations}" ls_iterations="{cfg.ls_iterations}"/>
  <asset>
{asset.asset_xml(prefix="")}
  </asset>
  <worldbody>
    <light name="sun" pos="0 0 6" dir="0.2 0.3 -1" directional="true"/>
    <geom name="{FLOOR}" type="plane" size="0 0 0.05" friction="{cfg.friction:g} 0.005 0.0001"
          contype="{hum.GROUND_CONTYPE}" conaffinity="{hum.GROUND_CONAFFINITY}"/>
{asset.body_xml(body_name, pos, quat, prefix="")}
  </worldbody>
</mujoco>
"""


def read_mesh(path: str | Path):
    """The mesh as a ``trimesh.Trimesh`` (faces as in the file, no processing); DataFileError when it cannot be
    read or has no usable triangles."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "mesh file not found")
    try:
        mesh = trimesh.load(str(path), force="mesh", process=False)
    except Exception as e:  # trimesh raises many kinds on malformed files
        raise DataFileError(path, f"cannot parse mesh: {type(e).__name__}: {e}") from None
    if not isinstance(mesh, trimesh.Trimesh):
        raise DataFileError(path, "file holds no triangle mesh")
    if len(mesh.faces) == 0 or len(mesh.vertices) == 0:
        raise DataFileError(path, "mesh has no faces (no triangles could be read from the file)")
    if not np.all(np.isfinite(mesh.vertices)):
        raise DataFileError(path, "mesh has non-finite vertex coordinates")
    if not mesh.area > 0:
        raise DataFileError(path, "mesh has zero surface area")
    return mesh


def sample_surface_points(mesh, count: int = schema.NUM_OBJECT_POINTS,
                          seed: int = schema.OBJECT_POINTS_SEED) -> np.ndarray:
    """``count`` points uniformly (area-weighted) on the mesh surface, fixed seed: float32 [count, 3]."""
    import trimesh

    points, _ = trimesh.sample.sample_surface(mesh, int(count), seed=int(seed))
    return np.ascontiguousarray(points, dtype=np.float32)


def read_hull(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices [V, 3] and faces [F, 3] of a hull .obj written by this module."""
    verts, faces = [], []
    for line in Path(path).read_text().splitlines():
        if line.startswith("v "):
            verts.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("f "):
            faces.append([int(x.split("/")[0]) - 1 for x in line.split()[1:4]])
    return np.array(verts, dtype=np.float64), np.array(faces, dtype=np.int64)


# --------------------------------------------------------------------------------------------------------------
# cache
# --------------------------------------------------------------------------------------------------------------
def _cache_params(max_hulls: int) -> dict:
    return {
        "version": CACHE_VERSION,
        "coacd": COACD_PARAMS,
        "min_component_area": MIN_COMPONENT_AREA,
        "max_hulls": max_hulls,
        "max_hull_vertices": MAX_HULL_VERTICES,
        "tiny_hull_volume": TINY_HULL_VOLUME,
        "num_points": schema.NUM_OBJECT_POINTS,
        "points_seed": schema.OBJECT_POINTS_SEED,
    }


def _read_entry(entry: Path) -> dict | None:
    """The entry's metadata when the entry is complete, else None."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
        files = [entry / f for f in meta["hull_files"]] + [entry / "surface_points.npy"]
        if all(f.is_file() for f in files) and len(meta["hull_volumes"]) == len(meta["hull_files"]):
            return meta
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _build_entry(mesh_path: Path, digest: str, params: dict, root: Path, entry: Path, max_hulls: int) -> dict:
    mesh = read_mesh(mesh_path)
    t0 = time.perf_counter()
    hulls, pieces = decompose(mesh, max_hulls=max_hulls, path=mesh_path)
    seconds = time.perf_counter() - t0
    points = sample_surface_points(mesh)
    used = mesh.vertices[np.unique(mesh.faces)]
    meta = {
        "name": entry.name, "mesh_file": str(mesh_path), "mesh_sha256": digest, "params": params,
        "hull_files": [f"hull_{k:02d}.obj" for k in range(len(hulls))],
        "hull_volumes": [float(v) for _, _, v in hulls],
        "bounds": [used.min(0).tolist(), used.max(0).tolist()],
        "coacd_pieces": pieces, "decompose_seconds": round(seconds, 3),
    }
    log.info("%s: %d CoACD pieces -> %d hulls in %.1f s", mesh_path.name, pieces, len(hulls), seconds)

    tmp = root / f".tmp-{entry.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
    except OSError as e:
        raise DataFileError(root, f"cannot write the hull cache ({e.strerror or e}); set INTERPRIOR_CACHE or pass "
                                  "cache_dir") from None
    try:
        for fname, (verts, faces, _) in zip(meta["hull_files"], hulls):
            _write_obj(tmp / fname, verts, faces)
        np.save(tmp / "surface_points.npy", points)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if entry.exists():  # an incomplete or foreign entry: replace it
            if _read_entry(entry) is not None:
                shutil.rmtree(tmp, ignore_errors=True)  # another process finished first
                return _read_entry(entry)
            shutil.rmtree(entry, ignore_errors=True)
        try:
            os.rename(tmp, entry)
        except OSError:
            if _read_entry(entry) is None:
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # lost a race to an identical entry
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


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
    import heapq

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


# --------------------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------------------
def _write_obj(path: Path, verts: np.ndarray, faces: np.ndarray) -> None:
    lines = [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in verts]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    path.write_text("\n".join(lines) + "\n")


def _fmt(values) -> str:
    return " ".join(f"{float(v):.9g}" for v in values)


def _attr(value: str) -> str:
    return '"' + html.escape(str(value), quote=True) + '"'


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "mesh"
