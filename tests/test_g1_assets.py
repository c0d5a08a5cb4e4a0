"""The Unitree G1 fetched at set-up (`interprior assets fetch g1`): the fetch itself offline (a local fake wheel
under a monkeypatched pin), and the scene built from the real files, which skips where they were not fetched."""

import dataclasses
import hashlib
import zipfile

import mujoco
import numpy as np
import pytest

from interprior.assets import g1, g1_body
from interprior.cli import main
from interprior.errors import InterpriorError

needs_g1 = pytest.mark.skipif(not g1.g1_fetched(), reason="Unitree G1 assets not fetched here: run "
                              "`interprior assets fetch g1` (downloads the pinned mjlab wheel from PyPI)")


def _fake_wheel(path, with_xml=True):
    """A small zip laid out like the source wheel: the robot folder and something outside it."""
    with zipfile.ZipFile(path, "w") as zf:
        if with_xml:
            zf.writestr(g1.G1_SOURCE.folder + "g1.xml", "<mujoco/>")
        zf.writestr(g1.G1_SOURCE.folder + "assets/pelvis.STL", b"solid")
        zf.writestr("mjlab/other.py", "print('not extracted')")
    return path.as_uri(), hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def assets_dir(tmp_path, monkeypatch):
    root = tmp_path / "assets"
    monkeypatch.setenv(g1.ASSETS_ENV, str(root))
    return root


def _leftovers(root):
    return sorted(p.name for p in (root / "g1").iterdir()) if (root / "g1").is_dir() else []


def test_missing_assets_name_the_fetch_command(assets_dir, capsys):
    with pytest.raises(InterpriorError, match="run `interprior assets fetch g1`"):
        g1.g1_model_path()
    with pytest.raises(InterpriorError, match="interprior assets fetch g1"):
        g1_body.build_g1_scene()
    assert main(["assets", "path", "g1"]) == 2
    err = capsys.readouterr().err
    assert "interprior assets fetch g1" in err and "Traceback" not in err


def test_sha256_mismatch_is_rejected_and_leaves_no_cache(assets_dir, tmp_path, capsys):
    url, _ = _fake_wheel(tmp_path / "corrupt.whl")  # a different file under the real pin
    with pytest.raises(InterpriorError, match="sha256"):
        g1.fetch_g1(url=url)
    assert not g1.g1_fetched() and _leftovers(assets_dir) == []
    assert main(["assets", "fetch", "g1", "--url", url]) == 2
    assert "does not match the pinned" in capsys.readouterr().err
    assert _leftovers(assets_dir) == []


def test_fetch_extracts_only_the_robot_folder_once(assets_dir, tmp_path, monkeypatch, capsys):
    url, sha = _fake_wheel(tmp_path / "fake.whl")
    monkeypatch.setattr(g1, "G1_SOURCE", dataclasses.replace(g1.G1_SOURCE, sha256=sha))
    assert main(["assets", "fetch", "g1", "--url", url]) == 0
    folder = g1.g1_dir()
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
        "LICENSE", "assets", "assets/pelvis.STL", "g1.xml"]
    assert "BSD 3-Clause" in (folder / "LICENSE").read_text() and g1.G1_SOURCE.url in (folder / "LICENSE").read_text()
    assert g1.g1_model_path() == folder / "g1.xml" and _leftovers(assets_dir) == [g1.G1_SOURCE.tag]
    capsys.readouterr()
    assert main(["assets", "fetch", "g1", "--url", tmp_path.joinpath("gone.whl").as_uri()]) == 0  # no download
    assert "already fetched" in capsys.readouterr().out
    (folder / "g1.xml").write_text("edited")
    assert g1.fetch_g1(force=True, url=url) == folder and (folder / "g1.xml").read_text() == "<mujoco/>"
    assert _leftovers(assets_dir) == [g1.G1_SOURCE.tag]


