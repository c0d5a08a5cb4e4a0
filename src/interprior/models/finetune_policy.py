"""Stage III's trainable policy: the deployable prior + decoder (no encoder) of a Stage II `MaskedGoalPrior`, with a
Gaussian action head and a separate critic, behind the `Policy` interface PPO trains.

Observations are structured (a dict of [N, ...] tensors, stored as such by PPO's rollout buffer):
``state_obs`` [S], ``features`` [K, F] (masked goal residuals), ``bits`` [K, G] (0/1 floats), ``time`` [K] and
``eps`` [d_z], the episode's latent noise, and ``subtask`` [] (the subtask token id as a float, 0 = none; the
trainer sets 1 = get up on fallen starts until the body stands).

**Subtask token.** The prior holds its token table as a buffer (Stage II never trains it); here it is a parameter of
its own (`subtask_token`, last among the actor's parameters), copied into the prior by `sync_prior` (the trainer
does so after each update and before a checkpoint) and back by `load_prior_state`.

**Exploration.** Two sources, both on purpose:

* the **policy's own latent sampling**: every episode draws ε ~ N(0, I) once (the trainer), the latent is
  z = normalise(μ_p + σ_p ε) on the sphere, exactly as the deployed `GoalPolicy` samples it. This explores
  *between behaviours* the prior already knows (different ways to reach a goal) and stays on the motion manifold;
  ε is an observation, not an action, so it does not enter the likelihood;
* **Gaussian action noise** around the decoded mean with a learnable log σ (starting small, `log_std`): the latent
  alone cannot make the small corrections a sparse reward asks for (and its spread collapses where the prior is
  confident), and PPO needs an action likelihood. Starting at σ ≈ 0.1 keeps the first rollouts the distilled
  policy's.

The prior's running normalisers stay frozen (the decoder's inputs mean what they meant in Stage II); the critic has
its own, updated by PPO once per rollout.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from interprior.models.actor_critic import mlp
from interprior.models.normalizer import RunningNorm
from interprior.models.prior import MaskedGoalPrior, sphere_latent

_LOG_2PI = math.log(2.0 * math.pi)
OBS_KEYS = ("state_obs", "features", "bits", "time", "eps", "subtask")


def observation_shapes(model: MaskedGoalPrior) -> dict[str, tuple[int, ...]]:
    """{name: per-env shape} of the structured observation (what `RolloutBuffer` stores)."""
    k, f, g = model.layout.num_tokens, model.layout.feature_size, model.layout.bit_size
    return {"state_obs": (model.state_dim,), "features": (k, f), "bits": (k, g), "time": (k,),
            "eps": (model.cfg.latent_dim,), "subtask": ()}


def goal_observation(state_obs: Tensor, goal, eps: Tensor, subtask: Tensor | None = None) -> dict[str, Tensor]:
    """The structured observation from a self observation, a `Goal`, the episode's ε and the subtask ids [N]
    (default none)."""
    if subtask is None:
        subtask = torch.zeros(state_obs.shape[0], device=state_obs.device)
    return {"state_obs": state_obs.float(), "features": goal.features().float(), "bits": goal.bits.float(),
            "time": goal.time.float(), "eps": eps.float(), "subtask": subtask.to(state_obs.device).float()}


class PriorActorCritic(nn.Module):
    """Actor = prior + decoder of `prior` (its encoder and reconstruction head are carried but not trained);
    critic = an MLP on [self observation, flattened goal]."""

    def __init__(self, prior: MaskedGoalPrior, critic_hidden: Sequence[int] = (256, 256), log_std: float = -2.3,
                 seed: int = 0):
        super().__init__()
        self.prior = prior
        k, f, g = prior.layout.num_tokens, prior.layout.feature_size, prior.layout.bit_size
        critic_in = prior.state_dim + k * (f + g + 1)
        self.critic_norm = RunningNorm(critic_in, clamp=prior.cfg.obs_clamp)
        self.critic = mlp(critic_in, critic_hidden, 1)
        self.log_std = nn.Parameter(torch.full((prior.act_dim,), float(log_std)))
        self.generator = torch.Generator().manual_seed(seed)  # action noise (its state is checkpointed)
        self.subtask_token = nn.Parameter(prior.subtask_token.detach().clone())  # trained here, see the module

    # --- parameter groups ------------------------------------------------------------------------------------
    def actor_parameters(self) -> Iterator[nn.Parameter]:
        p = self.prior
        skip = {id(q) for m in (p.encoder, p.recon_head) for q in m.parameters()}
        yield from (q for q in p.parameters() if id(q) not in skip)
        yield self.log_std
        yield self.subtask_token  # last: an optimiser state saved before the token lacks only this one

    def critic_parameters(self) -> Iterator[nn.Parameter]:
        return self.critic.parameters()

    # --- pieces ----------------------------------------------------------------------------------------------
    def _critic_input(self, obs: dict[str, Tensor]) -> Tensor:
        n = obs["state_obs"].shape[0]
        return torch.cat([obs["state_obs"], obs["features"].reshape(n, -1), obs["bits"].reshape(n, -1),
                          obs["time"].reshape(n, -1)], dim=-1).float()

    def mean_action(self, obs: dict[str, Tensor]) -> Tensor:
        """The deployable policy's action: decoder(state, z) with z from the prior and the episode's ε."""
        m = self.prior
        s = m.state_norm(obs["state_obs"].float())
        subtask = obs.get("subtask")
        subtask = None if subtask is None else subtask.round().long()
        mu_p, logvar_p = m.prior(s, obs["features"], obs["bits"] > 0.5, obs["time"], subtask, self.subtask_token)
        goal_in = m.decoder_goal(obs["features"], obs["bits"] > 0.5, obs["time"])
        return m.decode_action(s, sphere_latent(mu_p, logvar_p, obs["eps"]), goal_in)

    @torch.no_grad()
    def sync_prior(self) -> None:
        """Copy the trained subtask token into the prior (what checkpoints and deployment read)."""
        self.prior.subtask_token.copy_(self.subtask_token)

    @torch.no_grad()
    def load_prior_state(self, state: dict) -> None:
        """Load the prior's weights (a state dict, with or without the token) and take its token."""
        self.prior.load_state_dict(state)
        self.subtask_token.copy_(self.prior.subtask_token)

    def value(self, obs: dict[str, Tensor]) -> Tensor:
        return self.critic(self.critic_norm(self._critic_input(obs))).squeeze(-1)

    def log_prob(self, mu: Tensor, actions: Tensor) -> Tensor:
        log_std = self.log_std.to(mu.dtype)
        z = (actions - mu) * torch.exp(-log_std)
        return (-0.5 * z.pow(2) - log_std - 0.5 * _LOG_2PI).sum(-1)

    def entropy(self, n: int) -> Tensor:
        return (self.log_std + 0.5 * (1.0 + _LOG_2PI)).sum().expand(n)

    # --- the Policy interface --------------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: dict[str, Tensor], deterministic: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        mu = self.mean_action(obs)
        if deterministic:
            action = mu
        else:
            noise = torch.randn(mu.shape, generator=self.generator).to(mu)
            action = mu + torch.exp(self.log_std).to(mu) * noise
        return action, self.log_prob(mu, action), self.value(obs), mu

    def evaluate(self, obs: dict[str, Tensor], actions: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        mu = self.mean_action(obs)
        return self.log_prob(mu, actions), self.entropy(mu.shape[0]), self.value(obs), mu

    @torch.no_grad()
    def update_normalizer(self, obs: dict[str, Tensor]) -> None:
        """Only the critic's statistics move; the prior's stay those it was distilled with."""
        self.critic_norm.update(self._critic_input(obs))

    def extra_state(self) -> dict:
        """What a checkpoint needs beyond the prior's own weights (critic, its normaliser, log σ, noise stream)."""
        return {"critic": self.critic.state_dict(), "critic_norm": self.critic_norm.state_dict(),
                "log_std": self.log_std.detach().clone(), "generator": self.generator.get_state()}

    def load_extra_state(self, state: dict) -> None:
        self.critic.load_state_dict(state["critic"])
        self.critic_norm.load_state_dict(state["critic_norm"])
        with torch.no_grad():
            self.log_std.copy_(state["log_std"])
        self.generator.set_state(state["generator"])
