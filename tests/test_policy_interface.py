"""PPO trains any `Policy`, with flat or structured (named-tensor) observations: here a small goal-conditioned
policy on a one-step task (act = goal − state), no simulator."""

import pytest
import torch
from torch import nn

from interprior.algos.ppo import PPO, PPOConfig, RolloutBuffer
from interprior.models.actor_critic import ActorCritic
from interprior.models.policy import is_policy


class GoalPolicy(nn.Module):
    """Reads {"state": [N, 2], "goal": [N, 2], "given": [N, 2] bits}; Gaussian actions with a fixed σ."""

    def __init__(self):
        super().__init__()
        self.actor = nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 2))
        self.critic = nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 1))
        self.log_std = -1.0
        self.normalizer_updates = 0

    def _x(self, obs):
        return torch.cat([obs["state"], obs["goal"] * obs["given"], obs["given"]], dim=-1)

    def _dist(self, obs):
        return torch.distributions.Normal(self.actor(self._x(obs)), torch.exp(torch.tensor(self.log_std)))

    def act(self, obs, deterministic=False):
        d = self._dist(obs)
        a = d.mean if deterministic else d.sample()
        return a, d.log_prob(a).sum(-1), self.value(obs), d.mean

    def evaluate(self, obs, actions):
        d = self._dist(obs)
        return d.log_prob(actions).sum(-1), d.entropy().sum(-1), self.value(obs), d.mean

    def value(self, obs):
        return self.critic(self._x(obs)).squeeze(-1)

    def update_normalizer(self, obs):
        assert set(obs) == {"state", "goal", "given"} and obs["state"].dim() == 2
        self.normalizer_updates += 1

    def actor_parameters(self):
        return self.actor.parameters()

    def critic_parameters(self):
        return self.critic.parameters()


def _rollout(policy, buf, gen, n):
    with torch.no_grad():
        for _ in range(buf.horizon):
            obs = {"state": torch.randn(n, 2, generator=gen), "goal": torch.randn(n, 2, generator=gen),
                   "given": torch.ones(n, 2)}
            a, logp, v, _ = policy.act(obs)
            reward = -(a - (obs["goal"] - obs["state"])).square().sum(-1)
            buf.add(obs, a, logp, v, reward, torch.ones(n, dtype=torch.bool))  # one-step episodes
        buf.compute_returns(torch.zeros(n), 0.99, 0.95)
    return float(buf.rewards.mean())


def test_ppo_trains_a_structured_observation_policy():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    policy, n = GoalPolicy(), 64
    assert is_policy(policy) and is_policy(ActorCritic(4, 2, hidden=(8,), critic_hidden=(8,)))
    ppo = PPO(policy, PPOConfig(actor_lr=3e-3, critic_lr=3e-3, minibatch_size=256, epochs=4, horizon=8))
    shapes = {"state": (2,), "goal": (2,), "given": (2,)}
    first = last = None
    for it in range(25):
        buf = RolloutBuffer(n, 8, shapes, 2)
        mean_reward = _rollout(policy, buf, gen, n)
        first = mean_reward if first is None else first
        last = mean_reward
        stats = ppo.update(buf)
        assert all(v == v for v in stats.values())
    assert policy.normalizer_updates == 25
    assert last > 0.5 * first  # rewards are negative: the squared action error at least halved
    assert last > -2.0


def test_ppo_refuses_a_model_that_is_not_a_policy():
    with pytest.raises(TypeError, match="Policy"):
        PPO(nn.Linear(2, 2), PPOConfig())
