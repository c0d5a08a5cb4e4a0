"""Object assets (interprior.assets.objects): convex hulls, surface points, body frame, mass, drop test, cache, errors.

Every check runs on the generated objects of the synthetic data set (tests/conftest.py `synth_data`), and on the
OMOMO sample meshes where the repository's sibling folder ../shared is present (never copied into the repo). All
objects share the run's hull cache (conftest `hull_cache`), so each mesh is decomposed at most once per run.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from interprior import schema
from interprior.assets import objects as O
from interprior.data.synth.objects import OBJECT_NAMES
from interprior.errors import DataFileError

SYNTH_NAMES = list(OBJECT_NAMES)  # the generated objects
NAMES = ["clothesstand", "floorlamp", "largetable", "mop", "smalltable",
         "trashcan", "tripod", "vacuum", "whitechair", "woodchair"]

# Drop test (ground_and_object_xml: 1/120 s implicitfast steps, MuJoCo's default soft contacts).
DROP_HEIGHT = 0.5  # lowest hull point above the ground at release
DROP_SECONDS = 4.0
REST_SPEED = 0.01  # m/s, bound on the speed of every hull vertex
# Measured 0.4-1.5 s with the objects' free-joint damping (without it the floor lamp on its round shade rolls 2.1 s).
REST_LIMIT = 2.0  # s
STEADY_SINK = 0.001  # m: penetration while resting
# Impact sink: a 0.5 m drop hits at 3.1 m/s; MuJoCo's soft contact (timeconst 0.02 s, the smallest allowed at 1/120 s
# is 0.0167) lets a contact point that hits at speed v sink about v · timeconst / e ≈ 2.3 cm before it is stopped,
# whatever the geometry (a smaller timestep does not change it). Measured worst case 2.7 cm (tumbling long objects
# whose far end swings down), for one or two 1/120 s steps; resting sink stays below 0.1 mm. Stiffer contacts
# (timeconst below 2 steps with refsafe off) blow up. Tunnelling or a missing hull would not stop at a few cm.
IMPACT_SINK = 0.04
TILT_EULER_XYZ = (0.7, -0.4, 1.1)  # fixed "random-ish" orientation


def _tilt_quat_wxyz() -> tuple[float, ...]:
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_euler("xyz", TILT_EULER_XYZ).as_quat()
    return (w, x, y, z)


ORIENTATIONS = {"identity": (1.0, 0.0, 0.0, 0.0), "tilted": _tilt_quat_wxyz()}


# --------------------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def objects_dir(sample_dir) -> Path:
    return sample_dir / "objects"


@pytest.fixture(scope="session")
def assets(request, synth_data, hull_cache):
    """name -> ObjectAsset, a generated object (SYNTH_NAMES, always there) or a sample mesh (NAMES, skips without
    the sample), decomposed at most once per run (the run's hull cache); records the load time of each."""
    loaded: dict[str, O.ObjectAsset] = {}
    cold_seconds: dict[str, float] = {}

    def get(name: str) -> O.ObjectAsset:
        if name not in loaded:
            folder = synth_data.objects_dir if name in SYNTH_NAMES else request.getfixturevalue("objects_dir")
            if not (folder / name / f"{name}.obj").is_file():
                pytest.skip(f"object {name} not found in {folder}")
            t = time.perf_counter()
            loaded[name] = O.load_object(folder, name, cache_dir=hull_cache)
            cold_seconds[name] = time.perf_counter() - t
        return loaded[name]

    get.cold_seconds = cold_seconds
    return get


def _rotation(quat_wxyz) -> np.ndarray:
    w, x, y, z = quat_wxyz
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def _hull_vertices(asset: O.ObjectAsset) -> list[np.ndarray]:
    return [O.read_hull(f)[0] for f in asset.hull_files]


def _compile(asset: O.ObjectAsset, pos, quat):
    import mujoco

    model = mujoco.MjModel.from_xml_string(O.ground_and_object_xml(asset, pos, quat, body_name="obj"))
    return model, mujoco.MjData(model)


def _geom_vertices(model, body: int) -> list[tuple[int, np.ndarray]]:
    """(geom id, mesh vertices in the geom frame as MuJoCo stores them) for the body's mesh geoms."""
    out = []
    for g in range(model.ngeom):
        if model.geom_bodyid[g] == body and model.geom_dataid[g] >= 0:
            m = model.geom_dataid[g]
            adr, num = model.mesh_vertadr[m], model.mesh_vertnum[m]
            out.append((g, np.array(model.mesh_vert[adr:adr + num], dtype=np.float64)))
    return out


def _point_mesh_distance(points: np.ndarray, mesh, tol: float) -> np.ndarray:
    """Exact distance from each point to the mesh surface when it is below tol, inf otherwise (no rtree needed:
    the candidates of a point are the triangles whose bounding box, grown by tol, holds it, found through a k-d
    tree of bounding-box centres)."""
    from scipy.spatial import cKDTree
    from trimesh.triangles import closest_point

    tri = np.asarray(mesh.triangles, dtype=np.float64)
    lo, hi = tri.min(1) - tol, tri.max(1) + tol
    centre, radius = (lo + hi) / 2, np.linalg.norm(hi - lo, axis=1).max() / 2
    points = np.asarray(points, dtype=np.float64)
    dist = np.full(len(points), np.inf)
    for i, cand in enumerate(cKDTree(centre).query_ball_point(points, radius)):
        cand = np.asarray(cand, dtype=np.int64)
        cand = cand[np.all((lo[cand] <= points[i]) & (points[i] <= hi[cand]), axis=1)]
        if len(cand):
            cp = closest_point(tri[cand], np.repeat(points[i][None], len(cand), 0))
            dist[i] = np.linalg.norm(cp - points[i], axis=1).min()
    return dist


def _every(names, check) -> None:
    """check(name) for every name; one failure does not hide the others."""
    failures = {}
    for name in names:
        try:
            check(name)
        except AssertionError as err:
            failures[name] = str(err).splitlines()[0] if str(err) else "assertion failed"
    assert not failures, failures


# --------------------------------------------------------------------------------------------------------------
# checks of one object asset
# --------------------------------------------------------------------------------------------------------------
def _check_hulls(asset: O.ObjectAsset) -> None:
    """≤ 64 closed convex hulls with outward faces, in mesh coordinates, that cover the mesh surface."""
    from scipy.spatial import ConvexHull

    assert 1 <= asset.num_hulls <= schema.MAX_CONVEX_HULLS
    assert len(asset.hull_volumes) == asset.num_hulls
    planes = []
    for f, vol in zip(asset.hull_files, asset.hull_volumes):
        assert f.suffix == ".obj" and f.is_file()
        verts, faces = O.read_hull(f)
        assert len(verts) >= 4 and (O.MAX_HULL_VERTICES is None or len(verts) <= O.MAX_HULL_VERTICES)
        hull = ConvexHull(verts)
        assert len(hull.vertices) == len(verts)  # every vertex is a hull vertex
        assert hull.volume == pytest.approx(vol, rel=1e-6)
        tri = verts[faces]
        signed = np.einsum("ij,ij->i", np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]),
                           tri[:, 0] - verts.mean(0))
        assert np.all(signed > 0), "hull triangles must face outwards"
        planes.append(hull.equations)
    # Coverage: surface points lie inside (or within a few mm of) the union of the hulls. The few that do not are
    # on stray pieces dropped before the decomposition (each < 0.5 % of the surface area).
    pts = asset.surface_points.astype(np.float64)
    outside = np.min([np.clip((pts @ e[:, :3].T + e[:, 3]).max(1), 0, None) for e in planes], axis=0)
    assert np.mean(outside > 0.003) < 0.01, f"{np.mean(outside > 0.003):.1%} of surface points > 3 mm outside"
    assert outside.max() < 0.01
    # the hulls span the mesh's bounding box (within 2 cm) in mesh coordinates
    allv = np.concatenate(_hull_vertices(asset))
    assert np.all(allv.min(0) <= asset.bounds[0] + 0.02) and np.all(allv.max(0) >= asset.bounds[1] - 0.02)
    assert np.all(allv.min(0) >= asset.bounds[0] - 0.05) and np.all(allv.max(0) <= asset.bounds[1] + 0.05)


