"""The on-disk cache of object assets: convex hulls and surface points of a mesh, keyed by content and parameters.

Everything is cached under a key made of the sha256 of the mesh bytes and all decomposition parameters
(`interprior.assets.mesh_hulls`); a cache entry is written into a temporary folder and renamed into place, so an
interrupted run never leaves a half entry. An entry holds ``hull_NN.obj`` files, ``surface_points.npy`` (1024
points sampled uniformly on the mesh surface with a fixed seed) and ``meta.json``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

import numpy as np

from interprior import schema
from interprior.assets.mesh_hulls import (
    COACD_PARAMS,
    MAX_HULL_VERTICES,
    MIN_COMPONENT_AREA,
    TINY_HULL_VOLUME,
    decompose,
    read_mesh,
    write_obj,
)
from interprior.errors import DataFileError

log = logging.getLogger(__name__)

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$INTERPRIOR_CACHE/hulls`` when INTERPRIOR_CACHE is set, else ``~/.cache/interprior/hulls``."""
    root = os.environ.get("INTERPRIOR_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "interprior"
    return base / "hulls"


def sample_surface_points(mesh, count: int = schema.NUM_OBJECT_POINTS,
                          seed: int = schema.OBJECT_POINTS_SEED) -> np.ndarray:
    """``count`` points uniformly (area-weighted) on the mesh surface, fixed seed: float32 [count, 3]."""
    import trimesh

    points, _ = trimesh.sample.sample_surface(mesh, int(count), seed=int(seed))
    return np.ascontiguousarray(points, dtype=np.float32)


def cache_params(max_hulls: int) -> dict:
    """Everything the content of a cache entry depends on, besides the mesh bytes."""
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


def read_entry(entry: Path) -> dict | None:
    """The entry's metadata when the entry is complete, else None."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
        files = [entry / f for f in meta["hull_files"]] + [entry / "surface_points.npy"]
        if all(f.is_file() for f in files) and len(meta["hull_volumes"]) == len(meta["hull_files"]):
            return meta
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def build_entry(mesh_path: Path, digest: str, params: dict, root: Path, entry: Path, max_hulls: int) -> dict:
    """Decompose the mesh, sample its surface points and write the cache entry atomically; its metadata."""
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
            write_obj(tmp / fname, verts, faces)
        np.save(tmp / "surface_points.npy", points)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if entry.exists():  # an incomplete or foreign entry: replace it
            if read_entry(entry) is not None:
                shutil.rmtree(tmp, ignore_errors=True)  # another process finished first
                return read_entry(entry)
            shutil.rmtree(entry, ignore_errors=True)
        try:
            os.rename(tmp, entry)
        except OSError:
            if read_entry(entry) is None:
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # lost a race to an identical entry
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def safe_name(name: str) -> str:
    """`name` reduced to characters safe in a folder name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "mesh"
