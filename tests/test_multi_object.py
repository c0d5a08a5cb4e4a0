"""Clips of several objects in one env set: each env uses its clip's object (object 0 of the state), the others
stay parked; physics, observations and errors match a single-object env of the same clip. Hold-out selection."""

import pytest
import torch

from interprior.sim.batched import PARKING_SPOT, nearest_point_vectors


@pytest.fixture(scope="module")
def mixed(synth_data):
    """The shortest synthetic box clip and the cylinder clip."""
    return [synth_data.clips(name, shortest=1)[0] for name in ("box", "cylinder")]


def _env(clips, data, n):
    from interprior.envs.tracking import TrackingConfig, TrackingEnv

    cfg = TrackingConfig(num_envs=n, action_mode="residual", init="start", init_noise_pos=0.0, init_noise_rot=0.0,
                         perturb_prob=0.0, randomize_dynamics=False, psi_slots=1, threads=1)
    return TrackingEnv(clips, data.objects_dir, cfg)


def _start(env, clip_ids):
    n = len(clip_ids)
    env.reset_to(torch.arange(n), torch.as_tensor(clip_ids), torch.zeros(n, dtype=torch.long))


def test_each_env_uses_its_clips_object_and_parks_the_other(mixed, synth_data):
    env = _env(mixed, synth_data, 2)
    assert env.object_names == ["box", "cylinder"] and env.sim.num_objects == 2
    _start(env, [1, 0])  # env 0 tracks the cylinder, env 1 the box
    st = env.sim.state()
    for row, clip in ((0, 1), (1, 0)):
        ref = env.ref.state(torch.tensor([clip]), torch.tensor([0]))
        assert torch.allclose(st.obj_pos[row, 0], ref.obj_pos[0], atol=1e-5)  # object 0 = the clip's object
        assert st.obj_pos[row, 1, 0] > PARKING_SPOT[0] - 1 and st.obj_pos[row, 1, 1] > PARKING_SPOT[1] - 1
        # the interaction-graph vectors use the clip's object's points, as the reference does (compared on the
        # bodies placed as in the reference: the body-only humanoid's rigid fingers do not follow a curled grip)
        placed = (st.body_pos[row] - ref.body_pos[0]).norm(dim=-1) < 1e-3
        assert placed.sum() >= 30
        assert torch.allclose(st.nearest_object_vec[row][placed], ref.nearest_object_vec[0][placed], atol=2e-3)
    assert env.points.shape == (2, 1024, 3)
    assert torch.equal(env.points[0], env.sim.points_by_object[1]) and torch.equal(env.points[1], env.sim.points_by_object[0])
    parked = st.obj_pos[:, 1].clone()
    for _ in range(5):
        env.step(torch.zeros(2, env.act_dim))
    assert (env.prev.obj_pos[:, 1] - parked).norm(dim=-1).max() < 0.01  # parked objects stay put


def test_multi_object_env_steps_like_a_single_object_env(mixed, synth_data):
    multi, single = _env(mixed, synth_data, 1), _env(mixed[1:], synth_data, 1)
    _start(multi, [1])
    _start(single, [0])
    for _ in range(10):
        r_multi = multi.step(torch.zeros(1, multi.act_dim)).reward
        r_single = single.step(torch.zeros(1, single.act_dim)).reward
    a, b = multi.prev, single.prev
    assert (a.body_pos - b.body_pos).abs().max() < 1e-3
    assert (a.obj_pos[:, 0] - b.obj_pos[:, 0]).abs().max() < 1e-3
    assert abs(float(r_multi - r_single)) < 1e-3
    assert torch.allclose(multi.observe(), single.observe(), atol=1e-2)


def test_nearest_point_vectors_per_env_points_match_shared():
    g = torch.Generator().manual_seed(0)
    bodies, points = torch.randn(3, 5, 3, generator=g), torch.randn(64, 3, generator=g)
    pos, rot = torch.randn(3, 3, generator=g), torch.nn.functional.normalize(torch.randn(3, 4, generator=g), dim=-1)
    shared = nearest_point_vectors(bodies, pos, rot, points)
    per_env = nearest_point_vectors(bodies, pos, rot, points.expand(3, -1, -1))
    assert torch.allclose(shared, per_env, atol=1e-6)


def test_hold_out_splits_the_selection(synth_data):
    from interprior.errors import InterpriorError
    from interprior.train.expert import DataSelection, held_out_indices

    assert held_out_indices(27, 5) == [2, 8, 13, 18, 24]
    assert held_out_indices(6, 2) == [1, 4]
    # six clips in name order: bigbox_002, box_000, box_005, cylinder_003, smallbox_001, stool_004
    sel = DataSelection(data=str(synth_data.clips_dir), objects=str(synth_data.objects_dir), object_name="all",
                        holdout=2)
    train, held = sel.load(), sel.load(held_out=True)
    assert len(train) == 4 and len(held) == 2 and not {c.name for c in train} & {c.name for c in held}
    assert sorted(c.name for c in held) == ["sub0_box_000", "sub0_smallbox_001"]
    both = DataSelection(data=sel.data, object_name="cylinder,box").load()
    assert sorted(c.name for c in both) == ["sub0_box_000", "sub0_box_005", "sub0_cylinder_003"]
    with pytest.raises(InterpriorError, match="holdout"):
        DataSelection(data=sel.data, object_name="box", holdout=2).load()


def test_tracking_evaluation_reports_each_object(mixed, synth_data):
    from interprior.envs.tracking import TrackingConfig
    from interprior.eval.tracking import compare_with_baseline, format_table

    rows, summary, _, _ = compare_with_baseline(None, mixed, synth_data.objects_dir, TrackingConfig(threads=1),
                                                baseline=False)
    assert [r["object"] for r in rows] == ["box", "cylinder"]
    per = summary["per_object"]
    assert set(per) == {"box", "cylinder"} and per["cylinder"]["clips"] == 1
    assert per["cylinder"]["mean_duration"] == rows[1]["duration"] > 0
    assert "cylinder (1 clips)" in format_table(rows, summary)


def test_set_active_refuses_an_unknown_object(mixed, synth_data):
    env = _env(mixed, synth_data, 2)
    with pytest.raises(ValueError, match="out of range 0..1"):
        env.sim.set_active(torch.arange(2), torch.tensor([0, 2]))
