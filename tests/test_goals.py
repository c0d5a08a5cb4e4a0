"""Stage II goal kernels, mask sampling and goal schedule: pure tensor tests, no simulator."""

from types import SimpleNamespace

import pytest
import torch

from interprior import schema
from interprior.mdp.goal_masks import GOAL_TYPES, GoalSchedule, MaskSampling, sample_bits, sample_goal_types
from interprior.mdp.goals import IDENTITY_TAN_NORM, GoalLayout, build_goal, entry_mask, reference_frames
from interprior.rotations import axis_angle_to_quat, quat_apply, quat_mul, quat_to_matrix

NB = schema.NUM_BODIES
LAYOUT = GoalLayout()


def _yaw(angle: float, n: int = 1) -> torch.Tensor:
    return axis_angle_to_quat(torch.tensor([[0.0, 0.0, angle]]).expand(n, 3))


def _turn(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors v [..., 3] by one quaternion q [1, 4]."""
    flat = v.reshape(-1, 3)
    return quat_apply(q.expand(flat.shape[0], 4), flat).reshape(v.shape)


def _random_quats(*shape, g) -> torch.Tensor:
    return axis_angle_to_quat(torch.randn(*shape, 3, generator=g))


def _sim(n: int, yaw: float, g) -> SimpleNamespace:
    """A simulated state whose root is yawed by `yaw` and tilted about its own x axis (heading stays `yaw`)."""
    root_rot = quat_mul(_yaw(yaw, n), axis_angle_to_quat(torch.tensor([[0.2, 0.0, 0.0]]).expand(n, 3)))
    return SimpleNamespace(
        root_pos=torch.randn(n, 3, generator=g), root_rot=root_rot,
        body_pos=torch.randn(n, NB, 3, generator=g), body_rot=_random_quats(n, NB, g=g),
        obj_pos=torch.randn(n, 1, 3, generator=g), obj_rot=_random_quats(n, 1, g=g),
        object_contact=torch.rand(n, NB, generator=g) < 0.5,
    )


def _ref_from(sim, k: int, g) -> tuple[SimpleNamespace, dict]:
    """Reference frames [N, K] = the sim state moved by known world offsets and rotations."""
    n = sim.root_pos.shape[0]
    d_body = torch.randn(n, k, NB, 3, generator=g)
    d_obj = torch.randn(n, k, 3, generator=g)
    r_body = _random_quats(n, k, NB, g=g)
    r_obj = _random_quats(n, k, g=g)
    labels = torch.randint(-1, 2, (n, k, NB), generator=g).float()
    ref = SimpleNamespace(
        root_pos=sim.root_pos[:, None].expand(n, k, 3).clone(),
        body_pos=sim.body_pos[:, None] + d_body, body_rot=quat_mul(r_body, sim.body_rot[:, None].expand(n, k, NB, 4)),
        obj_pos=sim.obj_pos[:, None, 0] + d_obj, obj_rot=quat_mul(r_obj, sim.obj_rot[:, None, 0].expand(n, k, 4)),
        contact=labels,
    )
    return ref, {"d_body": d_body, "d_obj": d_obj, "r_body": r_body, "r_obj": r_obj}


def _expected_rotation_residual(r_world: torch.Tensor, yaw: float) -> torch.Tensor:
    """tan-norm (x column, z column) of Rz(-yaw) R Rz(yaw), minus the identity's: independent of the kernel."""
    rz = quat_to_matrix(_yaw(yaw))[0]
    m = rz.T @ quat_to_matrix(r_world) @ rz
    return torch.cat([m[..., :, 0], m[..., :, 2]], dim=-1) - torch.tensor(IDENTITY_TAN_NORM)


def test_layout_sizes_and_entry_groups():
    b, c = len(schema.NOHAND_BODIES), len(schema.CONTACT_BODIES)
    assert LAYOUT.num_tokens == len(LAYOUT.preview_offsets) + 1
    assert LAYOUT.feature_size == 9 * b + 9 + c and LAYOUT.bit_size == 2 * b + 2 + c
    group = LAYOUT.entry_group
    fs, bs = LAYOUT.feature_slices, LAYOUT.bit_slices
    assert group.shape == (LAYOUT.feature_size,)
    assert group[fs["body_pos"]][3 * 5 + 2] == bs["body_pos"].start + 5  # body 5, z
    assert group[fs["body_rot"]][6 * 7 + 4] == bs["body_rot"].start + 7
    assert set(group[fs["obj_rot"]].tolist()) == {bs["obj_rot"].start}
    assert group[fs["contact"]].tolist() == list(range(bs["contact"].start, bs["contact"].stop))


def test_given_entries_are_heading_frame_residuals():
    g = torch.Generator().manual_seed(0)
    yaw, n, k = 0.7, 3, LAYOUT.num_tokens
    sim = _sim(n, yaw, g)
    ref, moved = _ref_from(sim, k, g)
    goal = build_goal(sim, ref, torch.ones(n, k, LAYOUT.bit_size, dtype=torch.bool), torch.zeros(n, k), LAYOUT)
    fs = LAYOUT.feature_slices
    bodies = list(LAYOUT.bodies)
    local = lambda v: _turn(_yaw(-yaw), v)  # noqa: E731
    body_pos = goal.full[..., fs["body_pos"]].reshape(n, k, -1, 3)
    assert torch.allclose(body_pos, local(moved["d_body"][:, :, bodies]), atol=1e-5)
    assert torch.allclose(goal.full[..., fs["obj_pos"]], local(moved["d_obj"]), atol=1e-5)
    body_rot = goal.full[..., fs["body_rot"]].reshape(n, k, -1, 6)
    assert torch.allclose(body_rot, _expected_rotation_residual(moved["r_body"][:, :, bodies], yaw), atol=1e-5)
    assert torch.allclose(goal.full[..., fs["obj_rot"]], _expected_rotation_residual(moved["r_obj"], yaw), atol=1e-5)


def test_residuals_are_zero_when_matched_and_invariant_to_world_yaw():
    g = torch.Generator().manual_seed(1)
    n, k = 2, LAYOUT.num_tokens
    sim = _sim(n, 0.3, g)
    same = SimpleNamespace(root_pos=sim.root_pos[:, None].expand(n, k, 3), body_pos=sim.body_pos[:, None].expand(
        n, k, NB, 3), body_rot=sim.body_rot[:, None].expand(n, k, NB, 4), obj_pos=sim.obj_pos[:, None, 0].expand(
        n, k, 3), obj_rot=sim.obj_rot[:, None, 0].expand(n, k, 4), contact=torch.zeros(n, k, NB))
    bits = torch.ones(n, k, LAYOUT.bit_size, dtype=torch.bool)
    fs = LAYOUT.feature_slices
    matched = build_goal(sim, same, bits, torch.zeros(n, k), LAYOUT).full
    assert matched[..., : fs["contact"].start].abs().max() < 1e-5
    # turn and shift the whole world (simulation and reference): the goal does not change
    ref, _ = _ref_from(sim, k, g)
    before = build_goal(sim, ref, bits, torch.zeros(n, k), LAYOUT).full
    turn, shift = _yaw(1.9), torch.tensor([3.0, -2.0, 0.0])
    rot = lambda v: _turn(turn, v) + shift  # noqa: E731
    spin = lambda q: quat_mul(turn.reshape((1,) * (q.dim() - 1) + (4,)).expand(q.shape), q)  # noqa: E731
    for state in (sim, ref):
        state.root_pos, state.body_pos, state.obj_pos = rot(state.root_pos), rot(state.body_pos), rot(state.obj_pos)
        state.body_rot, state.obj_rot = spin(state.body_rot), spin(state.obj_rot)
    sim.root_rot = spin(sim.root_rot)
    after = build_goal(sim, ref, bits, torch.zeros(n, k), LAYOUT).full
    assert torch.allclose(before, after, atol=1e-4)


def test_hidden_entries_are_exactly_zero_and_contacts_follow_the_labels():
    g = torch.Generator().manual_seed(2)
    n, k = 4, LAYOUT.num_tokens
    sim = _sim(n, -1.2, g)
    ref, _ = _ref_from(sim, k, g)
    requested = torch.rand(n, k, LAYOUT.bit_size, generator=g) < 0.5
    goal = build_goal(sim, ref, requested, torch.rand(n, k, generator=g), LAYOUT)
    features, mask = goal.features(), entry_mask(goal.bits, LAYOUT)
    assert torch.all(features[~mask] == 0.0)  # exactly zero, not just small
    assert torch.equal(features[mask], goal.full[mask])
    # contact residual = target (label +1 -> 1, -1 -> 0) - current contact; label 0 can never be given
    contacts = list(LAYOUT.contact_bodies)
    labels = ref.contact[:, :, contacts]
    current = sim.object_contact[:, contacts].float()[:, None]
    expected = (labels > 0).float() - current
    got = goal.full[..., LAYOUT.feature_slices["contact"]]
    known = labels != 0
    assert torch.equal(got[known], expected[known]) and torch.all(got[~known] == 0)
    given_contacts = goal.bits[..., LAYOUT.bit_slices["contact"]]
    assert not given_contacts[~known].any()
    assert torch.equal(given_contacts[known], requested[..., LAYOUT.bit_slices["contact"]][known])
    # reconstruction is scored on what the reference defines but the goal hides
    hidden = goal.hidden_entries()
    assert not (hidden & mask).any() and torch.equal(hidden | mask, entry_mask(goal.defined, LAYOUT))
    assert goal.hidden().features().abs().sum() == 0 and goal.hidden().padding().all()


def test_reference_frames_gathers_a_token_dimension():
    from interprior.mdp.types import RefState

    class FakeReference:  # frame f of clip c holds the number 1000 c + f in every field
        def state(self, clip_ids, frames, device=None):
            v = (1000 * clip_ids + frames).float()
            shapes = {"body_pos": (NB, 3), "body_rot": (NB, 4), "body_linvel": (NB, 3), "body_angvel": (NB, 3),
                      "dof_pos": (153,), "contact": (NB,), "obj_contact": (), "nearest_object_vec": (NB, 3),
                      "root_pos": (3,), "root_rot": (4,), "obj_pos": (3,), "obj_rot": (4,), "obj_linvel": (3,),
                      "obj_angvel": (3,)}
            return RefState(**{k: v.reshape(-1, *[1] * len(s)).expand(-1, *s) for k, s in shapes.items()})

    frames = torch.tensor([[1, 2, 9], [4, 5, 6]])
    ref = reference_frames(FakeReference(), torch.tensor([3, 7]), frames)
    assert ref.body_pos.shape == (2, 3, NB, 3) and ref.obj_contact.shape == (2, 3)
    assert ref.root_pos[:, :, 0].tolist() == [[3001, 3002, 3009], [7004, 7005, 7006]]


# --- mask sampling ---------------------------------------------------------------------------------------------
def test_goal_type_frequencies_are_the_dataclass_probabilities():
    s = MaskSampling()
    types = sample_goal_types(20000, s, torch.Generator().manual_seed(0))
    freq = torch.bincount(types, minlength=len(GOAL_TYPES)).double() / len(types)
    assert torch.allclose(freq, s.type_probs(), atol=0.015)
    with pytest.raises(ValueError):
        MaskSampling(full_prob=0.5).type_probs()
    only = s.restricted_to("contact")
    assert only.type_probs().tolist() == [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0] and only.max_bodies == s.max_bodies


def test_each_goal_type_gives_its_components():
    s = MaskSampling(max_bodies=2, all_bodies_prob=0.0)
    g = torch.Generator().manual_seed(3)
    n, sl = 500, LAYOUT.bit_slices
    body_obj = slice(0, sl["contact"].start)
    bits = {t: sample_bits(torch.full((n,), i), LAYOUT, s, g) for i, t in enumerate(GOAL_TYPES)}
    assert bits["full"].all()
    snap = bits["snapshot"]
    assert not snap[:, :-1].any() and not snap[:, -1, sl["contact"]].any()
    per_env = snap[:, -1, sl["body_pos"]] | snap[:, -1, sl["body_rot"]]
    assert per_env.sum(1).min() >= 1 and per_env.sum(1).max() <= 2
    traj = bits["trajectory"]
    assert not traj[:, -1].any() and not traj[..., sl["contact"]].any()
    assert torch.equal(traj[:, :-1], traj[:, :1].expand_as(traj[:, :-1])) and traj[:, 0, body_obj].any(1).all()
    contact = bits["contact"]
    assert not contact[..., body_obj].any() and contact[..., sl["contact"]].any(-1).all()
    composed = bits["composed"]
    parts = [composed[:, -1, body_obj].any(1), composed[:, 0, body_obj].any(1),
             composed[..., sl["contact"]].any((1, 2))]
    assert (torch.stack(parts).sum(0) >= 2).all()  # at least two different sparse goals
    # object bits: about object_prob of the snapshot goals give the object position
    assert 0.4 < float(snap[:, -1, sl["obj_pos"]].float().mean()) < 0.6
    assert not (snap[:, -1, sl["obj_rot"]] & ~snap[:, -1, sl["obj_pos"]]).any()


def test_goal_schedule_snapshots_and_targets():
    s = MaskSampling(snapshot_frames=(10, 20), repeat_prob=0.0)
    sched = GoalSchedule(3, LAYOUT, s, fps=30.0, generator=torch.Generator().manual_seed(0))
    frames, last = torch.tensor([0, 5, 95]), torch.tensor([100, 100, 100])
    sched.reset(torch.arange(3), frames, last)
    ahead = sched.snapshot_frame - frames
    assert (ahead[:2] >= 10).all() and (ahead[:2] <= 20).all() and sched.snapshot_frame[2] == 100  # clamped
    targets = sched.target_frames(frames, last)
    assert targets[0, :-1].tolist() == list(LAYOUT.preview_offsets) and targets[2, :-1].max() == 100
    assert torch.allclose(sched.times(frames, targets)[0, 0], torch.tensor(LAYOUT.preview_offsets[0] / 30.0))
    before = sched.snapshot_frame.clone()
    reached = sched.advance(before.clone(), last)  # every env reaches its snapshot
    assert sorted(reached.tolist()) == [0, 1, 2] and (sched.snapshot_frame[:2] > before[:2]).all()
    assert sched.advance(frames, last).numel() == 0  # none reached yet
    fixed = torch.zeros(LAYOUT.num_tokens, LAYOUT.bit_size, dtype=torch.bool)
    fixed[-1, LAYOUT.bit_slices["obj_pos"]] = True  # a user's "object there" command
    user = GoalSchedule(2, LAYOUT, s, fps=30.0, fixed_bits=fixed)
    user.reset(torch.arange(2), torch.zeros(2, dtype=torch.long), torch.full((2,), 50))
    assert torch.equal(user.bits, fixed.expand(2, -1, -1))


def test_object_and_hand_goals_give_only_their_parts():
    """Object goals: the object's position (maybe rotation) only, on the snapshot or on every preview token, never
    both; hand goals: one or both wrist positions only. `restricted_to` makes object/hand snapshots and
    object_path paths."""
    from interprior.mdp.goal_masks import GOAL_TYPES, MaskSampling, sample_bits
    from interprior.mdp.goals import GoalLayout

    layout, s, g = GoalLayout(), MaskSampling(), torch.Generator().manual_seed(1)
    sl, n = layout.bit_slices, 4000
    obj = sample_bits(torch.full((n,), GOAL_TYPES.index("object")), layout, s, g)
    assert not obj[..., sl["body_pos"]].any() and not obj[..., sl["body_rot"]].any() and not obj[..., sl["contact"]].any()
    pos = obj[..., sl["obj_pos"]].squeeze(-1)  # [n, K]
    path = pos[:, :-1].all(1)
    assert torch.equal(path, ~pos[:, -1]) and (path | pos[:, -1]).all()  # a path or a snapshot, always one
    assert abs(path.float().mean() - s.object_path_prob) < 0.03
    rot = obj[..., sl["obj_rot"]].squeeze(-1).any(1)
    assert abs(rot.float().mean() - s.object_rotation_prob) < 0.03 and not (rot & ~pos.any(1)).any()

    hand = sample_bits(torch.full((n,), GOAL_TYPES.index("hand")), layout, s, g)
    body = hand[..., sl["body_pos"]]  # [n, K, B]
    others = [i for i in range(layout.num_bodies) if i not in layout.hand_slots]
    assert not body[..., others].any() and not hand[..., sl["obj_pos"]].any() and not hand[..., sl["body_rot"]].any()
    hands = body[..., list(layout.hand_slots)].any(1).sum(1)
    assert ((hands == 1) | (hands == 2)).all() and abs((hands == 2).float().mean() - s.both_hands_prob) < 0.03
    assert [layout.bodies[i] for i in layout.hand_slots] == [schema.BODY_INDEX["L_Wrist"], schema.BODY_INDEX["R_Wrist"]]

    for goal, path_prob in (("object", 0.0), ("object_path", 1.0), ("hand", None)):
        only = s.restricted_to(goal)
        assert only.type_probs()[GOAL_TYPES.index(goal.split("_")[0])] == 1.0
        if path_prob is not None:
            assert only.object_path_prob == path_prob
        assert only.hand_path_prob == 0.0
    with pytest.raises(ValueError, match="object_path"):
        s.restricted_to("elbow")


def test_object_and_hand_goals_are_scored_by_the_rule_of_their_form():
    from interprior.mdp.goal_success import SUCCESS_RULES, scoring_rule

    assert scoring_rule("object") == scoring_rule("hand") == "snapshot" and scoring_rule("object_path") == "trajectory"
    assert scoring_rule("contact") == "contact" and "object only" in SUCCESS_RULES["object_path"]


def test_snapshot_targets_are_timed_where_the_given_parts_moved_farthest():
    from interprior.mdp.goal_success import largest_move_frames

    t = torch.arange(10.0)
    positions = torch.zeros(10, 3, 2, 3)
    positions[:, 0, 0, 0] = t * 0.1  # row 0, part 0: walks away, 0.9 m at frame 9
    positions[:, 0, 1, 1] = torch.where(t < 5, t, 10 - t) * 0.2  # part 1 (not given): farthest at frame 5
    positions[:, 1, 1, 2] = torch.where(t < 5, t, 10 - t) * 0.2  # row 1, part 1 (given): 1.0 m at frame 5
    given = torch.tensor([[True, False], [False, True], [True, True]])  # row 2 never moves
    frame, moved = largest_move_frames(positions, given, first=torch.tensor([2, 2, 2]), last=torch.tensor([7, 9, 9]))
    assert frame[:2].tolist() == [7, 5]  # the window caps row 0
    assert torch.allclose(moved, torch.tensor([0.7, 1.0, 0.0]))
    nothing = torch.zeros(3, 2, dtype=torch.bool)
    assert largest_move_frames(positions, nothing, torch.tensor([2] * 3), torch.tensor([9] * 3))[1].eq(0).all()
