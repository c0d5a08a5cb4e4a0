"""MLP actor-critic of the InterMimic teacher (reference-code-facts §8.1).

Separate actor and critic MLPs (ReLU), a linear μ head, a fixed (not learned) log σ held as a buffer, a linear
value head, and the running observation normaliser inside the module so a checkpoint carries it.
Actions are Gaussian samples around μ; they are *not* clipped here (the environment clips to [-1, 1]) so
stored log-probabilities stay consistent with the stored actions.
"""

from __future__ import annotations

import contextlib
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


def _runs(columns: torch.Tensor, slots: torch.Tensor) -> tuple[tuple[int, int, int], ...]:
    """(column, slot, length) of each stretch where consecutive columns go to consecutive slots."""
    out: list[list[int]] = []
    for c, t in zip(columns.tolist(), slots.tolist()):
        if out and out[-1][0] + out[-1][2] == c and out[-1][1] + out[-1][2] == t:
            out[-1][2] += 1
        else:
            out.append([c, t, 1])
    return tuple(tuple(r) for r in out)


class _Fold(torch.autograd.Function):
    """weight [H, obs_dim] -> [H, distinct columns], each repeated column's weights added to its source's: copies
    of a few contiguous stretches (a gather over column indices, and its backward's scatter, cost several times
    more on row-major weights). The backward hands each column the gradient of its slot."""

    @staticmethod
    def forward(ctx, weight, runs):
        own, copies = runs
        ctx.runs, ctx.shape = runs, weight.shape
        out = weight.new_empty((weight.shape[0], sum(n for _, _, n in own)))
        for c, t, n in own:
            out[:, t : t + n] = weight[:, c : c + n]
        for c, t, n in copies:
            out[:, t : t + n] += weight[:, c : c + n]
        return out

    @staticmethod
    def backward(ctx, grad):
        out = grad.new_empty(ctx.shape)
        for c, t, n in ctx.runs[0] + ctx.runs[1]:
            out[:, c : c + n] = grad[:, t : t + n]
        return out, None


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
        # share_input_columns: each column's source, the distinct columns, their stretches, each statistic's column
        self._source: torch.Tensor | None = None
        self._own: torch.Tensor | None = None
        self._runs: tuple = ((), ())
        self._spread: torch.Tensor | None = None
        self._checked = None  # the statistics' version last checked
        self._folded: dict = {}  # first-layer weights with copies folded, inside fixed_weights

    def share_input_columns(self, source: torch.Tensor | None) -> None:
        """Declare observation columns that always repeat an earlier one: `source[j]` is the first column holding
        column j's value (j itself for a column of its own; None: no sharing). The first layers then multiply each
        distinct column once, with the weights of its copies summed: the same function with fewer products (the
        tracking observation repeats its simulator-only blocks in every reference block, 30 % of its columns).
        Only the regrouping of those sums differs in float rounding. Parameters and checkpoints are unchanged."""
        self._folded = {}
        if source is None:
            self._source = self._own = None
            return
        source = torch.as_tensor(source, dtype=torch.long, device=self.log_std.device)
        if source.shape != (self.obs_dim,) or bool((source > torch.arange(self.obs_dim, device=source.device)).any()):
            raise ValueError(f"source must be [{self.obs_dim}] with source[j] <= j")
        own = (source == torch.arange(self.obs_dim, device=source.device)).nonzero().flatten()
        slot = torch.empty_like(source)
        slot[own] = torch.arange(len(own), device=source.device)
        copies = (source != torch.arange(self.obs_dim, device=source.device)).nonzero().flatten()
        self._runs = (_runs(own, torch.arange(len(own))), _runs(copies, slot[source[copies]]))
        self._source, self._own, self._spread, self._checked = source, own, slot[source], None

    def _apply(self, fn, recurse=True):
        out = super()._apply(fn, recurse)
        if self._source is not None:  # the column indices follow the module to its device
            self.share_input_columns(self._source.to(self.log_std.device))
        return out

    def _check_statistics(self) -> None:
        """A copy is normalised with its source's statistics: they must be identical (they are when the columns
        always were, as `update_normalizer` sees the same values in both). Checked whenever they change."""
        norm = self.obs_norm
        version = (norm.mean._version, norm.var._version, norm.mean.data_ptr())
        if self._checked == version:
            return
        src = self._source
        if not (torch.equal(norm.mean[src], norm.mean) and torch.equal(norm.var[src], norm.var)):
            raise ValueError("observation columns declared shared (share_input_columns) have different statistics")
        self._checked = version

    def _fold(self, weight: torch.Tensor) -> torch.Tensor:
        """[H, obs_dim] first-layer weight -> [H, distinct columns]: each copy's weights added to its source's."""
        return _Fold.apply(weight, self._runs)

    @contextlib.contextmanager
    def fixed_weights(self):
        """Promise that the parameters stay as they are inside (a rollout): the shared-column first layers are
        folded once instead of on every call (the optimiser's fused step leaves no trace to check against)."""
        if self._source is None:
            yield
            return
        with torch.no_grad():
            self._folded = {id(net[0]): self._fold(net[0].weight) for net in (self.actor, self.critic)}
        try:
            yield
        finally:
            self._folded = {}

    def _first_layer(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        weight = self._folded.get(id(layer))
        if weight is None or torch.is_grad_enabled() and layer.weight.requires_grad:  # learning: fold with autograd
            weight = self._fold(layer.weight)
        return nn.functional.linear(x, weight, layer.bias)

    def inputs(self, obs: torch.Tensor) -> torch.Tensor:
        """What `run_actor` / `run_critic` take: normalised observations, only the distinct columns when shared."""
        if self._source is not None:
            obs = self._distinct(obs)
            if self.obs_norm is not None:
                self._check_statistics()
                return self.obs_norm(obs, self._own)
            return obs
        return self.normalize(obs)

    def _distinct(self, obs: torch.Tensor) -> torch.Tensor:
        """The distinct columns of `obs` (a few contiguous stretches: slices, not a gather)."""
        return torch.cat([obs[..., c : c + n] for c, _, n in self._runs[0]], dim=-1)

    def _run(self, net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        if self._source is None:
            return net(x)
        x = self._first_layer(net[0], x)
        for layer in net[1:]:
            x = layer(x)
        return x

    def run_actor(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(self.actor, x)

    def run_critic(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(self.critic, x).squeeze(-1)

    # parameter groups (separate learning rates)
    def actor_parameters(self) -> Iterator[nn.Parameter]:
        return self.actor.parameters()

    def critic_parameters(self) -> Iterator[nn.Parameter]:
        return self.critic.parameters()

    @torch.no_grad()
    def update_normalizer(self, obs: torch.Tensor) -> None:
        """Fold raw observations into the running statistics (reduced across ranks when distributed)."""
        if self.obs_norm is not None and self._source is not None:  # a repeated column's moments: its source's
            self.obs_norm.update(self._distinct(obs), self._spread)
        elif self.obs_norm is not None:
            self.obs_norm.update(obs)

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return obs if self.obs_norm is None else self.obs_norm(obs)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw observations ``[..., obs_dim]`` → (μ ``[..., act_dim]``, value ``[...]``)."""
        x = self.inputs(obs)
        return self.run_actor(x), self.run_critic(x)

    def mu(self, obs: torch.Tensor) -> torch.Tensor:
        return self.run_actor(self.inputs(obs))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.run_critic(self.inputs(obs))

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
