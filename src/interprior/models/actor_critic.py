"""MLP actor-critic of the InterMimic teacher (reference-code-facts §8.1).

Separate actor and critic MLPs (ReLU), a linear μ head, a fixed (not learned) log σ held as a buffer, a linear
value head, and the running observation normaliser inside the module so a checkpoint carries it.
Actions are Gaussian samples around μ; they are *not* clipped here (the environment clips to [-1, 1]) so
stored log-probabilities stay consistent with the stored actions.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch
from torch import nn

from interprior.models.normalizer import RunningNorm

_LOG_2PI = math.log(2.0 * math.pi)


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, int(h)), nn.ReLU()]
        in_dim = int(h)
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int] = (1024, 1024, 512),
        log_std: float = -2.9,
        critic_hidden: Sequence[int] | None = None,
        normalize_obs: bool = True,
        obs_clamp: float = 5.0,
    ):
        super().__init__()
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.obs_norm = RunningNorm(obs_dim, clamp=obs_clamp) if normalize_obs else None
        self.actor = mlp(obs_dim, hidden, act_dim)
        self.critic = mlp(obs_dim, hidden if critic_hidden is None else critic_hidden, 1)
        # small μ head so the initial policy acts near zero
        nn.init.uniform_(self.actor[-1].weight, -1e-3, 1e-3)
        nn.init.zeros_(self.actor[-1].bias)
        self.register_buffer("log_std", torch.full((act_dim,), float(log_std)))

    # parameter groups (separate learning rates)
    def actor_parameters(self) -> Iterator[nn.Parameter]:
        return self.actor.parameters()

    def critic_parameters(self) -> Iterator[nn.Parameter]:
        return self.critic.parameters()

    @torch.no_grad()
    def update_normalizer(self, obs: torch.Tensor) -> None:
        """Fold raw observations into the running statistics (reduced across ranks when distributed)."""
        if self.obs_norm is not None:
            self.obs_norm.update(obs)

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return obs if self.obs_norm is None else self.obs_norm(obs)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw observations ``[..., obs_dim]`` → (μ ``[..., act_dim]``, value ``[...]``)."""
        x = self.normalize(obs)
        return self.actor(x), self.critic(x).squeeze(-1)

    def mu(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(self.normalize(obs))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self.normalize(obs)).squeeze(-1)

    def log_prob(self, mu: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Diagonal-Gaussian log-density summed over action dimensions."""
        log_std = self.log_std.to(mu.dtype)
        z = (actions - mu) * torch.exp(-log_std)
        return (-0.5 * z.pow(2) - log_std - 0.5 * _LOG_2PI).sum(-1)

    def entropy(self, batch_shape: torch.Size) -> torch.Tensor:
        ent = (self.log_std + 0.5 * (1.0 + _LOG_2PI)).sum()
        return ent.expand(batch_shape)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False):
        """Sample (or take μ when ``deterministic``) → (action, log_prob, value, mu); no gradients."""
        mu, value = self(obs)
        if deterministic:
            action = mu
        else:
            action = mu + torch.exp(self.log_std).to(mu.dtype) * torch.randn_like(mu)
        return action, self.log_prob(mu, action), value, mu

    def evaluate(self, obs: torch.Tensor, actions: torch.Tensor):
        """Differentiable (log_prob, entropy, value, mu) of given actions under the current policy."""
        mu, value = self(obs)
        return self.log_prob(mu, actions), self.entropy(value.shape), value, mu
