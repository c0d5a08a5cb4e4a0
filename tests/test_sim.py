import torch

from interprior import schema
from interprior.assets.scene import SceneConfig, build_scene
from interprior.sim.batched import BatchedSim
from interprior.sim.bench import standing_reset
from interprior.sim.mujoco_cpu import MujocoCpuBackend


def make_sim(n=4, variant=schema.FULL, objects=()):
    scene = build_scene(SceneConfig(variant=variant, objects=objects))
    backend = MujocoCpuBackend(scene.model, n, scene.config.substeps, nthread=2)
    sim = BatchedSim(scene, backend)
    sim.reset(torch.arange(n), standing_reset(scene, n))
    return sim


def test_state_shapes_and_standing_contacts():
    sim = make_sim(3)
    zero = torch.zeros(3, 153, dtype=torch.float64)
    for _ in range(5):
        sim.step(targets=zero)
    s = sim.state()
    assert s.body_pos.shape == (3, 52, 3) and s.body_rot.shape == (3, 52, 4)
    assert s.body_linvel.shape == (3, 52, 3) and s.dof_pos.shape == (3, 153)
    assert s.obj_pos.shape == (3, 0, 3)
    feet = list(schema.FEET)
    assert s.ground_contact[:, feet].any(dim=1).all()  # standing on the floor
    hands = list(schema.LEFT_HAND + schema.RIGHT_HAND)
    assert not s.ground_contact[:, hands].any()
    assert not s.object_contact.any()
    assert torch.allclose(s.root_pos, s.body_pos[:, 0])


def test_reset_only_touches_chosen_envs():
    sim = make_sim(4)
    zero = torch.zeros(4, 153, dtype=torch.float64)
    for _ in range(3):
        sim.step(targets=zero)
    before = sim.state()
    reset = standing_reset(sim.scene, 1)
    reset.root_pos = reset.root_pos.clone()
    reset.root_pos[:, 0] = 5.0
    sim.reset(torch.tensor([2]), reset)
    after = sim.state()
    assert torch.allclose(after.root_pos[2, 0], torch.tensor(5.0))
    keep = [0, 1, 3]
    assert torch.equal(after.body_pos[keep], before.body_pos[keep])


def test_action_maps_to_pd_targets_and_moves_joint():
    sim = make_sim(2)
    action = torch.zeros(2, 153)
    elbow = schema.DOF_NAMES.index("L_Elbow_z")
    action[1, elbow] = 0.3  # 0.3 * pi rad
    targets = sim.action_to_targets(action)
    assert abs(float(targets[1, elbow]) - 0.3 * torch.pi) < 1e-6
    assert float(sim.action_to_targets(torch.full((1, 153), 5.0))[0, 0]) == torch.pi  # clipped to [-1, 1]
    for _ in range(10):
        sim.step(action=action)
    s = sim.state()
    assert abs(float(s.dof_pos[1, elbow]) - 0.3 * torch.pi) < 0.15
    assert abs(float(s.dof_pos[0, elbow])) < 0.05


def test_body_only_variant_steps():
    sim = make_sim(2, variant=schema.BODY_ONLY)
    sim.step(action=torch.zeros(2, 63))
    s = sim.state()
    assert s.dof_pos.shape == (2, 63) and s.body_pos.shape == (2, 52, 3)