def _check_surface_points(asset: O.ObjectAsset) -> None:
    pts = asset.surface_points
    assert pts.shape == (schema.NUM_OBJECT_POINTS, 3) and pts.dtype == np.float32
    mesh = O.read_mesh(asset.mesh_path)
    # deterministic: sampling again gives the same points bit for bit (and the cache holds those)
    np.testing.assert_array_equal(O.sample_surface_points(mesh), pts)
    # on the surface: exact point-to-triangle distance below 1 mm
    dist = _point_mesh_distance(pts, mesh, tol=1e-3)
    assert np.all(dist < 1e-3), f"max distance {dist.max():.2e} m"
    # control: the same points pushed 5 mm off their triangles along the normal are (nearly all) detected as off
    import trimesh

    again, face = trimesh.sample.sample_surface(mesh, len(pts), seed=schema.OBJECT_POINTS_SEED)
    np.testing.assert_allclose(again, pts, atol=1e-6)
    off = _point_mesh_distance(again + 0.005 * mesh.face_normals[face], mesh, tol=1e-3)
    assert np.mean(off < 1e-3) < 0.05
    # inside the mesh's bounding box and spreading over (nearly) all of it
    lo, hi = asset.bounds
    assert np.all(pts >= lo - 1e-6) and np.all(pts <= hi + 1e-6)
    np.testing.assert_allclose(asset.extents, hi - lo)
    assert np.all(np.ptp(pts, axis=0) >= 0.95 * asset.extents)
    # same frame as the reference implementation's (vertex-mean centred) point set, where the sample has one
    ref_file = asset.mesh_path.parent / "sample_points.npy"
    if ref_file.is_file():
        from scipy.spatial import cKDTree

        ref = np.load(ref_file)
        d, _ = cKDTree(pts).query(ref)
        assert d.mean() < 0.025 and d.max() < 0.06


