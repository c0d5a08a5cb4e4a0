"""Stage II: the masked goal-conditioned variational policy (InterPrior §3 "Stage II"; DESIGN.md §4).

Three parts, all fed the student's self observation (`interprior.mdp.self_observation`) and a `Goal`
(`interprior.mdp.goals`):

* **prior** (deployable): a Transformer over one current-state token and the goal tokens (previews + snapshot).
  A goal token is an MLP of [normalised masked residuals, mask bits, time to target] plus a learned slot
  embedding; tokens with no given component are padded out of attention (their keys get exactly zero weight), so
  their content cannot change the output. The state token's output gives the prior Gaussian (μ_p, log σ²_p).
* **encoder** (training only): an MLP that also sees the *full* future reference (every defined residual of every
  token); its output is a residual on the prior (MaskedMimic's posterior, protomotions facts §4.2):
  μ_q = μ_p + μ_e, log σ²_q = log σ²_e.
* **decoder**: an MLP from [self observation, z] to the action and to a reconstruction of the goal residuals
  (trained on the hidden entries: the latent learns to *complete* intent).

Latents live on the unit hypersphere: z = normalise(μ + σ ε) (ASE, InterPrior §3), with ε drawn once per episode
by the caller (`GoalPolicy`, the trainer) so behaviour stays consistent along a rollout. Observations and goal
residuals pass through running normalisers held inside the module (checkpoints carry them); hidden goal entries are
re-zeroed after normalisation.

**Subtask token** (Stage III, getting up): a learned embedding per subtask id (`SUBTASKS`; 0 = none, 1 = get up)
that the caller may append to the prior's tokens (`subtask` [N] long). Rows with id 0 run exactly the graph without
it (bit for bit: they never see an extra key), so a model whose caller never sets it acts as before. Checkpoints
written before the token existed load with the token at its fixed initial value (`subtask_init`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from interprior.config import require
from interprior.mdp.goals import Goal, GoalLayout
from interprior.models.actor_critic import mlp
from interprior.models.normalizer import RunningNorm
from interprior.models.prior_onnx import INPUT_NAMES, onnx_session

SUBTASKS = ("none", "get_up")  # subtask token ids: 0 = no token, 1 = get up
GET_UP = SUBTASKS.index("get_up")


@dataclass
class PriorModelConfig:
    """Paper sizes by default (encoder/decoder MLPs 1024-1024-512, 4-layer Transformer prior, d_z = 64)."""

    latent_dim: int = 64
    width: int = 512  # token width of the Transformer prior
    heads: int = 4
    layers: int = 4
    ff_width: int = 1024
    token_hidden: tuple[int, ...] = (256,)  # MLPs that embed the state and goal tokens
    encoder_hidden: tuple[int, ...] = (1024, 1024, 512)
    decoder_hidden: tuple[int, ...] = (1024, 1024, 512)
    logvar_range: tuple[float, float] = (-10.0, 2.0)  # keeps σ in a sane range early in training
    # log σ² the prior and the encoder start from (None: PyTorch's initialisation, σ ≈ 1). Small, e.g. −6, so a fresh
    # latent carries its mean: at σ = 1 the noise of d_z = 64 dimensions has 8× the norm of the unit mean, the decoder
    # learns to ignore z and the goal never reaches the action (measured on the steering prior started that way:
    # σ ≈ 1.65 after 0.96 M samples, and decoding a random z fitted the expert as well as the posterior's)
    initial_logvar: float | None = None
    # the decoder reads z × latent_scale. A unit latent of d_z = 64 has components of ~1/8 beside normalised
    # observations of ~1: √d_z gives them the same scale, so the decoder learns to read z (1.0: the paper's input)
    latent_scale: float = 1.0
    # the decoder also reads the given goal (the prior's masked goal tokens): a conditional VAE, whose latent carries
    # what the goal leaves open. False: the paper's decoder of [self observation, z] (MaskedMimic's), where every
    # goal reaches the action through z only
    decoder_reads_goal: bool = False
    obs_clamp: float = 5.0  # normalised inputs are clamped: a bounded observation space (InterPrior Table 1)

    def __post_init__(self):
        require(self, positive=("latent_dim", "width", "heads", "layers", "ff_width", "token_hidden",
                                "encoder_hidden", "decoder_hidden", "obs_clamp", "latent_scale"))
        lo, hi = self.logvar_range
        if self.initial_logvar is not None and not lo <= self.initial_logvar <= hi:
            raise ValueError(f"model.initial_logvar {self.initial_logvar} lies outside model.logvar_range {lo, hi}")


def cpu_model_preset(cfg: PriorModelConfig) -> PriorModelConfig:
    """Smaller widths for 2-core CPUs; same structure (4 layers, d_z 64)."""
    cfg.width, cfg.ff_width, cfg.token_hidden = 128, 256, (128,)
    cfg.encoder_hidden = cfg.decoder_hidden = (256, 256, 128)
    return cfg


def _trunk(in_dim: int, hidden: Sequence[int]) -> nn.Sequential:
    """Linear + ReLU layers (the shared body in front of several heads)."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, int(h)), nn.ReLU()]
        in_dim = int(h)
    return nn.Sequential(*layers)


