"""Object assets: a mesh becomes ≤ 64 convex hulls (CoACD, cached on disk), 1024 surface points, and MJCF.

Layout of an objects folder: ``objects_dir/<name>/<name>.obj`` (InterMimic/OMOMO: meshes centred at their vertex
mean). The **object frame is the mesh file's own frame**: the motion files give the pose of that frame, hull
vertices are written in mesh coordinates, surface points are in mesh coordinates, and the MuJoCo body frame equals
the mesh frame (MuJoCo re-centres mesh geoms internally and compensates with the geom's pose, so a geom placed at
the body origin shows the file's vertices exactly where the file puts them).

Collision geometry (≤ 64 convex hulls from CoACD plus a greedy merge) is made in `interprior.assets.mesh_hulls`;
hulls and surface points are cached on disk by `interprior.assets.object_cache`. This module builds the
`ObjectAsset` and its MJCF, and re-exports the public names of both modules.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from interprior import schema
from interprior.assets import humanoid as hum
from interprior.assets.mesh_hulls import (  # noqa: F401  (re-exported: public API of this module)
    COACD_PARAMS,
    MAX_HULL_VERTICES,
    MIN_COMPONENT_AREA,
    TINY_HULL_VOLUME,
    decompose,
    merge_hulls,
    read_hull,
    read_mesh,
)
from interprior.assets.object_cache import (  # noqa: F401  (re-exported: public API of this module)
    CACHE_VERSION,
    build_entry,
    cache_params,
    default_cache_dir,
    read_entry,
    safe_name,
    sample_surface_points,
)
from interprior.assets.scene import FLOOR, SceneConfig
from interprior.errors import DataFileError

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
    params = cache_params(max_hulls)
    digest = hashlib.sha256(data).hexdigest()
    key = hashlib.sha256((digest + json.dumps(params, sort_keys=True)).encode()).hexdigest()[:20]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = root / f"{safe_name(name)}-{key}"

    meta = read_entry(entry)
    from_cache = meta is not None
    if meta is None:
        meta = build_entry(mesh_path, digest, params, root, entry, max_hulls)
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


# --------------------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------------------
def _fmt(values) -> str:
    return " ".join(f"{float(v):.9g}" for v in values)


def _attr(value: str) -> str:
    return '"' + html.escape(str(value), quote=True) + '"'