def _check_body_frame(asset: O.ObjectAsset) -> None:
    """After compiling, hull vertices placed with MuJoCo's geom poses equal the file's vertices moved by the body
    pose; the free joint's qpos is that pose and the hull meshes were not changed."""
    import mujoco
    from scipy.spatial import cKDTree

    pos = np.array([0.3, -0.2, 0.9])
    quat = np.array(_tilt_quat_wxyz())
    model, data = _compile(asset, pos, quat)
    mujoco.mj_forward(model, data)
    body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "obj")
    np.testing.assert_allclose(data.xpos[body], pos, atol=1e-9)
    np.testing.assert_allclose(data.xquat[body], quat, atol=1e-9)
    np.testing.assert_allclose(data.qpos[:7], np.concatenate([pos, quat]), atol=1e-9)
    rot = _rotation(quat)
    geoms = _geom_vertices(model, body)
    assert len(geoms) == asset.num_hulls
    for (g, local), file_verts in zip(geoms, _hull_vertices(asset)):
        world = data.geom_xpos[g] + local @ data.geom_xmat[g].reshape(3, 3).T
        expected = pos + file_verts @ rot.T
        assert len(world) == len(expected)
        d, _ = cKDTree(expected).query(world)
        assert d.max() < 1e-6, f"geom {g}: vertices off by {d.max():.2e} m"


def _check_mass(asset: O.ObjectAsset) -> None:
    """MuJoCo's body mass = density × total hull volume (and the asset says so); the density is the schema's
    unless a sidecar <name>.json sets the mass or density (the generated objects have one)."""
    from scipy.spatial import ConvexHull

    model, _ = _compile(asset, (0, 0, 1), (1, 0, 0, 0))
    volume = sum(ConvexHull(v).volume for v in _hull_vertices(asset))
    if not asset.mesh_path.with_suffix(".json").is_file():
        assert asset.density == schema.OBJECT_DENSITY
    assert asset.mass == pytest.approx(asset.density * volume, rel=1e-6)
    assert model.body_mass[1] == pytest.approx(asset.mass, rel=0.02)
    assert model.body_mass[1] > 0.05