class AttentionBlock(nn.Module):
    """Pre-norm Transformer encoder layer with explicit key padding. Written out (rather than
    `nn.TransformerEncoderLayer`) so padded keys get exactly zero weight in every code path and the graph exports
    to ONNX as plain matrix operations."""

    def __init__(self, width: int, heads: int, ff_width: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.norm_attn = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm_ff = nn.LayerNorm(width)
        self.ff = nn.Sequential(nn.Linear(width, ff_width), nn.ReLU(), nn.Linear(ff_width, width))

    def forward(self, x: Tensor, padding: Tensor, first_only: bool = False) -> Tensor:
        """x [N, T, W]; padding [N, T] bool (True = ignore as a key). At least one key per row must be kept.
        `first_only`: return only token 0's output [N, 1, W] (the last layer: the prior reads token 0 alone, and
        single-row matrix products are several times cheaper at batch 1)."""
        n, t, w = x.shape
        d = w // self.heads
        q, k, v = self.qkv(self.norm_attn(x)).reshape(n, t, 3, self.heads, d).permute(2, 0, 3, 1, 4)
        if first_only:
            q, x, t = q[:, :, :1], x[:, :1], 1
        scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(d))  # [N, H, T, T]
        scores = scores.masked_fill(padding[:, None, None, :], float("-inf"))
        attended = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(n, t, w)
        x = x + self.proj(attended)
        return x + self.ff(self.norm_ff(x))


def sphere_latent(mu: Tensor, logvar: Tensor, eps: Tensor) -> Tensor:
    """z = (μ + σ ε) / |μ + σ ε|: a latent on the unit hypersphere."""
    return F.normalize(mu + torch.exp(0.5 * logvar) * eps, dim=-1, eps=1e-8)


def subtask_init(num: int, width: int) -> Tensor:
    """The subtask embeddings' initial value [num, width]: fixed (its own seed, not the global stream), so a fresh
    model and an older checkpoint without the token start the token alike. Row 0 (no subtask) is never used."""
    table = 0.02 * torch.randn(num, width, generator=torch.Generator().manual_seed(0))
    table[0] = 0.0
    return table


