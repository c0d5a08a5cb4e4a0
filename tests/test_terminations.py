"""Each early-termination check fires on a constructed case, only for the env it was built for, and only then."""

from dataclasses import replace

import pytest
import torch

from interprior import schema
from interprior.assets.bodies import embodiment
from interprior.mdp.terminations import (
    TerminationConfig, early_termination, interaction_graph_broken, timeout, update_hand_contact_counter,
)
from interprior.mdp.types import RefState
from interprior.rotations import axis_angle_to_quat
from interprior.sim.batched import SimState

N = 4
KEY = list(schema.KEY_BODIES)
G = embodiment("full").resolved
POINTS = torch.tensor([[0.2, 0.0, 0.0], [-0.2, 0.0, 0.0], [0.0, 0.2, 0.1], [0.0, -0.2, -0.1]])
CHECKS = ("fall", "non_finite", "body", "object", "interaction_graph", "hand_contact")


def _states(n=N, seed=0):
    """A simulated state equal to its reference: standing pelvis, random bodies, object 1 m ahead."""
    g = torch.Generator().manual_seed(seed)
    body_pos = torch.randn(n, 52, 3, generator=g) * 0.3 + torch.tensor([0.0, 0.0, 1.0])
    body_pos[:, 0] = torch.tensor([0.0, 0.0, 0.9])
    unit = torch.tensor([1.0, 0.0, 0.0, 0.0]).expand(n, 52, 4).clone()
    ig = torch.randn(n, 52, 3, generator=g)
    ig = ig / ig.norm(dim=-1, keepdim=True) * 0.3  # every body 0.3 m from the object
    obj_pos = torch.tensor([1.0, 0.0, 0.5]).expand(n, 3).clone()
    obj_rot = torch.tensor([1.0, 0.0, 0.0, 0.0]).expand(n, 4).clone()
    z3 = torch.zeros(n, 3)
    ref = RefState(
        root_pos=body_pos[:, 0].clone(), root_rot=unit[:, 0].clone(), body_pos=body_pos, body_rot=unit,
        body_linvel=torch.zeros(n, 52, 3), body_angvel=torch.zeros(n, 52, 3), dof_pos=torch.zeros(n, 153),
        obj_pos=obj_pos, obj_rot=obj_rot, obj_linvel=z3, obj_angvel=z3, contact=torch.zeros(n, 52),
        obj_contact=torch.zeros(n), nearest_object_vec=ig,
    )
    sim = SimState(
        root_pos=body_pos[:, 0].clone(), root_rot=unit[:, 0].clone(), root_linvel=z3, root_angvel=z3,
        dof_pos=torch.zeros(n, 63), dof_vel=torch.zeros(n, 63), body_pos=body_pos.clone(), body_rot=unit.clone(),
        body_linvel=torch.zeros(n, 52, 3), body_angvel=torch.zeros(n, 52, 3), obj_pos=obj_pos[:, None].clone(),
        obj_rot=obj_rot[:, None].clone(), obj_linvel=z3[:, None], obj_angvel=z3[:, None],
        object_force=torch.zeros(n, 52, 3), ground_force=torch.zeros(n, 52, 3),
        object_contact=torch.zeros(n, 52, dtype=torch.bool), ground_contact=torch.zeros(n, 52, dtype=torch.bool),
        nearest_object_vec=ig.clone(),
    )
    return sim, ref


def _run(sim, ref, counters=None, progress=10, start=0, cfg=TerminationConfig()):
    counters = torch.zeros(N, 2, dtype=torch.long) if counters is None else counters
    progress = torch.full((N,), progress)
    start = torch.full((N,), start)
    return early_termination(sim, ref, counters, POINTS, progress, start, G, cfg)


def _only(reasons, terminated, name, env):
    """`name` fires for env `env` and nothing else fires anywhere."""
    expected = torch.zeros(N, dtype=torch.bool)
    expected[env] = True
    assert set(reasons) == set(CHECKS)
    for key, value in reasons.items():
        assert value.dtype == torch.bool and value.shape == (N,)
        assert torch.equal(value, expected if key == name else torch.zeros_like(expected)), key
    assert torch.equal(terminated, expected)


def test_nothing_fires_when_sim_equals_ref():
    sim, ref = _states()
    terminated, reasons, counters = _run(sim, ref)
    assert not terminated.any() and not any(r.any() for r in reasons.values())
    assert counters.shape == (N, 2) and not counters.any()


