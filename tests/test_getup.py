"""Getting up (Stage III): the prior's subtask token (off = the plain graph, bit for bit; older state dicts load), the
episodes' get-up token (set on fallen starts, cleared once standing) and the upright reward on get-up rows only."""

import math
from dataclasses import replace

import pytest
import torch

from interprior.algos.ppo import PPO
from interprior.envs.goal import GoalEnv
from interprior.envs.tracking import TrackingConfig, TrackingEnv
from interprior.mdp.goal_masks import MaskSampling
from interprior.mdp.goals import GoalLayout
from interprior.mdp.inbetween import SuccessTolerances, upright_reward
from interprior.models.finetune_policy import PriorActorCritic, goal_observation
from interprior.models.prior import (
    GET_UP,
    GoalPolicy,
    MaskedGoalPrior,
    PriorModelConfig,
    subtask_init,
)
from interprior.models.prior_onnx import INPUT_NAMES, example_inputs
from interprior.rotations import axis_angle_to_quat
from interprior.train.finetune import finetune_ppo, upgrade_optimizer_state
from interprior.train.finetune_episodes import (
    GoalTypes,
    InbetweenEpisodes,
    StartDistribution,
)

TINY = PriorModelConfig(width=32, heads=4, layers=2, ff_width=64, token_hidden=(32,), encoder_hidden=(32,),
                        decoder_hidden=(32,))


def _model(seed: int) -> MaskedGoalPrior:
    torch.manual_seed(seed)
    model = MaskedGoalPrior(20, 7, GoalLayout(), TINY).eval()
    with torch.no_grad():  # normalisers away from identity so they count
        model.state_norm.mean.normal_()
        model.goal_norm.mean.normal_()
    return model


def _plain_prior(model: MaskedGoalPrior, s, features, bits, time):
    """The prior as it was before the subtask token (no token anywhere)."""
    tokens = torch.cat([model.state_token(s)[:, None],
                        model.goal_token(model._goal_tokens_in(features, bits, time))], dim=1) + model.slot
    padding = torch.cat([torch.zeros_like(bits[:, :1, 0]), bits.sum(dim=-1) == 0], dim=1)
    for i, block in enumerate(model.blocks):
        tokens = block(tokens, padding, first_only=i == len(model.blocks) - 1)
    return model._split(model.prior_out(tokens[:, 0]))


def test_token_off_is_the_plain_prior_and_old_state_dicts_load():
    old = {k: v for k, v in _model(0).state_dict().items() if k != "subtask_token"}  # a pre-token checkpoint
    model = _model(1)
    model.load_state_dict(old)  # strict
    assert torch.equal(model.subtask_token, subtask_init(*model.subtask_token.shape))
    state_obs, features, bits, time, _, _ = example_inputs(model, batch=4)
    s, b = model.state_norm(state_obs), bits > 0.5
    with torch.no_grad():
        ref_mu, ref_lv = _plain_prior(model, s, features, b, time)
        for subtask in (None, torch.zeros(4, dtype=torch.long)):
            mu, lv = model.prior(s, features, b, time, subtask)
            assert torch.equal(mu, ref_mu) and torch.equal(lv, ref_lv)
        mixed = torch.tensor([0, GET_UP, 0, GET_UP])
        mu, lv = model.prior(s, features, b, time, mixed)
    off = mixed == 0
    assert torch.equal(mu[off], ref_mu[off]) and torch.equal(lv[off], ref_lv[off])
    assert not torch.allclose(mu[~off], ref_mu[~off])  # the token changes what it is set on
    with pytest.raises(ValueError, match="subtask ids"):
        model.prior(s, features, b, time, torch.tensor([0, 5, 0, 0]))
    # the exported graph's path (no data-dependent indexing) gives the same, rows on and off
    with torch.no_grad():
        mu_all, lv_all = model.prior_every_row(s, features, b, time, mixed)
    assert torch.allclose(mu_all, mu, atol=1e-6) and torch.allclose(lv_all, lv, atol=1e-6)
    # the deployable paths: GoalPolicy with the token off acts as before; the ONNX graph takes the id
    graph = model.inference_graph()
    policy = GoalPolicy(model, 4, deterministic=True)
    goal = type("G", (), {"features": lambda self: features, "bits": b, "time": time})()
    plain = graph(state_obs, features, bits, time, torch.zeros(4, TINY.latent_dim))
    assert torch.equal(policy.act(state_obs, goal), plain)
    assert torch.equal(policy.act(state_obs, goal, torch.zeros(4, dtype=torch.long)), plain)
    assert not torch.equal(policy.act(state_obs, goal, mixed), plain)
    assert INPUT_NAMES == ("state_obs", "goal_features", "goal_bits", "goal_time", "eps", "subtask")


