"""Stage II's learning step: the rollout storage and the weighted ELBO of the variational distillation
(InterPrior §3), beside PPO. The trainer that drives the goal environment is `interprior.train.distill`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interprior.config import require
from interprior.mdp.goals import Goal, GoalLayout
from interprior.models.prior import MaskedGoalPrior, gaussian_kl, sphere_latent


@dataclass
class LossWeights:
    action: float = 1.0
    reconstruction: float = 0.1
    kl_start: float = 1e-4  # MaskedMimic's ramp 1e-4 -> 1e-2 (protomotions facts §4.2)
    kl_end: float = 1e-2
    kl_ramp_samples: tuple[int, int] = (20_000_000, 80_000_000)
    prior_norm: float = 0.1  # (|μ_p| − 1)²: the prior mean on the sphere the latents live on
    temporal: float = 0.01  # |μ_p(t) − μ_p(t−1)|² within an episode
    # ‖decode(prior latent) − a_expert‖²: imitation through the deployable path too. 0 = the paper's loss, where
    # the prior learns only through the KL and, at its small weight, imitates about twice as badly as the posterior
    prior_action: float = 0.0

    def __post_init__(self):
        require(self, non_negative=("action", "reconstruction", "kl_start", "kl_end", "kl_ramp_samples", "prior_norm",
                                    "temporal", "prior_action"))

    def kl_weight(self, samples: int) -> float:
        a, b = self.kl_ramp_samples
        frac = 1.0 if b <= a else min(max((samples - a) / (b - a), 0.0), 1.0)
        return self.kl_start + frac * (self.kl_end - self.kl_start)

# --- rollout storage ---------------------------------------------------------------------------------------------
class DistillBuffer:
    """[T, N, ...] of what the losses replay: self obs, goal, the episode's ε, the expert label, episode starts."""

    def __init__(self, horizon: int, num_envs: int, state_dim: int, act_dim: int, layout: GoalLayout,
                 latent_dim: int, device):
        t, n, k = horizon, num_envs, layout.num_tokens
        z = lambda *s, dtype=torch.float32: torch.zeros(t, n, *s, dtype=dtype, device=device)  # noqa: E731
        self.layout = layout
        self.state_obs = z(state_dim)
        self.full = z(k, layout.feature_size)
        self.bits = z(k, layout.bit_size, dtype=torch.bool)
        self.defined = z(k, layout.bit_size, dtype=torch.bool)
        self.time = z(k)
        self.eps = z(latent_dim)
        self.label = z(act_dim)
        self.first = z(dtype=torch.bool)

    def add(self, t: int, state_obs, goal: Goal, eps, label, first) -> None:
        self.state_obs[t], self.full[t], self.bits[t] = state_obs, goal.full, goal.bits
        self.defined[t], self.time[t], self.eps[t] = goal.defined, goal.time, eps
        self.label[t], self.first[t] = label, first

    def envs(self, ids: torch.Tensor) -> dict:
        """Whole trajectories of envs `ids`, flattened time-major to [T * n, ...]."""
        flat = lambda x: x[:, ids].reshape((-1,) + x.shape[2:])  # noqa: E731
        goal = Goal(flat(self.full), flat(self.bits), flat(self.defined), flat(self.time), self.layout)
        return {"state_obs": flat(self.state_obs), "goal": goal, "eps": flat(self.eps), "label": flat(self.label),
                "first": self.first[:, ids], "horizon": self.first.shape[0]}


def distillation_losses(model: MaskedGoalPrior, batch: dict, weights: LossWeights, kl_weight: float) -> dict:
    """The weighted ELBO + auxiliary terms on one minibatch (whole trajectories, see `DistillBuffer.envs`)."""
    goal: Goal = batch["goal"]
    out = model.forward_train(batch["state_obs"], goal, batch["eps"])
    action = (out["action"] - batch["label"]).square().mean()
    hidden = goal.hidden_entries().float()
    recon = ((out["recon"] - out["recon_target"]).square() * hidden).sum() / hidden.sum().clamp_min(1.0)
    kl = gaussian_kl(out["mu_q"], out["logvar_q"], out["mu_p"], out["logvar_p"]).mean()
    prior_norm = (out["mu_p"].norm(dim=-1) - 1.0).square().mean()
    mu = out["mu_p"].reshape(batch["horizon"], -1, out["mu_p"].shape[-1])
    same_episode = (~batch["first"][1:]).float()
    step = (mu[1:] - mu[:-1]).square().sum(-1)
    temporal = (step * same_episode).sum() / same_episode.sum().clamp_min(1.0)
    # the deployable policy's error: decode the prior's latent with the same ε (a loss term when weighted)
    with torch.set_grad_enabled(weights.prior_action > 0 and torch.is_grad_enabled()):
        s = model.state_norm(batch["state_obs"].float())
        prior_action = model.decode_action(s, sphere_latent(out["mu_p"], out["logvar_p"], batch["eps"]), out["goal_in"])
        prior_err = (prior_action - batch["label"]).square().mean()
    total = (weights.action * action + weights.reconstruction * recon + kl_weight * kl
             + weights.prior_norm * prior_norm + weights.temporal * temporal)
    if weights.prior_action > 0:
        total = total + weights.prior_action * prior_err
    return {"total": total, "action": action, "reconstruction": recon, "kl": kl, "prior_norm": prior_norm,
            "temporal": temporal, "action_prior": prior_err}