def _check_drop(asset: O.ObjectAsset, orientation: str) -> None:
    """Dropped with its lowest point 0.5 m above the ground: lands, comes to rest, and does not sink.
    Sink = depth below the ground of the lowest hull vertex (MuJoCo's mesh vertices placed with the geom poses),
    tracked at every 1/120 s step; the hulls enclose the mesh (_check_hulls), so the mesh sinks no deeper."""
    import mujoco

    quat = ORIENTATIONS[orientation]
    rot = _rotation(quat)
    verts = np.concatenate(_hull_vertices(asset))
    pos = np.array([0.0, 0.0, DROP_HEIGHT - (verts @ rot.T)[:, 2].min()])
    model, data = _compile(asset, pos, quat)
    mujoco.mj_forward(model, data)
    geoms = _geom_vertices(model, 1)
    reach = float(np.linalg.norm(verts, axis=1).max())
    dt = model.opt.timestep

    def lowest() -> float:  # lowest hull vertex: the collision geometry's lowest point
        return min(float((data.geom_xpos[g] + v @ data.geom_xmat[g].reshape(3, 3).T)[:, 2].min()) for g, v in geoms)

    assert lowest() == pytest.approx(DROP_HEIGHT, abs=1e-6)
    steps = int(round(DROP_SECONDS / dt))
    low = np.empty(steps)
    moving_until = 0.0
    for s in range(steps):
        mujoco.mj_step(model, data)
        low[s] = lowest()
        speed = np.linalg.norm(data.qvel[:3]) + np.linalg.norm(data.qvel[3:6]) * reach
        if speed >= REST_SPEED:
            moving_until = (s + 1) * dt
    impact_sink = -low.min()
    steady_sink = -low[-int(0.5 / dt):].min()
    print(f"\n{asset.name} {orientation}: rest after {moving_until:.2f} s, impact sink {impact_sink * 1000:.1f} mm, "
          f"resting sink {steady_sink * 1000:.2f} mm")
    assert low.min() < 0.005, "never reached the ground"
    assert moving_until <= REST_LIMIT, f"still moving after {moving_until:.2f} s"
    assert steady_sink < STEADY_SINK
    assert impact_sink < IMPACT_SINK


def _check_resting_first_frame(clip, asset: O.ObjectAsset) -> None:
    """Independent frame check: the object at the clip's first-frame pose (resting on the floor) has its lowest
    hull point within 2 cm of the ground."""
    rot = _rotation(clip.obj_rot[0].double().numpy())
    world = clip.obj_pos[0].double().numpy() + np.concatenate(_hull_vertices(asset)) @ rot.T
    assert abs(world[:, 2].min()) < 0.02, f"{clip.name}: lowest hull point at z={world[:, 2].min():.3f}"


# --------------------------------------------------------------------------------------------------------------
# generated objects (box, boxes of other sizes, cylinder, a stool that needs many hulls): no sample data needed
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SYNTH_NAMES)
def test_hulls(assets, name):
    asset = assets(name)
    print(f"\n{name}: {asset.num_hulls} hulls (CoACD {asset.info['coacd_pieces']} pieces), "
          f"decomposition {asset.info['decompose_seconds']:.1f} s, load {assets.cold_seconds[name]:.1f} s")
    _check_hulls(asset)


def test_stool_needs_several_hulls(assets):
    """The generated stool (seat on four legs) is concave: one hull would fill the space between the legs."""
    assert assets("stool").num_hulls >= 5 and assets("box").num_hulls == 1


@pytest.mark.parametrize("name", SYNTH_NAMES)
def test_surface_points(assets, name):
    _check_surface_points(assets(name))


@pytest.mark.parametrize("name", SYNTH_NAMES)
def test_body_frame_is_mesh_frame(assets, name):
    _check_body_frame(assets(name))


@pytest.mark.parametrize("name", SYNTH_NAMES)
def test_mass(assets, name):
    _check_mass(assets(name))


@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
@pytest.mark.parametrize("name", SYNTH_NAMES)
def test_drop(assets, name, orientation):
    _check_drop(assets(name), orientation)


def test_object_frame_matches_synthetic_clips(assets, synth_data):
    """Every generated clip starts with its object resting on the floor."""
    for clip in synth_data.clips():
        _check_resting_first_frame(clip, assets(clip.object_name))


def test_second_load_hits_cache(assets, synth_data, hull_cache):
    first = assets("stool")
    t = time.perf_counter()
    again = O.load_object(synth_data.objects_dir, "stool", cache_dir=hull_cache)
    seconds = time.perf_counter() - t
    assert again.info["from_cache"] and seconds < 1.0, f"warm load took {seconds:.2f} s"
    assert again.hull_files == first.hull_files
    np.testing.assert_array_equal(again.surface_points, first.surface_points)
    assert not list(hull_cache.glob(".tmp-*")), "temporary folders left in the cache"


def test_max_hulls_and_cache_key(assets, synth_data, hull_cache):
    """A smaller hull budget is honoured and cached under its own key."""
    full = assets("stool")
    asset = O.load_object(synth_data.objects_dir, "stool", cache_dir=hull_cache, max_hulls=4)
    assert 1 <= asset.num_hulls <= 4 < full.num_hulls
    assert asset.info["cache_key"] != full.info["cache_key"]
    with pytest.raises(ValueError):
        O.load_object(synth_data.objects_dir, "stool", cache_dir=hull_cache, max_hulls=0)