def test_killed_or_bad_extraction_leaves_no_cache(assets_dir, tmp_path, monkeypatch):
    url, sha = _fake_wheel(tmp_path / "fake.whl")
    monkeypatch.setattr(g1, "G1_SOURCE", dataclasses.replace(g1.G1_SOURCE, sha256=sha))

    def killed(src, dst):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(g1.shutil, "copyfileobj", killed)
        with pytest.raises(KeyboardInterrupt):
            g1.fetch_g1(url=url)
    assert not g1.g1_fetched() and _leftovers(assets_dir) == []
    url, sha = _fake_wheel(tmp_path / "noxml.whl", with_xml=False)
    monkeypatch.setattr(g1, "G1_SOURCE", dataclasses.replace(g1.G1_SOURCE, sha256=sha))
    with pytest.raises(InterpriorError, match="no .*g1.xml"):
        g1.fetch_g1(url=url)
    assert _leftovers(assets_dir) == []


@needs_g1
def test_g1_scene_has_29_pd_hinges_with_the_robots_ranges(synth_data):
    from interprior.assets.objects import load_object

    scene = g1_body.build_g1_scene(objects=(load_object(synth_data.objects_dir, "box"),))
    m = scene.model
    raw = mujoco.MjModel.from_xml_path(str(g1.g1_model_path()))
    assert m.nu == 29 and len(scene.joint_names) == 29
    assert m.opt.integrator == mujoco.mjtIntegrator.mjINT_IMPLICITFAST and m.opt.timestep == pytest.approx(1 / 240)
    for i, name in enumerate(scene.joint_names):
        j = m.actuator_trnid[i, 0]
        assert m.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE and m.joint(j).name == name == m.actuator(i).name
        assert m.jnt_qposadr[j] == 7 + i  # actuator order = qpos order after the root
        np.testing.assert_allclose(m.jnt_range[j], raw.joint(name).range)
    np.testing.assert_allclose(m.actuator_gainprm[:, 0], scene.kp, rtol=1e-5)
    np.testing.assert_allclose(-m.actuator_biasprm[:, 1:3], np.stack([scene.kp, scene.kd], 1), rtol=1e-5)
    np.testing.assert_allclose(m.dof_armature[6:35], scene.armature, rtol=1e-5)
    np.testing.assert_allclose(m.actuator_forcerange[:, 1], scene.effort_limit)
    knee = scene.joint_names.index("left_knee_joint")
    assert scene.effort_limit[knee] == 139 and scene.armature[knee] == pytest.approx(0.0251, rel=1e-3)
    assert m.body("object0_box").mass[0] > 0 and m.nq == 36 + 7
    assert scene.default_ctrl[knee] == pytest.approx(0.669)
    # collision bits as our humanoid's: the robot never collides with itself, always with ground and objects
    robot = [g for g in range(m.ngeom) if 1 <= m.geom_bodyid[g] <= 30 and (m.geom_contype[g] or m.geom_conaffinity[g])]
    assert robot and all((m.geom_contype[g], m.geom_conaffinity[g]) == (1, 2) for g in robot)


@needs_g1
def test_g1_stands_for_10_s_under_pd_at_its_default_pose():
    scene = g1_body.build_g1_scene()
    m = scene.model
    d = mujoco.MjData(m)
    d.qpos[:] = scene.default_qpos
    pelvis, torso = m.body("pelvis").id, m.body("torso_link").id
    heights, tilts = [], []
    for _ in range(round(10.0 / m.opt.timestep)):
        d.ctrl[:] = scene.default_ctrl
        mujoco.mj_step(m, d)
        heights.append(d.xpos[pelvis, 2])
        tilts.append(np.degrees(np.arccos(np.clip(d.xmat[torso, 8], -1.0, 1.0))))  # torso z-axis vs world z
    heights = np.array(heights)
    assert np.isfinite(d.qpos).all() and np.isfinite(d.qvel).all()
    assert heights.min() > 0.6 and np.abs(heights - g1.G1_ROOT_HEIGHT).max() < 0.03, (heights.min(), heights.max())
    assert max(tilts) < 15.0, max(tilts)
    assert np.abs(d.qvel).max() < 0.1  # at rest at the end