def gaussian_kl(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor, logvar_p: Tensor) -> Tensor:
    """KL(N(μ_q, σ_q²) ‖ N(μ_p, σ_p²)) of diagonal Gaussians, summed over the last dimension."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).square()) / logvar_p.exp() - 1.0).sum(-1)


class MaskedGoalPrior(nn.Module):
    def __init__(self, state_dim: int, act_dim: int, layout: GoalLayout, cfg: PriorModelConfig | None = None):
        super().__init__()
        cfg = cfg or PriorModelConfig()
        self.cfg, self.layout = cfg, layout
        self.state_dim, self.act_dim = int(state_dim), int(act_dim)
        k, f, g, dz = layout.num_tokens, layout.feature_size, layout.bit_size, cfg.latent_dim
        self.state_norm = RunningNorm(state_dim, clamp=cfg.obs_clamp)
        self.goal_norm = RunningNorm(f, clamp=cfg.obs_clamp)
        self.register_buffer("entry_group", layout.entry_group.clone(), persistent=False)
        # prior
        self.state_token = mlp(state_dim, cfg.token_hidden, cfg.width)
        self.goal_token = mlp(f + g + 1, cfg.token_hidden, cfg.width)
        self.slot = nn.Parameter(0.02 * torch.randn(k + 1, cfg.width))  # state, previews..., snapshot
        self.blocks = nn.ModuleList(AttentionBlock(cfg.width, cfg.heads, cfg.ff_width) for _ in range(cfg.layers))
        self.prior_out = nn.Sequential(nn.LayerNorm(cfg.width), nn.Linear(cfg.width, 2 * dz))
        # encoder (training only): self observation, the full reference goal, and what the prior was given
        self.encoder = mlp(state_dim + k * (2 * f + g + 1), cfg.encoder_hidden, 2 * dz)
        # decoder
        self.decoder = _trunk(state_dim + dz + (k * (f + g + 1) if cfg.decoder_reads_goal else 0), cfg.decoder_hidden)
        self.action_head = nn.Linear(cfg.decoder_hidden[-1], act_dim)
        self.recon_head = nn.Linear(cfg.decoder_hidden[-1], k * f)
        nn.init.uniform_(self.action_head.weight, -1e-3, 1e-3)
        nn.init.zeros_(self.action_head.bias)
        with torch.no_grad():
            for out in (self.prior_out[-1], self.encoder[-1]) if cfg.initial_logvar is not None else ():
                out.bias[dz:] = cfg.initial_logvar
        # appended when the caller sets it; a buffer, not a parameter, so Stage II's optimiser (and its resume) is
        # unchanged: Stage III trains it through a parameter of its own (`PriorActorCritic.subtask_token`)
        self.register_buffer("subtask_token", subtask_init(len(SUBTASKS), cfg.width))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """A state dict from before the subtask token (no `subtask_token`) loads strictly: the token takes
        `subtask_init`."""
        key = prefix + "subtask_token"
        if key not in state_dict:
            state_dict[key] = subtask_init(*self.subtask_token.shape).to(self.subtask_token)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # --- inputs ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def update_normalizers(self, state_obs: Tensor, goal_full: Tensor, goal_defined_entries: Tensor) -> None:
        """Fold a batch into the running statistics: observations, and the goal residuals of the full reference
        (only the defined entries; undefined ones take the mean so they do not move the statistics)."""
        self.state_norm.update(state_obs)
        mean = self.goal_norm.mean.to(goal_full.dtype)
        self.goal_norm.update(torch.where(goal_defined_entries, goal_full, mean))

    def _entry_mask(self, bits: Tensor) -> Tensor:
        return bits.index_select(-1, self.entry_group).to(torch.float32)

    def _goal_tokens_in(self, features: Tensor, bits: Tensor, time: Tensor) -> Tensor:
        """[N, K, F + G + 1]: normalised residuals re-masked to exact zeros, the bits, the time to target."""
        bits_f = bits.to(torch.float32)
        masked = self.goal_norm(features.float()) * self._entry_mask(bits)
        return torch.cat([masked, bits_f, time.float()[..., None]], dim=-1)

    def _split(self, out: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = out.chunk(2, dim=-1)
        lo, hi = self.cfg.logvar_range
        return mu, logvar.clamp(lo, hi)

    # --- the three parts -------------------------------------------------------------------------------------
    def prior(self, state_n: Tensor, features: Tensor, bits: Tensor, time: Tensor, subtask: Tensor | None = None,
              subtask_table: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(μ_p, log σ²_p) [N, d_z] from the normalised self observation and the goal (masked again here, so
        hidden entries are zero whatever the caller passed). `subtask` [N] long (optional): rows with a nonzero id
        get that subtask's token appended (from `subtask_table`, default the model's own `subtask_token`); the
        others (and all rows when None) run the plain graph."""
        tokens = torch.cat([self.state_token(state_n)[:, None], self.goal_token(self._goal_tokens_in(features, bits,
                                                                                                      time))], dim=1)
        tokens = tokens + self.slot
        padding = torch.cat([torch.zeros_like(bits[:, :1, 0]), bits.sum(dim=-1) == 0], dim=1)
        mu, logvar = self._attend(tokens, padding)
        if subtask is None:
            return mu, logvar
        subtask = subtask.to(device=mu.device, dtype=torch.long).reshape(-1)
        on = (subtask != 0).nonzero().flatten()
        if len(on) == 0:
            return mu, logvar
        if int(subtask.min()) < 0 or int(subtask.max()) >= len(SUBTASKS):
            raise ValueError(f"subtask ids must lie in [0, {len(SUBTASKS) - 1}] ({', '.join(SUBTASKS)})")
        table = self.subtask_token if subtask_table is None else subtask_table
        extra = table[subtask[on]][:, None]
        mu_on, logvar_on = self._attend(torch.cat([tokens[on], extra], dim=1),
                                        torch.cat([padding[on], torch.zeros_like(padding[on, :1])], dim=1))
        return mu.index_copy(0, on, mu_on), logvar.index_copy(0, on, logvar_on)

    def prior_every_row(self, state_n: Tensor, features: Tensor, bits: Tensor, time: Tensor,
                        subtask: Tensor) -> tuple[Tensor, Tensor]:
        """`prior` with `subtask` [N] given, without data-dependent indexing (the ONNX graph): every row gets its
        subtask's token appended, a padded key (exactly zero attention weight) where the id is 0."""
        tokens = torch.cat([self.state_token(state_n)[:, None], self.goal_token(self._goal_tokens_in(features, bits,
                                                                                                      time))], dim=1)
        subtask = subtask.to(device=tokens.device, dtype=torch.long).reshape(-1)
        tokens = torch.cat([tokens + self.slot, self.subtask_token[subtask][:, None]], dim=1)
        padding = torch.cat([torch.zeros_like(bits[:, :1, 0]), bits.sum(dim=-1) == 0, (subtask == 0)[:, None]], dim=1)
        return self._attend(tokens, padding)

    def _attend(self, tokens: Tensor, padding: Tensor) -> tuple[Tensor, Tensor]:
        """The Transformer over `tokens` [N, T, W] (state token first) -> (μ_p, log σ²_p) from the state token."""
        for i, block in enumerate(self.blocks):
            tokens = block(tokens, padding, first_only=i == len(self.blocks) - 1)
        return self._split(self.prior_out(tokens[:, 0]))

    def posterior(self, state_n: Tensor, goal: Goal, mu_p: Tensor, logvar_p: Tensor) -> tuple[Tensor, Tensor]:
        """(μ_q, log σ²_q): the encoder's residual on the prior; it sees the full reference goal."""
        n = state_n.shape[0]
        full = self.goal_norm(goal.full.float()) * self._entry_mask(goal.defined)
        given = self._goal_tokens_in(goal.features(), goal.bits, goal.time)
        mu_e, logvar_e = self._split(self.encoder(torch.cat([state_n, full.reshape(n, -1), given.reshape(n, -1)], 1)))
        return mu_p + mu_e, logvar_e

    def decoder_goal(self, features: Tensor, bits: Tensor, time: Tensor) -> Tensor | None:
        """What the decoder reads of the goal: the prior's masked tokens, flattened [N, K·(F + G + 1)]; None when
        the decoder reads no goal (`decoder_reads_goal` off)."""
        if not self.cfg.decoder_reads_goal:
            return None
        return self._goal_tokens_in(features, bits, time).flatten(1)

    def _decoder_in(self, state_n: Tensor, z: Tensor, goal_in: Tensor | None) -> Tensor:
        parts = [state_n, self.cfg.latent_scale * z]
        if self.cfg.decoder_reads_goal:
            if goal_in is None:
                raise ValueError("this decoder reads the goal (model.decoder_reads_goal): pass decoder_goal(...)")
            parts.append(goal_in)
        return torch.cat(parts, dim=-1)

    def decode(self, state_n: Tensor, z: Tensor, goal_in: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(action [N, A], reconstructed normalised goal residuals [N, K, F]). `goal_in`: `decoder_goal(...)`."""
        h = self.decoder(self._decoder_in(state_n, z, goal_in))
        return self.action_head(h), self.recon_head(h).reshape(z.shape[0], self.layout.num_tokens, -1)

    def decode_action(self, state_n: Tensor, z: Tensor, goal_in: Tensor | None = None) -> Tensor:
        """The action alone (inference: the reconstruction head is training-only)."""
        return self.action_head(self.decoder(self._decoder_in(state_n, z, goal_in)))

    # --- training and rollouts -------------------------------------------------------------------------------
    def forward_train(self, state_obs: Tensor, goal: Goal, eps: Tensor) -> dict[str, Tensor]:
        """Everything the distillation losses need; the decoder runs on the posterior latent."""
        s = self.state_norm(state_obs.float())
        mu_p, logvar_p = self.prior(s, goal.features(), goal.bits, goal.time)
        mu_q, logvar_q = self.posterior(s, goal, mu_p, logvar_p)
        goal_in = self.decoder_goal(goal.features(), goal.bits, goal.time)
        action, recon = self.decode(s, sphere_latent(mu_q, logvar_q, eps), goal_in)
        target = self.goal_norm(goal.full.float())
        return {"mu_p": mu_p, "logvar_p": logvar_p, "mu_q": mu_q, "logvar_q": logvar_q, "action": action,
                "recon": recon, "recon_target": target, "goal_in": goal_in}

    @torch.no_grad()
    def rollout_action(self, state_obs: Tensor, goal: Goal, eps: Tensor, use_prior: Tensor) -> Tensor:
        """Actions during distillation: the posterior latent, or the prior's where `use_prior` [N] is set."""
        s = self.state_norm(state_obs.float())
        mu_p, logvar_p = self.prior(s, goal.features(), goal.bits, goal.time)
        mu_q, logvar_q = self.posterior(s, goal, mu_p, logvar_p)
        pick = use_prior.to(mu_p.device)[:, None]
        z = sphere_latent(torch.where(pick, mu_p, mu_q), torch.where(pick, logvar_p, logvar_q), eps)
        return self.decode_action(s, z, self.decoder_goal(goal.features(), goal.bits, goal.time))

    def inference_graph(self, every_row: bool = False) -> "PriorDecoder":
        return PriorDecoder(self, every_row)


class PriorDecoder(nn.Module):
    """The deployable policy as one graph: prior + decoder, no encoder. Inputs are plain tensors (bits as 0/1
    floats) so it exports to ONNX: (self obs [N, S], goal features [N, K, F], goal bits [N, K, G], time [N, K],
    ε [N, d_z], subtask [N] long) -> action [N, A]. ε = 0 gives the prior's mean direction; subtask 0 the plain
    prior. `every_row` (the exported graph): the subtask token path without data-dependent indexing."""

    def __init__(self, model: MaskedGoalPrior, every_row: bool = False):
        super().__init__()
        self.model = model
        self.every_row = every_row

    def forward(self, state_obs: Tensor, goal_features: Tensor, goal_bits: Tensor, goal_time: Tensor,
                eps: Tensor, subtask: Tensor | None = None) -> Tensor:
        m = self.model
        s = m.state_norm(state_obs.float())
        if self.every_row and subtask is not None:
            mu_p, logvar_p = m.prior_every_row(s, goal_features, goal_bits > 0.5, goal_time, subtask)
        else:
            mu_p, logvar_p = m.prior(s, goal_features, goal_bits > 0.5, goal_time, subtask)
        goal_in = m.decoder_goal(goal_features, goal_bits > 0.5, goal_time)
        return m.decode_action(s, sphere_latent(mu_p, logvar_p, eps), goal_in)


class GoalPolicy:
    """Inference: (self observation, goal) -> actions through the prior and decoder only, batched, CPU or GPU.

    ε is drawn once per episode per env (`reset`) and held, so a rollout keeps one consistent behaviour;
    `deterministic` uses ε = 0 (the prior's mean direction). `runtime="onnx"` runs the same graph, exported, in
    onnxruntime on the CPU (`threads` intra-op threads): at batch 1 it is several times faster than PyTorch's small
    matrix products (README, `interprior bench prior`)."""

    RUNTIMES = ("torch", "onnx")

    def __init__(self, model: MaskedGoalPrior, num_envs: int, device: str | torch.device = "cpu",
                 deterministic: bool = False, seed: int = 0, runtime: str = "torch", threads: int = 1):
        if runtime not in self.RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(self.RUNTIMES)}, got {runtime!r}")
        if runtime == "onnx" and torch.device(device).type != "cpu":
            raise ValueError(f"runtime 'onnx' runs on the CPU; got device {device}")
        self.model = model.to(device).eval()
        self.graph = model.inference_graph()
        self.device = torch.device(device)
        self.deterministic = deterministic
        self.generator = torch.Generator().manual_seed(seed)
        self.eps = torch.zeros(num_envs, model.cfg.latent_dim, device=self.device)
        self.session = None
        if runtime == "onnx":
            self.session = onnx_session(self.model, threads)
        self.reset()

    def reset(self, env_ids: Tensor | None = None) -> None:
        """New episodes: fresh ε for `env_ids` (all envs by default)."""
        ids = torch.arange(self.eps.shape[0]) if env_ids is None else env_ids.cpu()
        if self.deterministic or len(ids) == 0:
            return
        self.eps[ids.to(self.device)] = torch.randn(len(ids), self.eps.shape[1], generator=self.generator).to(
            self.device)

    @torch.no_grad()
    def act(self, state_obs: Tensor, goal: Goal, subtask: Tensor | None = None) -> Tensor:
        """Actions [N, A]. `subtask` [N] long (`SUBTASKS` ids, optional): the subtask token per env."""
        dev = self.device
        inputs = (state_obs.to(dev), goal.features().to(dev), goal.bits.to(dev).float(), goal.time.to(dev), self.eps)
        if self.session is not None:
            ids = torch.zeros(len(state_obs), dtype=torch.long) if subtask is None else subtask.long().cpu()
            feed = {name: x.float().numpy() for name, x in zip(INPUT_NAMES[:-1], inputs)}
            feed[INPUT_NAMES[-1]] = ids.numpy()
            return torch.from_numpy(self.session.run(["action"], feed)[0])
        if subtask is not None and bool((subtask != 0).any()):
            return self.graph(*inputs, subtask.to(dev))
        return self.graph(*inputs)