def test_actor_critic_token_and_old_optimizer_state():
    model = _model(0)
    policy = PriorActorCritic(model, critic_hidden=(16,))
    state_obs, features, bits, time, eps, _ = example_inputs(model, batch=3)
    goal = type("G", (), {"features": lambda self: features, "bits": bits > 0.5, "time": time})()
    plain = policy.mean_action({k: v for k, v in goal_observation(state_obs, goal, eps).items() if k != "subtask"})
    assert torch.equal(policy.mean_action(goal_observation(state_obs, goal, eps)), plain)
    on = policy.mean_action(goal_observation(state_obs, goal, eps, torch.tensor([0.0, 1.0, 0.0])))
    assert torch.equal(on[[0, 2]], plain[[0, 2]]) and not torch.equal(on[1], plain[1])
    on[1].sum().backward()
    assert policy.subtask_token.grad[GET_UP].abs().sum() > 0  # the token learns
    # a PPO state saved before the token (the actor group without it) resumes; the token starts without moments
    ppo = PPO(policy, finetune_ppo())
    actor = list(policy.actor_parameters())[:-1]
    old_opt = torch.optim.Adam([{"params": actor, "lr": 1e-5, "name": "actor"},
                                {"params": list(policy.critic_parameters()), "lr": 3e-4, "name": "critic"}])
    for p in old_opt.param_groups[0]["params"] + old_opt.param_groups[1]["params"]:
        p.grad = torch.ones_like(p)
    old_opt.step()
    old = {"optimizer": old_opt.state_dict(), "generator": ppo.generator.get_state()}
    ppo.load_state_dict(upgrade_optimizer_state(old, ppo.optimizer))
    assert policy.subtask_token not in ppo.optimizer.state
    for p in actor + list(policy.critic_parameters()):
        assert torch.equal(ppo.optimizer.state[p]["exp_avg"], old_opt.state[p]["exp_avg"])
    policy.subtask_token.data[GET_UP] += 1.0
    policy.sync_prior()
    assert torch.equal(model.subtask_token, policy.subtask_token.detach())


@pytest.fixture(scope="module")
def episodes(synth_data):
    cfg = TrackingConfig(num_envs=4, init="start", psi_slots=1, perturb_prob=0.0, randomize_dynamics=False,
                         init_noise_pos=0.0, init_noise_rot=0.0, episode_length=50, threads=1)
    env = TrackingEnv(synth_data.clips("box", shortest=1), synth_data.objects_dir, cfg)
    g = torch.Generator().manual_seed(0)
    goal_env = GoalEnv(env, GoalLayout(), MaskSampling(), generator=g)
    goal_env.start()
    ep = InbetweenEpisodes(goal_env, torch.tensor([1, 2, 3]), StartDistribution(),
                           GoalTypes().sampling(MaskSampling(), (3, 6)), SuccessTolerances(), 1, g, getup_reward=0.5)
    ep.pool = (env.reset_state_of(env.sim.state()), env.clip_ids.clone(), env.frame.clone())  # constructed pool
    return ep


