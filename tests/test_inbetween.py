"""Stage III kernels: the in-betweening success reward is exactly 0 or r_succ and respects the mask; fallen and
standing postures."""

import math

import pytest
import torch

from interprior.mdp.goals import GoalLayout
from interprior.mdp.inbetween import (
    SuccessTolerances,
    is_fallen,
    is_standing,
    success_reward,
    torso_tilt,
    upright_reward,
)
from interprior.rotations import axis_angle_to_quat

LAYOUT = GoalLayout()
TOL = SuccessTolerances(reward=2.0)


def _case(n=1):
    return torch.zeros(n, LAYOUT.feature_size), torch.zeros(n, LAYOUT.bit_size, dtype=torch.bool)


def test_reward_is_zero_or_r_succ_and_respects_the_mask():
    sl_f, sl_b = LAYOUT.feature_slices, LAYOUT.bit_slices
    residual, bits = _case(4)
    bits[:, sl_b["obj_pos"]] = True
    residual[0, sl_f["obj_pos"]] = torch.tensor([0.05, 0.05, 0.05])  # L1 0.15 < 0.2: reached
    residual[1, sl_f["obj_pos"]] = torch.tensor([0.1, 0.1, 0.05])  # L1 0.25: not
    residual[2, sl_f["body_pos"]] = 5.0  # a huge error on a component that is not given: ignored
    bits[3] = False  # nothing given: never a success
    r = success_reward(residual, bits, LAYOUT, TOL)
    assert r.tolist() == [2.0, 0.0, 2.0, 0.0]
    assert set(r.unique().tolist()) <= {0.0, 2.0}


def test_every_given_component_must_be_within_its_tolerance():
    sl_f, sl_b = LAYOUT.feature_slices, LAYOUT.bit_slices
    slot = LAYOUT.hand_slots[0]
    residual, bits = _case(3)
    bits[:, sl_b["body_pos"].start + slot] = True
    bits[:, sl_b["contact"].start] = True
    residual[:, sl_f["body_pos"].start + 3 * slot: sl_f["body_pos"].start + 3 * slot + 3] = 0.05  # hand: 0.15 m
    residual[1, sl_f["contact"].start] = 1.0  # the contact is not made
    residual[2, sl_f["body_pos"].start + 3 * slot] = 0.2  # hand now 0.3 m off
    assert success_reward(residual, bits, LAYOUT, TOL).tolist() == [2.0, 0.0, 0.0]


def test_distances_are_per_given_item():
    """Two bodies each 0.15 m (L1) off: the mean is 0.15, within 0.2 - the tolerance does not grow or shrink with
    the number of bodies given."""
    sl_f, sl_b = LAYOUT.feature_slices, LAYOUT.bit_slices
    residual, bits = _case()
    bits[:, sl_b["body_pos"].start: sl_b["body_pos"].start + 2] = True
    residual[:, sl_f["body_pos"].start: sl_f["body_pos"].start + 6] = 0.05
    assert success_reward(residual, bits, LAYOUT, TOL).item() == 2.0


def test_tolerances_are_range_checked():
    with pytest.raises(ValueError, match="body_position must be > 0"):
        SuccessTolerances(body_position=0.0)


def test_fallen_and_standing_postures():
    upright = axis_angle_to_quat(torch.zeros(4, 3))
    lying = axis_angle_to_quat(torch.tensor([[math.pi / 2, 0.0, 0.0]] * 4))
    tilted = axis_angle_to_quat(torch.tensor([[0.4, 0.0, 0.0]] * 4))  # 23°
    height = torch.tensor([0.95, 0.3, 0.95, 0.6])
    assert torch.allclose(torso_tilt(lying), torch.full((4,), math.pi / 2), atol=1e-5)
    assert is_fallen(height, upright).tolist() == [False, True, False, False]
    assert is_fallen(height, lying).all()
    assert is_standing(height, tilted).tolist() == [True, False, True, False]
    assert not is_standing(height, lying).any()
    r = upright_reward(height, upright)
    assert torch.all((r >= 0) & (r <= 1)) and r[0] == 1.0 and r[1] < r[3] < r[0]
    assert torch.allclose(upright_reward(height, lying), torch.zeros(4), atol=1e-6)


def test_fallen_starts_are_made_in_physics_and_really_fallen(synth_data):
    """Pushed over in physics, the kept states are fallen (pelvis low or torso tilted) and an env reset to one is
    in exactly that posture."""
    from interprior.envs.fallen import make_fallen_starts
    from interprior.envs.tracking import TrackingConfig, TrackingEnv
    from interprior.mdp.inbetween import is_fallen

    clips = synth_data.clips("box", shortest=2)
    cfg = TrackingConfig(num_envs=8, psi_slots=1, randomize_dynamics=False, perturb_prob=0.0, threads=2)
    env = TrackingEnv(clips, synth_data.objects_dir, cfg)
    starts = make_fallen_starts(env, generator=torch.Generator().manual_seed(3))
    n = len(starts.clip_ids)
    assert n >= 4, f"only {n} of 8 pushed bodies fell"
    assert ((starts.pelvis_height < 0.5) | (starts.tilt > 1.0)).all()
    fresh = TrackingEnv(clips, synth_data.objects_dir, TrackingConfig(num_envs=n, psi_slots=1,
                                                                      randomize_dynamics=False, threads=2))
    fresh.reset_to_state(torch.arange(n), starts.clip_ids, starts.frames, starts.states)
    state = fresh.sim.state()
    torso = fresh.groups.torso[0]
    assert torch.allclose(state.root_pos[:, 2].cpu().float(), starts.pelvis_height.float(), atol=1e-4)
    assert is_fallen(state.root_pos[:, 2].cpu(), state.body_rot[:, torso].cpu()).all()
