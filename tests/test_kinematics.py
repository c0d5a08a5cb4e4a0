import mujoco
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from interprior.assets.scene import build_scene
from interprior.rotations import (
    axis_angle_to_quat, euler_xyz_from_quat, quat_apply, quat_from_euler_xyz, quat_to_axis_angle, wxyz_to_xyzw,
    xyzw_to_wxyz,
)
from interprior.assets.kinematics import KinematicTree


def test_euler_xyz_is_intrinsic_and_round_trips():
    e = (torch.rand(500, 3, dtype=torch.float64) - 0.5) * torch.tensor([6.2, 3.1, 6.2], dtype=torch.float64)
    q = quat_from_euler_xyz(e)
    ref = Rotation.from_euler("XYZ", e.numpy()).as_quat()  # xyzw, intrinsic
    ours = wxyz_to_xyzw(q).numpy()
    assert np.minimum(np.abs(ours - ref).max(1), np.abs(ours + ref).max(1)).max() < 1e-12
    assert (euler_xyz_from_quat(q) - e).abs().max() < 1e-9


def test_quaternion_order_round_trip():
    q = torch.randn(10, 4)
    assert torch.equal(wxyz_to_xyzw(xyzw_to_wxyz(q)), q)
    aa = torch.randn(50, 3, dtype=torch.float64)
    aa = aa / aa.norm(dim=-1, keepdim=True) * torch.rand(50, 1, dtype=torch.float64) * 3.0
    assert (quat_to_axis_angle(axis_angle_to_quat(aa)) - aa).abs().max() < 1e-12


def _body(name):
    from interprior.assets.bodies import embodiment
    from interprior.assets.g1 import g1_fetched

    if name == "g1" and not g1_fetched():
        pytest.skip("the Unitree G1 is not fetched: run `interprior assets fetch g1`")
    return embodiment(name)


@pytest.mark.parametrize("name", ["full", "toy", "g1"])
def test_torch_fk_matches_mujoco_positions_rotations_velocities(name):
    """SMPL-X and the toy body (x, y, z hinges, closed-form Euler) and the G1 (one hinge per body about its own
    axis, rotated body frames) against MuJoCo's own kinematics."""
    from interprior.assets.scene import SceneConfig

    body = _body(name)
    s = build_scene(SceneConfig(body=body))
    m, lay = s.model, s.layout
    d = mujoco.MjData(m)
    rng = np.random.default_rng(0)
    d.qpos[:3] = [0.1, 0.2, 0.9]
    q = rng.normal(size=4)
    d.qpos[3:7] = q / np.linalg.norm(q)
    d.qpos[lay.dof_qpos_adr] = rng.uniform(-1, 1, body.num_dofs)
    d.qvel[:] = rng.normal(size=m.nv)
    mujoco.mj_forward(m, d)
    tree = KinematicTree.from_model(m, body=body)
    assert (tree.hinges is None) == (name != "g1")
    root_rot = torch.tensor(d.qpos[None, 3:7])
    dofs = list(body.dof_index)
    angles = torch.zeros(1, body.num_full_dofs, dtype=torch.float64)
    angles[:, dofs] = torch.tensor(d.qpos[None, lay.dof_qpos_adr])
    rates = torch.zeros_like(angles)
    rates[:, dofs] = torch.tensor(d.qvel[None, lay.dof_qvel_adr])
    pos, rot = tree.forward(torch.tensor(d.qpos[None, :3]), root_rot, angles)
    ids = lay.humanoid_body_ids
    assert np.abs(pos[0].numpy() - d.xpos[ids]).max() < 1e-12
    r = rot[0].numpy()
    assert np.minimum(np.abs(r - d.xquat[ids]).max(1), np.abs(r + d.xquat[ids]).max(1)).max() < 1e-12
    lin, ang = tree.velocities(pos, rot, angles, rates, torch.tensor(d.qvel[None, :3]),
                               quat_apply(root_rot, torch.tensor(d.qvel[None, 3:6])))
    res = np.zeros(6)
    for k, b in enumerate(ids):
        mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_BODY, b, res, 0)
        assert np.abs(res[:3] - ang[0, k].numpy()).max() < 1e-10
    # linear velocity of body origins by finite differences of MuJoCo's own kinematics
    dt = 1e-7
    d2 = mujoco.MjData(m)
    d2.qpos[:] = d.qpos
    mujoco.mj_integratePos(m, d2.qpos, d.qvel, dt)
    mujoco.mj_kinematics(m, d2)
    fd = (d2.xpos[ids] - d.xpos[ids]) / dt
    assert np.abs(fd - lin[0].numpy()).max() < 1e-4
    # and back: joint angles from the body rotations (what motion data gives) are the simulated ones
    from interprior.data.convert import joint_angles_from_rotations

    back = joint_angles_from_rotations(rot, body)
    assert (back[:, dofs] - angles[:, dofs]).abs().max() < 1e-9


def test_matrix_quat_round_trip_including_half_turns():
    from interprior.rotations import matrix_from_euler_xyz, matrix_to_quat, quat_to_matrix

    e = (torch.rand(2000, 3, dtype=torch.float64) - 0.5) * 2 * torch.pi
    q = quat_from_euler_xyz(e)
    half_turns = axis_angle_to_quat(torch.eye(3, dtype=torch.float64) * torch.pi)  # w = 0: the hard case
    q = torch.cat([q, half_turns])
    back = matrix_to_quat(quat_to_matrix(q))
    assert torch.minimum((back - q).abs().amax(-1), (back + q).abs().amax(-1)).max() < 1e-9
    assert (matrix_from_euler_xyz(e) - quat_to_matrix(quat_from_euler_xyz(e))).abs().max() < 1e-12