def _posture(state, torso: int, heights, angles):
    """`state` with the pelvis at `heights` and the torso turned `angles` (rad) about x from upright, per row."""
    root = state.root_pos.clone()
    root[:, 2] = torch.tensor(heights).to(root)
    rot = state.body_rot.clone()
    rot[:, torso] = axis_angle_to_quat(torch.tensor([[a, 0.0, 0.0] for a in angles])).to(rot)
    return replace(state, root_pos=root, body_rot=rot)


def test_getup_token_set_on_fallen_starts_and_cleared_once_standing(episodes):
    ep = episodes
    ep.probs = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)  # every start fallen
    ep.begin(torch.tensor([1, 2, 3]))
    assert ep.subtask.tolist() == [0, GET_UP, GET_UP, GET_UP]  # row 0: distillation, never a get-up row
    state = ep.env.sim.state()
    torso = ep.env.groups.torso[0]
    lie, stand = math.pi / 2, 0.0
    # rows 1, 3 stand; row 2 lies: only 1 and 3 are cleared, and stay cleared while the episode goes on
    stood = ep.update_subtask(_posture(state, torso, [0.95, 0.95, 0.3, 0.95], [stand, stand, lie, stand]))
    assert stood.tolist() == [False, True, False, True] and ep.subtask.tolist() == [0, 0, GET_UP, 0]
    ep.update_subtask(_posture(state, torso, [0.3, 0.3, 0.3, 0.3], [lie] * 4))
    assert ep.subtask.tolist() == [0, 0, GET_UP, 0]
    # other starts: no token
    ep.probs = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    ep.begin(torch.tensor([2]))
    assert ep.subtask.tolist() == [0, 0, 0, 0]


def test_holding_starts_are_at_held_frames(episodes):
    """A `holding_share` of the dataset starts begin where the reference holds the object (the pickup clip has such
    frames); the others where the env's own start sampling put them."""
    ep = episodes
    ref = ep.env.ref
    assert len(ep.held_frames) > 0
    held = ref.tracks["obj_contact"][ep.held_frames] > 0.5
    assert held.all()
    ep.probs = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    ep.starts.holding_share = 1.0
    ep.begin(torch.tensor([1, 2, 3]))
    flat = ref.flat(ep.env.clip_ids[1:], ep.env.frame[1:])
    assert ep.holding[1:].all() and torch.isin(flat, ep.held_frames).all()
    ep.starts.holding_share = 0.0
    ep.begin(torch.tensor([1, 2, 3]))
    assert not ep.holding.any()
    ep.starts.holding_share = 0.3


def test_upright_reward_only_on_getup_rows(episodes):
    ep = episodes
    ep.probs = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    ep.begin(torch.tensor([1, 2]))
    ep.probs = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    ep.begin(torch.tensor([3]))
    ep.subtask[0] = GET_UP  # not an RL row: still no upright reward
    torso = ep.env.groups.torso[0]
    state = _posture(ep.env.sim.state(), torso, [0.6, 0.7, 0.5, 0.6], [0.3, 0.2, 0.4, 0.1])
    bonus = ep.getup_bonus(state).cpu()
    h, rot = ep.posture(state)
    expected = 0.5 * upright_reward(h, rot) * torch.tensor([0.0, 1.0, 1.0, 0.0])
    assert torch.allclose(bonus, expected.to(bonus)) and (bonus[1:3] > 0).all()
    ep.getup_reward = 0.0  # off: nothing
    assert ep.getup_bonus(state).abs().sum() == 0
    ep.getup_reward = 0.5
    ep.subtask[0] = 0

def test_steering_set_subtask():
    from interprior.errors import InterpriorError
    from interprior.steer.steering import Steering

    steer = Steering.__new__(Steering)  # the method alone (no scene): it names the token the policy gets
    steer.set_subtask("get_up")
    assert steer.subtask == "get_up" and steer._subtask_ids.tolist() == [GET_UP]
    steer.set_subtask(None)
    assert steer.subtask is None and steer._subtask_ids is None
    for bad in ("none", "jump"):
        with pytest.raises(InterpriorError, match="unknown subtask"):
            steer.set_subtask(bad)
