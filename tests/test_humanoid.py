import math

import mujoco
import numpy as np
import pytest

from interprior.assets.bodies import embodiment
from interprior import schema
from interprior.assets.humanoid import pd_action_mapping
from interprior.assets.scene import SceneConfig, build_scene, standing_pelvis_height


@pytest.fixture(scope="module")
def default_scene():
    return build_scene()


def test_default_humanoid_compiles_with_spec_figures(default_scene):
    m = default_scene.model
    assert m.nbody - 1 == schema.NUM_BODIES  # besides the world
    hinges = [j for j in range(m.njnt) if m.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
    frees = [j for j in range(m.njnt) if m.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
    assert len(hinges) == 153 and len(frees) == 1
    assert m.nu == 153
    assert all(m.actuator_gaintype[i] == mujoco.mjtGain.mjGAIN_FIXED for i in range(m.nu))
    assert np.all(m.jnt_stiffness == 0) and np.all(m.dof_damping == 0)
    assert np.allclose(m.dof_armature[6:], 0.02)
    mass = m.body_subtreemass[1]
    assert 60.0 <= mass <= 80.0, mass
    assert 0.85 <= standing_pelvis_height(m) <= 1.0
    assert tuple(m.body(i).name for i in range(1, 53)) == schema.BODY_NAMES
    assert m.opt.integrator == mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    assert math.isclose(m.opt.timestep, 1 / 120)


def test_pd_gains_and_ranges_follow_spec(default_scene):
    m = default_scene.model
    a = {m.actuator(i).name: i for i in range(m.nu)}
    assert m.actuator_gainprm[a["L_Hip_x"], 0] == 800 and m.actuator_biasprm[a["L_Hip_x"], 2] == -80
    assert m.actuator_gainprm[a["L_Index1_x"], 0] == 100
    j = m.joint("L_Index3_x")
    assert np.allclose(np.degrees(m.jnt_range[j.id]), [-90, 5.625])
    assert np.allclose(np.degrees(m.jnt_range[m.joint("R_Index3_x").id]), [-5.625, 90])
    assert np.allclose(np.degrees(m.jnt_range[m.joint("L_Thumb1_y").id]), [-55.625, 55.625])


def test_no_self_collision_but_ground_contact(default_scene):
    m = default_scene.model
    d = mujoco.MjData(m)
    d.qpos[2] = 0.5  # the zero pose sunk into the floor: only ground contacts, no humanoid-humanoid pairs
    mujoco.mj_forward(m, d)
    assert d.ncon > 0
    for c in d.contact[: d.ncon]:
        b1, b2 = m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2]
        assert 0 in (b1, b2)
    assert m.nexclude >= 51  # overlapping neighbours excluded even when self-collision is switched on


def test_self_collision_variant_keeps_neighbours_excluded():
    m = build_scene(SceneConfig(self_collision=True)).model
    d = mujoco.MjData(m)
    d.qpos[2] = 1.5
    mujoco.mj_forward(m, d)
    assert d.ncon == 0  # zero pose in the air: overlapping neighbours never collide


def test_body_only_variant_compiles_from_same_builder():
    s = build_scene(SceneConfig(body=embodiment("body_only")))
    m = s.model
    assert m.nbody - 1 == 52 and m.nu == 63 and m.nv == 6 + 63
    assert 60.0 <= m.body_subtreemass[1] <= 80.0


def test_fitted_skeleton_moves_bones():
    offsets = np.array(build_scene().model.body_pos[1:53])
    offsets[2] *= 1.1  # longer thigh
    m = build_scene(SceneConfig(offsets=tuple(map(tuple, offsets)))).model
    assert np.allclose(m.body_pos[3], offsets[2])  # model body id = schema index + 1 (world is 0)


def test_action_mapping_rule():
    offset, scale = pd_action_mapping()
    i = schema.DOF_NAMES.index("L_Hip_x")
    assert offset[i] == 0 and math.isclose(scale[i], math.pi)
    i = schema.DOF_NAMES.index("L_Index1_x")  # symmetric finger joint: half range
    assert offset[i] == 0 and math.isclose(scale[i], math.radians(55.625))
    i = schema.DOF_NAMES.index("L_Index3_x")  # off-centre range: offset 0, scale pi (InterMimic's rule)
    assert offset[i] == 0 and math.isclose(scale[i], math.pi)
    i = schema.DOF_NAMES.index("L_Knee_z")  # the legacy scale-5 override is not copied
    assert math.isclose(scale[i], math.pi)


def test_mujoco_warp_accepts_scene():
    mjw = pytest.importorskip("mujoco_warp", reason="mujoco-warp not installed")
    import warp as wp

    with wp.ScopedDevice("cpu"):
        assert mjw.put_model(build_scene().model) is not None
