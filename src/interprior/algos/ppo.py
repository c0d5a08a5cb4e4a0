"""PPO for the Stage I teacher (constants of reference-code-facts §8.1).

Loss = policy (clipped surrogate) + ``critic_coef`` · MSE(value, return) + ``bound_coef`` · soft bound on μ
(− ``entropy_coef`` · entropy, 0 by default). GAE with timeouts bootstrapping from the value of the final
observation and terminations zeroing it.

Usage per iteration::

    buf.clear()
    for t in range(cfg.horizon):
        a, logp, v, _ = model.act(obs)
        step = env.step(a.clamp(-1, 1))   # a TrackingStep
        buf.add(obs, a, logp, v, step.reward, step.terminated, step.timeout,
                timeout_values=model.value(step.final_obs) at step.done_ids)
        obs = step.obs
    buf.compute_returns(model.act(obs)[2], cfg.gamma, cfg.gae_lambda)
    stats = ppo.update(buf)

Distributed (torchrun): every rank holds its own envs and buffer; ``update`` all-reduces (averages) gradients
before each optimiser step, reduces the observation statistics and the advantage moments over ranks, so the
model stays identical on every rank. ``minibatch_size`` is per rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interprior.config import require
from interprior.distributed import all_reduce_mean_, all_reduce_sum_, average_gradients
from interprior.models.actor_critic import ActorCritic
from interprior.models.policy import Policy, is_policy


@dataclass
class PPOConfig:
    num_envs: int = 4096
    horizon: int = 32
    minibatch_size: int = 16384
    epochs: int = 6  # mini-epochs over each rollout
    actor_lr: float = 2e-5
    critic_lr: float = 1e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    critic_coef: float = 5.0
    bound_coef: float = 10.0
    bound: float = 1.0  # soft bound on |μ|
    entropy_coef: float = 0.0
    max_grad_norm: float | None = None  # None: no clipping (reference: truncate_grads False)
    normalize_advantage: bool = True
    # adaptive learning rate: after each minibatch, both rates ÷1.5 when the KL(old‖new) exceeds 2·desired_kl and
    # ×1.5 below desired_kl/2 (within lr_range). None: the constant rates above (the papers' setting, at their
    # 16384-sample minibatches; small CPU minibatches with the fixed σ overshoot without it).
    desired_kl: float | None = None
    lr_range: tuple[float, float] = (1e-6, 1e-2)
    seed: int = 0  # minibatch shuffling

    def __post_init__(self):
        require(self, positive=("num_envs", "horizon", "minibatch_size", "epochs", "actor_lr", "critic_lr", "clip",
                                "max_grad_norm", "desired_kl"),
                non_negative=("critic_coef", "bound_coef", "bound", "entropy_coef", "seed"),
                fraction=("gamma", "gae_lambda"))


class RolloutBuffer:
    """Fixed-size ``[horizon, num_envs, ...]`` storage of one rollout plus GAE advantages/returns."""

    def __init__(self, num_envs: int, horizon: int, obs_dim: "int | dict[str, tuple]", act_dim: int, device="cpu"):
        """`obs_dim`: the size of a flat observation, or a structured one as {name: per-env shape} (e.g. a goal
        policy's self observation, goal features, bits and times), stored as named tensors and handed to the
        policy's `evaluate` / `update_normalizer` as a dict of the same names."""
        self.num_envs, self.horizon, self.device = num_envs, horizon, torch.device(device)
        z = lambda *s: torch.zeros(horizon, num_envs, *s, device=self.device)  # noqa: E731
        if isinstance(obs_dim, dict):
            self.obs = {name: z(*shape) for name, shape in obs_dim.items()}
        else:
            self.obs = z(obs_dim)
        self.actions = z(act_dim)
        self.log_probs, self.values, self.rewards = z(), z(), z()
        self.dones = torch.zeros(horizon, num_envs, dtype=torch.bool, device=self.device)  # terminated
        self.timeouts = torch.zeros_like(self.dones)
        self.timeout_values = z()  # value of the final observation where timeouts is set
        self.advantages, self.returns = z(), z()
        self.step, self.ready = 0, False

    def clear(self) -> None:
        self.step, self.ready = 0, False

    @property
    def full(self) -> bool:
        return self.step == self.horizon

    @torch.no_grad()
    def add(self, obs, actions, log_probs, values, rewards, dones, timeouts=None, timeout_values=None) -> None:
        """Store one env step. ``dones`` = terminated (no bootstrap); ``timeouts`` = truncated, bootstrapped with
        ``timeout_values`` (``[num_envs]``, value of the final, pre-reset observation; other entries ignored)."""
        if self.full:
            raise RuntimeError(f"rollout buffer full ({self.horizon} steps); call clear() first")
        t = self.step
        if isinstance(self.obs, dict):
            for name, value in obs.items():
                self.obs[name][t] = value
        else:
            self.obs[t] = obs
        self.actions[t] = actions
        self.log_probs[t] = log_probs
        self.values[t] = values
        self.rewards[t] = rewards
        self.dones[t] = dones
        self.timeouts[t] = False if timeouts is None else timeouts
        if timeouts is not None and timeout_values is None and bool(torch.as_tensor(timeouts).any()):
            raise ValueError("timeouts given without timeout_values (value of the final observation)")
        self.timeout_values[t] = 0.0 if timeout_values is None else timeout_values
        self.step += 1
        self.ready = False

    @torch.no_grad()
    def compute_returns(self, last_values: torch.Tensor, gamma: float, lam: float) -> None:
        """GAE(λ) over the stored steps; ``last_values`` = value of the observation after the last step."""
        if not self.full:
            raise RuntimeError(f"rollout has {self.step}/{self.horizon} steps")
        gae = torch.zeros(self.num_envs, device=self.device)
        next_value = last_values.to(self.device, torch.float32)
        for t in reversed(range(self.horizon)):
            ended = self.dones[t] | self.timeouts[t]
            # termination wins over a simultaneous timeout: no bootstrap
            boot = torch.where(self.dones[t], 0.0, self.timeout_values[t])
            next_v = torch.where(ended, boot, next_value)
            delta = self.rewards[t] + gamma * next_v - self.values[t]
            gae = delta + gamma * lam * (~ended).float() * gae
            self.advantages[t] = gae
            next_value = self.values[t]
        self.returns.copy_(self.advantages + self.values)
        self.ready = True

    def flat(self) -> dict[str, torch.Tensor]:
        n = self.horizon * self.num_envs
        flat = lambda x: x.reshape((n,) + x.shape[2:])  # noqa: E731
        return {
            "obs": {k: flat(v) for k, v in self.obs.items()} if isinstance(self.obs, dict) else flat(self.obs),
            "actions": self.actions.reshape(n, -1),
            "log_probs": self.log_probs.reshape(n),
            "values": self.values.reshape(n),
            "advantages": self.advantages.reshape(n),
            "returns": self.returns.reshape(n),
        }


def select_rows(obs, idx: torch.Tensor):
    """Rows `idx` of a flat observation tensor or of every tensor of a structured (dict) one."""
    return {k: v[idx] for k, v in obs.items()} if isinstance(obs, dict) else obs[idx]


def bound_loss(mu: torch.Tensor, bound: float = 1.0) -> torch.Tensor:
    """Soft bound on μ: mean over the batch of Σ_dims (max(μ−b, 0)² + min(μ+b, 0)²)."""
    return ((mu - bound).clamp_min(0.0).pow(2) + (mu + bound).clamp_max(0.0).pow(2)).sum(-1).mean()


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    var = returns.var()
    return float("nan") if var.item() == 0 else float(1.0 - (returns - values).var() / var)


class PPO:
    def __init__(self, model: Policy, cfg: PPOConfig):
        if not is_policy(model):
            raise TypeError(f"PPO trains a Policy (act, evaluate, value, update_normalizer, actor_parameters, "
                            f"critic_parameters); {type(model).__name__} lacks some")
        self.model, self.cfg = model, cfg
        # one Adam, two parameter groups = separate actor / critic learning rates
        groups = [
            {"params": list(model.actor_parameters()), "lr": cfg.actor_lr, "name": "actor"},
            {"params": list(model.critic_parameters()), "lr": cfg.critic_lr, "name": "critic"},
        ]
        # the fused kernel: the same Adam update in one pass over all parameters instead of a dozen tensor ops per
        # parameter (on the CPU preset's 1.8 M parameters: ~1 ms a step instead of 3-9 ms)
        self._fused = _fused_adam_ok([p for g in groups for p in g["params"]])
        self.optimizer = torch.optim.Adam(groups, fused=True if self._fused else None)
        self.generator = torch.Generator().manual_seed(cfg.seed)

    def _params(self):
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def _evaluator(self, obs, rows: int):
        """evaluate(idx, actions) of minibatch rows `idx`: for the MLP actor-critic the observations are normalised
        once per update (the statistics stay fixed during it; row by row, so exactly what `model.evaluate`
        computes per minibatch) and each minibatch's rows are copied into one reused buffer; other policies
        evaluate raw observations."""
        model = self.model
        if type(model) is not ActorCritic or not torch.is_tensor(obs):
            return lambda idx, actions: model.evaluate(select_rows(obs, idx), actions)
        with torch.no_grad():
            x = model.inputs(obs)
        x_rows = x.new_empty((rows,) + x.shape[1:])

        def evaluate(idx, actions):
            torch.index_select(x, 0, idx, out=x_rows)
            mu, value = model.run_actor(x_rows), model.run_critic(x_rows)
            return model.log_prob(mu, actions), model.entropy(value.shape), value, mu

        return evaluate

    def update(self, buffer: RolloutBuffer) -> dict[str, float]:
        """Fold the rollout's observations into the model's normaliser (the only place it is updated; the
        collector must not), then ``epochs`` passes of shuffled minibatches. Returns mean losses and diagnostics
        (averaged over ranks when distributed)."""
        cfg, model = self.cfg, self.model
        if not buffer.ready:
            raise RuntimeError("call buffer.compute_returns(last_values, gamma, lam) before PPO.update")
        data = buffer.flat()
        model.update_normalizer(data["obs"])  # identical on every rank (moments reduced)
        ev = explained_variance(data["values"], data["returns"])
        ev = all_reduce_mean_(torch.tensor(ev, device=data["values"].device)).item()
        adv = data["advantages"]
        if cfg.normalize_advantage:
            ad = adv.double()
            m = all_reduce_sum_(torch.stack([ad.new_tensor(ad.numel()), ad.sum(), ad.pow(2).sum()]))
            mean = m[1] / m[0]
            std = (m[2] / m[0] - mean**2).clamp_min(0.0).sqrt()
            adv = (adv - mean.float()) / (std.float() + 1e-8)

        n = adv.numel()
        mb = min(cfg.minibatch_size, n)
        sums = torch.zeros(7, device=adv.device)  # policy, value, bound, entropy, kl, clipfrac, grad_norm
        count = 0
        model.train()
        evaluate = self._evaluator(data["obs"], mb)
        for _ in range(cfg.epochs):
            perm = torch.randperm(n, generator=self.generator).to(adv.device)
            for start in range(0, n - mb + 1, mb):  # drop the ragged tail: equal step counts on all ranks
                idx = perm[start : start + mb]
                log_prob, entropy, value, mu = evaluate(idx, data["actions"][idx])
                log_ratio = log_prob - data["log_probs"][idx]
                ratio = log_ratio.exp()
                a = adv[idx]
                policy_loss = torch.max(-a * ratio, -a * ratio.clamp(1 - cfg.clip, 1 + cfg.clip)).mean()
                value_loss = (value - data["returns"][idx]).pow(2).mean()
                b_loss = bound_loss(mu, cfg.bound)
                ent = entropy.mean()
                loss = policy_loss + cfg.critic_coef * value_loss + cfg.bound_coef * b_loss - cfg.entropy_coef * ent

                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                average_gradients(self._params())
                if cfg.max_grad_norm is not None:
                    gn = torch.nn.utils.clip_grad_norm_(self._params(), cfg.max_grad_norm)
                else:
                    gn = torch.zeros((), device=adv.device)
                self.optimizer.step()

                with torch.no_grad():
                    kl = ((ratio - 1) - log_ratio).mean()  # k3 estimator of KL(old || new)
                    clipfrac = ((ratio - 1).abs() > cfg.clip).float().mean()
                    sums += torch.stack([policy_loss, value_loss, b_loss, ent, kl, clipfrac, gn.to(sums)]).detach()
                    if cfg.desired_kl is not None:
                        self._adapt_lr(all_reduce_mean_(kl.clone()).item())
                count += 1
        all_reduce_mean_(sums)
        s = (sums / max(count, 1)).tolist()
        stats = dict(zip(["policy_loss", "value_loss", "bound_loss", "entropy", "approx_kl", "clip_frac"], s))
        if cfg.max_grad_norm is not None:
            stats["grad_norm"] = s[6]
        stats["explained_variance"] = ev
        stats["num_minibatches"] = count
        stats["actor_lr"] = self.optimizer.param_groups[0]["lr"]
        return stats

    def _adapt_lr(self, kl: float) -> None:
        """Scale both learning rates by the same factor (keeping their ratio) toward `desired_kl`."""
        cfg = self.cfg
        if kl > 2.0 * cfg.desired_kl:
            factor = 1.0 / 1.5
        elif kl < 0.5 * cfg.desired_kl:
            factor = 1.5
        else:
            return
        actor = self.optimizer.param_groups[0]
        low, high = cfg.lr_range
        new_actor = min(max(actor["lr"] * factor, low), high)
        factor = new_actor / actor["lr"]
        for group in self.optimizer.param_groups:
            group["lr"] *= factor

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        # a checkpoint records its optimiser's implementation flags; keep this run's (older checkpoints: unfused)
        for group in self.optimizer.param_groups:
            group["fused"] = True if self._fused else None
            if self._fused:
                group["foreach"] = None
                for p in group["params"]:
                    st = self.optimizer.state.get(p, {})
                    if torch.is_tensor(st.get("step")):  # the fused kernel wants float32 steps beside the parameter
                        st["step"] = st["step"].to(p.device, torch.float32)


def _fused_adam_ok(params) -> bool:
    """Whether torch's fused Adam takes these parameters (float32, on the CPU or a CUDA device)."""
    return bool(params) and all(p.dtype == torch.float32 and p.device.type in ("cpu", "cuda") for p in params)
