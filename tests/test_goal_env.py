"""The goal environment: goals from clips or from the caller, typed steps, one loop for every goal-driven use."""

import pytest
import torch

from interprior.envs.goal import CallerGoal, GoalEnv
from interprior.envs.tracking import TrackingConfig, TrackingEnv
from interprior.errors import InterpriorError
from interprior.mdp.goal_masks import MaskSampling
from interprior.mdp.goals import GoalLayout


@pytest.fixture(scope="module")
def goal_env(synth_data):
    cfg = TrackingConfig(num_envs=3, init="start", psi_slots=1, perturb_prob=0.0, randomize_dynamics=False,
                         init_noise_pos=0.0, init_noise_rot=0.0, episode_length=6, threads=1)
    env = TrackingEnv(synth_data.clips("box", shortest=1), synth_data.objects_dir, cfg)
    return GoalEnv(env, GoalLayout(), MaskSampling(), generator=torch.Generator().manual_seed(0))


def test_steps_are_typed_and_episodes_restart(goal_env):
    obs = goal_env.start()
    n, layout = goal_env.num_envs, goal_env.layout
    assert obs.state_obs.shape[0] == n and obs.goal.bits.shape == (n, layout.num_tokens, layout.bit_size)
    ended = 0
    for _ in range(8):
        step = goal_env.step(torch.zeros(n, goal_env.env.act_dim))
        assert step.state.body_pos.shape[0] == n and step.reference.body_pos.shape[0] == n
        assert step.terminated.dtype == torch.bool and step.truncated.dtype == torch.bool
        ended += len(step.done_ids)
        assert len(step.episode_length) == len(step.done_ids)
    assert ended >= n  # episodes of 6 steps ended and auto-reset within 8 steps


def test_caller_goal_needs_no_clip_frame(goal_env):
    goal_env.start()
    state = goal_env.env.sim.state()
    target = state.obj_pos[0, 0] + torch.tensor([0.5, 0.0, 0.3], dtype=state.obj_pos.dtype)
    goal_env.set_caller_goal(torch.tensor([1]), CallerGoal(seconds=1.0, object_position=target,
                                                           contacts={"L_Wrist": True}))
    goal = goal_env.observe().goal
    sl = goal_env.layout.bit_slices
    snap = goal.bits[1, -1]
    assert bool(snap[sl["obj_pos"]].all()) and int(snap.sum()) == 2  # object position + one contact
    assert not goal.bits[1, :-1].any()  # previews hidden
    assert goal.time[1, -1] == pytest.approx(1.0, abs=0.05)
    # the residual is the target minus the current object position, in the root heading frame: 0.5 m + 0.3 m up
    residual = goal.features()[1, -1, goal_env.layout.feature_slices["obj_pos"]]
    assert float(residual.norm()) == pytest.approx((0.5 ** 2 + 0.3 ** 2) ** 0.5, abs=1e-4)
    assert float(residual[2]) == pytest.approx(0.3, abs=1e-4)
    # other rows still follow their clip goals
    assert torch.equal(goal_env.caller, torch.tensor([False, True, False]))
    goal_env.clear_caller_goal(torch.tensor([1]))
    assert not goal_env.caller.any()


def test_caller_goal_errors_name_what_is_wrong(goal_env):
    goal_env.start()
    with pytest.raises(InterpriorError, match="not one of the goal bodies"):
        goal_env.set_caller_goal(torch.tensor([0]), CallerGoal(body_positions={"Nose": torch.zeros(3)}))
    with pytest.raises(InterpriorError, match="object_position must be"):
        goal_env.set_caller_goal(torch.tensor([0]), CallerGoal(object_position=torch.zeros(2)))
    with pytest.raises(InterpriorError, match="not finite"):
        goal_env.set_caller_goal(torch.tensor([0]), CallerGoal(object_position=torch.tensor([0.0, float("nan"), 0.0])))
    with pytest.raises(InterpriorError, match="seconds"):
        goal_env.set_caller_goal(torch.tensor([0]), CallerGoal(seconds=0.0, object_position=torch.zeros(3)))


def test_a_truncated_caller_row_keeps_its_last_observation_for_bootstrapping(goal_env):
    goal_env.start()
    state = goal_env.env.sim.state()
    target = state.obj_pos[1, 0] + torch.tensor([1.0, 0.0, 0.0], dtype=state.obj_pos.dtype)
    goal_env.set_caller_goal(torch.tensor([1]), CallerGoal(seconds=10.0, object_position=target))
    n, sl = goal_env.num_envs, goal_env.layout.feature_slices["obj_pos"]
    for _ in range(8):
        step = goal_env.step(torch.zeros(n, goal_env.env.act_dim))
        if 1 in step.done_ids.tolist():
            break
    assert bool(step.truncated[1]) and step.truncated_observation is not None  # the 6-step episode ran out
    final = step.truncated_observation
    # the row's last state, with the caller goal it was following (the next observation has a fresh clip goal)
    assert torch.equal(final.state.body_pos[1], step.state.body_pos[1])
    residual = final.goal.features()[1, -1, sl]
    expected = (target - step.state.obj_pos[1, 0]).norm()
    assert float(residual.norm()) == pytest.approx(float(expected), abs=1e-4)
    assert bool(final.goal.bits[1, -1, goal_env.layout.bit_slices["obj_pos"]].all())
    assert not goal_env.caller[1]  # the caller goal ended with the episode
    # without a caller row nothing extra is computed
    goal_env.start()
    for _ in range(8):
        assert goal_env.step(torch.zeros(n, goal_env.env.act_dim)).truncated_observation is None
