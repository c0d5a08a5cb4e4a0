import torch

from interprior.assets.bodies import embodiment
from interprior import schema
from interprior.assets.scene import SceneConfig, build_scene
from interprior.sim.batched import BatchedSim
from interprior.sim.bench import standing_reset
from interprior.sim.mujoco_cpu import MujocoCpuBackend


def make_sim(n=4, variant="full", objects=()):
    scene = build_scene(SceneConfig(body=embodiment(variant), objects=objects))
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
    sim = make_sim(2, variant="body_only")
    sim.step(action=torch.zeros(2, 63))
    s = sim.state()
    assert s.dof_pos.shape == (2, 63) and s.body_pos.shape == (2, 52, 3)


def test_hand_on_object_and_feet_on_floor_reported_separately(tmp_path):
    """The humanoid stands on the floor with its left hand pressed down on a tall box: hand↔object contact and
    foot↔ground contact must show up in their own channels, and nowhere else."""
    import mujoco
    import trimesh

    from interprior.assets.objects import load_mesh_asset

    mesh = tmp_path / "pillar" / "pillar.obj"
    mesh.parent.mkdir()
    # find the lowest point of the left hand in the standing zero pose
    bare = make_sim(1)
    hand = [i for i in schema.LEFT_HAND]
    state = bare.state()
    data = mujoco.MjData(bare.scene.model)
    data.qpos[:] = bare.backend.qpos()[0].numpy()
    mujoco.mj_forward(bare.scene.model, data)
    ids = bare.scene.layout.humanoid_body_ids[hand]
    hand_geoms = [g for g in range(bare.scene.model.ngeom) if bare.scene.model.geom_bodyid[g] in ids]
    lowest = min(data.geom_xpos[g][2] - bare.scene.model.geom_rbound[g] for g in hand_geoms)
    top = lowest - 0.005
    trimesh.creation.box(extents=(0.3, 0.3, top)).export(mesh)
    pillar = load_mesh_asset(mesh, cache_dir=tmp_path / "cache")

    sim = make_sim(1, objects=(pillar,))
    reset = standing_reset(sim.scene, 1)
    wrist = state.body_pos[0, schema.BODY_INDEX["L_Wrist"]].double()
    reset.obj_pos = torch.tensor([[[float(wrist[0]), float(wrist[1]) + 0.05, top / 2]]], dtype=torch.float64)
    sim.reset(torch.tensor([0]), reset)
    targets = torch.zeros(1, 153, dtype=torch.float64)
    targets[0, schema.DOF_NAMES.index("L_Shoulder_x")] = -0.12  # push the left arm down onto the box
    seen_hand_object = False
    feet = list(schema.FEET)
    for step in range(12):
        sim.step(targets=targets)
        s = sim.state()
        seen_hand_object |= bool(s.object_contact[0, hand].any())
        if step >= 2:  # reset 5 mm above the floor: landed after the first steps
            assert s.ground_contact[0, feet].any()  # feet stay on the floor
        assert not s.object_contact[0, feet].any()  # ...and never count as object contact
        assert not s.ground_contact[0, hand].any()  # the hand never touches the floor
    assert seen_hand_object
    assert s.object_force[0, hand].norm(dim=-1).sum() > 1.0  # a real press, in newtons


def test_nearest_point_vectors_match_brute_force():
    from interprior.rotations import quat_apply, quat_normalize
    from interprior.sim.batched import nearest_point_vectors

    g = torch.Generator().manual_seed(0)
    body = torch.randn(5, 52, 3, generator=g)
    pos, rot = torch.randn(5, 3, generator=g), quat_normalize(torch.randn(5, 4, generator=g))
    pts = torch.randn(300, 3, generator=g)
    world = pos[:, None] + quat_apply(rot[:, None].expand(-1, 300, -1), pts[None].expand(5, -1, -1))
    dist = (world[:, None] - body[:, :, None]).norm(dim=-1)  # [5, 52, 300]
    expected = torch.gather(world, 1, dist.argmin(-1)[..., None].expand(-1, -1, 3)) - body
    assert (nearest_point_vectors(body, pos, rot, pts) - expected).abs().max() < 1e-5