# --------------------------------------------------------------------------------------------------------------
# the OMOMO sample meshes (real data, where ../shared is present): every check above on each of them
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_sample_meshes(assets, objects_dir):
    """Hulls, surface points, body frame and mass of each sample mesh (decomposing them all, cold: about 1 min)."""

    def check(name):
        asset = assets(name)
        print(f"\n{name}: {asset.num_hulls} hulls (CoACD {asset.info['coacd_pieces']} pieces), "
              f"decomposition {asset.info['decompose_seconds']:.1f} s, load {assets.cold_seconds[name]:.1f} s")
        for step in (_check_hulls, _check_surface_points, _check_body_frame, _check_mass):
            step(asset)

    _every(NAMES, check)


@pytest.mark.slow
def test_sample_mesh_drops(assets, objects_dir):
    _every(NAMES, lambda name: [_check_drop(assets(name), o) for o in ORIENTATIONS])


def test_object_frame_matches_omomo_clips(assets, sample_dir):
    """The first OMOMO_new clip of each sample object starts with the object resting on the floor."""
    from interprior.data.intermimic import load_clip

    seen = {}
    for path in sorted((sample_dir / "OMOMO_new").glob("*.pt")):
        name = path.stem.split("_")[1]
        if name in NAMES and name not in seen:
            seen[name] = path
    assert seen, f"no clips of the sample objects in {sample_dir / 'OMOMO_new'}"
    _every(seen, lambda name: _check_resting_first_frame(load_clip(seen[name]), assets(name)))


# --------------------------------------------------------------------------------------------------------------
# synthetic meshes (no sample data needed)
# --------------------------------------------------------------------------------------------------------------
def _write_l_shape(folder: Path, name: str = "lblock") -> Path:
    """A closed L-shaped block (an L profile in x-z extruded along y): concave, so it needs at least two hulls."""
    import trimesh

    profile = np.array([(0, 0), (0.4, 0), (0.4, 0.1), (0.1, 0.1), (0.1, 0.3), (0, 0.3)], dtype=np.float64)
    n = len(profile)
    verts = np.array([(x, y, z) for y in (-0.05, 0.05) for x, z in profile])
    cap = [(3, 4, 5), (3, 5, 0), (3, 0, 1), (3, 1, 2)]  # fan from the reflex corner
    faces = [f for f in cap] + [tuple(n + i for i in f[::-1]) for f in cap]
    for i in range(n):
        j = (i + 1) % n
        faces += [(i, n + j, j), (i, n + i, n + j)]
    mesh = trimesh.Trimesh(verts, faces, process=True)
    mesh.fix_normals()
    assert mesh.is_watertight and mesh.volume > 0
    mesh.vertices -= mesh.vertices.mean(0)
    path = folder / name / f"{name}.obj"
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.export(path)
    return path


def test_synthetic_mesh_cache_and_atomic_write(tmp_path):
    objects = tmp_path / "objects"
    _write_l_shape(objects)
    cache = tmp_path / "cache"
    # leftovers of a killed run: a temporary folder and an incomplete entry must not be mistaken for a cache hit
    cache.mkdir()
    (cache / ".tmp-lblock-dead-0000").mkdir()
    cold = O.load_object(objects, "lblock", cache_dir=cache)
    assert not cold.info["from_cache"]
    entry = Path(cold.info["cache_entry"])
    assert entry.parent == cache and entry.name.startswith("lblock-")
    assert 2 <= cold.num_hulls <= schema.MAX_CONVEX_HULLS
    assert cold.mass == pytest.approx(schema.OBJECT_DENSITY * sum(cold.hull_volumes))
    warm = O.load_object(objects, "lblock", cache_dir=cache)
    assert warm.info["from_cache"]
    np.testing.assert_array_equal(warm.surface_points, cold.surface_points)
    # an entry that lost its metadata is rebuilt, not half-read
    (entry / "meta.json").unlink()
    rebuilt = O.load_object(objects, "lblock", cache_dir=cache)
    assert not rebuilt.info["from_cache"] and (entry / "meta.json").is_file()
    np.testing.assert_array_equal(rebuilt.surface_points, cold.surface_points)
    assert [p.name for p in cache.iterdir() if p.name.startswith(".tmp-") and p.name != ".tmp-lblock-dead-0000"] == []
    # the key follows the mesh bytes: an edited mesh gets a new entry
    mesh_path = objects / "lblock" / "lblock.obj"
    mesh_path.write_text(mesh_path.read_text() + "\n# edited\n")
    edited = O.load_object(objects, "lblock", cache_dir=cache)
    assert edited.info["cache_key"] != cold.info["cache_key"]


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERPRIOR_CACHE", str(tmp_path / "c"))
    assert O.default_cache_dir() == tmp_path / "c" / "hulls"
    monkeypatch.delenv("INTERPRIOR_CACHE")
    assert O.default_cache_dir() == Path.home() / ".cache" / "interprior" / "hulls"