def test_fall():
    sim, ref = _states()
    root = sim.root_pos.clone()
    root[1, 2] = 0.29
    root[2, 2] = 0.31  # just above: no fall
    _only(*reversed(_run(replace(sim, root_pos=root), ref)[:2]), "fall", 1)
    # the height check counts from the first step on
    terminated, reasons, _ = _run(replace(sim, root_pos=root), ref, progress=1, start=0)
    assert reasons["fall"][1] and terminated[1]


def test_body_error():
    sim, ref = _states()
    pos = sim.body_pos.clone()
    pos[2, KEY] += torch.tensor([0.51, 0.0, 0.0])  # mean key-body error 0.51 m
    pos[3, KEY] += torch.tensor([0.0, 0.49, 0.0])  # 0.49 m: below the threshold
    pos[0, 20:33] += 5.0  # finger bodies are not key bodies
    _only(*reversed(_run(replace(sim, body_pos=pos), ref)[:2]), "body", 2)


def test_object_error():
    sim, ref = _states()
    obj = sim.obj_pos.clone()
    obj[0, 0] += torch.tensor([0.0, 0.0, 0.55])
    obj[1, 0] += torch.tensor([0.45, 0.0, 0.0])
    rot = sim.obj_rot.clone()
    # a half turn about z moves the 0.2 m points by 0.4 m on average (< 0.5): no termination from rotation alone
    rot[3, 0] = axis_angle_to_quat(torch.tensor([0.0, 0.0, torch.pi]))
    _only(*reversed(_run(replace(sim, obj_pos=obj, obj_rot=rot), ref)[:2]), "object", 0)
    # a second object in the scene is ignored (object 0 is tracked)
    two = replace(sim, obj_pos=torch.cat([sim.obj_pos, sim.obj_pos + 3.0], 1),
                  obj_rot=torch.cat([sim.obj_rot, sim.obj_rot], 1))
    assert not _run(two, ref)[0].any()


def test_interaction_graph_ratio_either_denominator():
    sim, ref = _states()
    ig = sim.nearest_object_vec.clone()
    body = KEY[5]
    ig[1, body] = ref.nearest_object_vec[1, body] + torch.tensor([1.1, 0.0, 0.0])  # 1.1 / max(0.3, 0.5) = 2.2
    ig[2, body] = ref.nearest_object_vec[2, body] + torch.tensor([0.9, 0.0, 0.0])  # 1.8: no
    _only(*reversed(_run(replace(sim, nearest_object_vec=ig), ref)[:2]), "interaction_graph", 1)
    # long simulated vector: |diff| / |ig| < 2 but |diff| / max(|ig_ref|, 0.5) > 2 -> fires (either ratio counts)
    ig = sim.nearest_object_vec.clone()
    ig[3, body] = torch.tensor([3.0, 0.0, 0.0])
    ref_ig = ref.nearest_object_vec.clone()
    ref_ig[3, body] = torch.tensor([0.0, 0.3, 0.0])
    broken = interaction_graph_broken(replace(sim, nearest_object_vec=ig), replace(ref, nearest_object_vec=ref_ig), G)
    assert torch.equal(broken, torch.tensor([False, False, False, True]))
    # non-key bodies (fingers) never count
    ig = sim.nearest_object_vec.clone()
    ig[0, schema.BODY_INDEX["L_Index3"]] += 10.0
    assert not interaction_graph_broken(replace(sim, nearest_object_vec=ig), ref, G).any()


def test_hand_contact_counter_counts_consecutive_lost_frames():
    counter = torch.zeros(3, 2, dtype=torch.long)
    ref_hand = torch.tensor([[True, False], [True, True], [False, False]])
    sim_hand = torch.tensor([[False, False], [True, False], [True, True]])
    for _ in range(4):
        counter = update_hand_contact_counter(counter, ref_hand, sim_hand)
    assert counter.tolist() == [[4, 0], [0, 4], [0, 0]]
    # touching again resets; the reference releasing resets
    counter = update_hand_contact_counter(counter, ref_hand, torch.tensor([[True, False], [True, False], [0, 0]]).bool())
    assert counter.tolist() == [[0, 0], [0, 5], [0, 0]]
    counter = update_hand_contact_counter(counter, torch.zeros(3, 2, dtype=torch.bool), sim_hand)
    assert not counter.any()