def test_mjcf_prefixes_and_two_copies(tmp_path):
    """Two copies of one asset in one model: meshes prefixed, bodies free, both collide with the ground."""
    import mujoco

    objects = tmp_path / "objects"
    _write_l_shape(objects)
    asset = O.load_object(objects, "lblock", cache_dir=tmp_path / "cache")
    xml = f"""<mujoco><option timestep="{schema.PHYSICS_DT}" integrator="implicitfast"/>
      <asset>{asset.asset_xml(prefix="a_")}{asset.asset_xml(prefix="b_")}</asset>
      <worldbody><geom type="plane" size="0 0 1" contype="2" conaffinity="1"/>
      {asset.body_xml("first", (0, 0, 0.3), (1, 0, 0, 0), prefix="a_")}
      {asset.body_xml("second", (1, 0, 0.3), (1, 0, 0, 0), prefix="b_")}</worldbody></mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    assert model.nmesh == 2 * asset.num_hulls and model.njnt == 2
    data = mujoco.MjData(model)
    for _ in range(240):
        mujoco.mj_step(model, data)
    assert data.xpos[1][2] < 0.3 and data.xpos[2][2] < 0.3  # landed
    assert abs(data.qvel).max() < 0.05


def test_missing_mesh_names_expected_path(tmp_path):
    objects = tmp_path / "objects"
    _write_l_shape(objects)
    with pytest.raises(DataFileError) as err:
        O.load_object(objects, "chair", cache_dir=tmp_path / "cache")
    assert err.value.path == objects / "chair" / "chair.obj"
    assert "not found" in str(err.value) and "lblock" in str(err.value)
    with pytest.raises(DataFileError) as err:
        O.find_object_mesh(tmp_path / "nowhere", "chair")
    assert err.value.path == tmp_path / "nowhere"


@pytest.mark.parametrize("content, problem", [
    ("this is not a mesh\n<html>garbage</html>\n", "no faces"),
    ("", "no faces"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\n", "no faces"),
    ("v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n", "zero surface area"),
    ("v 0 0 0\nv 1 0 0\nv nan 1 0\nf 1 2 3\n", "non-finite"),
])
def test_bad_mesh(tmp_path, content, problem):
    path = tmp_path / "objects" / "junk" / "junk.obj"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(DataFileError) as err:
        O.load_object(tmp_path / "objects", "junk", cache_dir=tmp_path / "cache")
    assert err.value.path == path and problem in str(err.value)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_unreadable_mesh(tmp_path):
    path = tmp_path / "objects" / "dir" / "dir.obj"
    path.mkdir(parents=True)  # a folder where the file should be
    with pytest.raises(DataFileError) as err:
        O.load_mesh_asset(path, cache_dir=tmp_path / "cache")
    assert err.value.path == path


def test_sidecar_sets_mass_or_density(tmp_path):
    import json

    from interprior.assets.objects import load_object
    from interprior.data.synthetic import write_box_mesh
    from interprior.errors import DataFileError

    mesh = write_box_mesh(tmp_path, "box", 0.4)
    cache = tmp_path / "cache"
    assert load_object(tmp_path, "box", cache_dir=cache).mass == pytest.approx(200 * 0.064, rel=1e-3)
    mesh.with_suffix(".json").write_text(json.dumps({"mass_kg": 2.5}))
    asset = load_object(tmp_path, "box", cache_dir=cache)
    assert asset.mass == pytest.approx(2.5) and asset.density == pytest.approx(2.5 / 0.064, rel=1e-3)
    mesh.with_suffix(".json").write_text(json.dumps({"density": 60}))
    assert load_object(tmp_path, "box", cache_dir=cache).mass == pytest.approx(3.84, rel=1e-3)
    for bad in ('{"density": -1}', '{"mass_kg": 1, "density": 2}', "{oops", '{"weight": 3}'):
        mesh.with_suffix(".json").write_text(bad)
        with pytest.raises(DataFileError, match="box.json"):
            load_object(tmp_path, "box", cache_dir=cache)