def test_hand_contact_terminates_after_more_than_ten_frames():
    sim, ref = _states()
    contact = ref.contact.clone()
    contact[2, schema.BODY_INDEX["R_Index3"]] = 1.0  # reference: right hand in contact in env 2
    contact[0, schema.BODY_INDEX["L_Wrist"]] = 1.0  # env 0: left hand, and the simulated left hand touches
    ref = replace(ref, contact=contact)
    touch = sim.object_contact.clone()
    touch[0, schema.BODY_INDEX["L_Thumb2"]] = True
    sim = replace(sim, object_contact=touch)
    counters = torch.zeros(N, 2, dtype=torch.long)
    for step in range(1, 12):
        terminated, reasons, counters = _run(sim, ref, counters)
        assert counters[2].tolist() == [0, step] and not counters[[0, 1, 3]].any()
        if step <= 10:
            assert not terminated.any(), step
    _only(reasons, terminated, "hand_contact", 2)


def test_settling_frames_only_check_height():
    sim, ref = _states()
    pos = sim.body_pos.clone()
    pos[:, KEY] += 1.0
    obj = sim.obj_pos + 1.0
    ig = sim.nearest_object_vec + 2.0
    far = replace(sim, body_pos=pos, obj_pos=obj, nearest_object_vec=ig)
    for progress, start in ((5, 4), (6, 5), (1, 0)):  # progress <= start + 1
        terminated, reasons, _ = _run(far, ref, progress=progress, start=start)
        assert not terminated.any()
    terminated, reasons, _ = _run(far, ref, progress=7, start=5)
    assert terminated.all() and reasons["body"].all() and reasons["object"].all()
    assert reasons["interaction_graph"].all() and not reasons["fall"].any()


def test_disabled_keeps_fall_only():
    sim, ref = _states()
    pos = sim.body_pos.clone()
    pos[:, KEY] += 1.0
    root = sim.root_pos.clone()
    root[3, 2] = 0.1
    terminated, reasons, _ = _run(replace(sim, body_pos=pos, root_pos=root), ref,
                                  cfg=TerminationConfig(enabled=False))
    assert set(reasons) == {"fall", "non_finite"}
    assert terminated.tolist() == [False, False, False, True]


def test_non_finite_state_terminates():
    sim, ref = _states()
    pos = sim.body_pos.clone()
    pos[1, 7, 0] = float("nan")
    _only(*reversed(_run(replace(sim, body_pos=pos), ref, progress=1)[:2]), "non_finite", 1)


def test_thresholds_are_configurable():
    sim, ref = _states()
    pos = sim.body_pos.clone()
    pos[0, KEY] += torch.tensor([0.3, 0.0, 0.0])
    assert not _run(replace(sim, body_pos=pos), ref)[0].any()
    terminated, reasons, _ = _run(replace(sim, body_pos=pos), ref, cfg=TerminationConfig(body_error=0.25))
    _only(reasons, terminated, "body", 0)


@pytest.mark.parametrize("progress,start,length,expected", [
    (298, 0, 1000, False), (299, 0, 1000, True),  # rollout length 300 reached
    (349, 50, 1000, True), (348, 50, 1000, False),
    (99, 80, 100, True), (98, 80, 100, False),  # the clip's last frame
])
def test_timeout(progress, start, length, expected):
    out = timeout(torch.tensor([progress]), torch.tensor([start]), torch.tensor([length]), 300)
    assert out.tolist() == [expected]


@pytest.mark.parametrize("per_env", [False, True])
def test_object_check_decides_as_the_full_error(per_env):
    """`object_too_far` computes the point error only where its bound does not settle it: the same decisions as
    `object_drift > object_error`, at the threshold and for non-finite poses too."""
    from interprior.mdp.terminations import object_drift, object_too_far
    from interprior.rotations import quat_normalize

    g = torch.Generator().manual_seed(5)
    n, cfg = 256, TerminationConfig()
    sim, ref = _states(n)
    points = (torch.rand(n if per_env else 1, 300, 3, generator=g) - 0.5) * torch.tensor([0.9, 0.4, 0.3])
    points = points if per_env else points[0]
    spread = torch.rand(n, 1, generator=g)
    obj_pos = sim.obj_pos + torch.randn(n, 1, 3, generator=g) * spread[:, None] * 0.6
    obj_rot = quat_normalize(sim.obj_rot + torch.randn(n, 1, 4, generator=g) * spread[:, None])
    obj_pos[7, 0, 1] = float("nan")
    moved = replace(sim, obj_pos=obj_pos, obj_rot=obj_rot)
    drift = object_drift(moved, ref, points)
    for threshold in (0.5, float(drift[3]), float(drift.nan_to_num().median())):
        at = replace(cfg, object_error=threshold)
        assert torch.equal(object_too_far(moved, ref, points, at), drift > threshold)
    assert 0 < int((drift > cfg.object_error).sum()) < n - 1  # both outcomes occur
