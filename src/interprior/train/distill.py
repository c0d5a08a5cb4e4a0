"""Stage II: distil the frozen imitation expert into the masked goal prior by online DAgger. Resumable, logged.

`interprior train prior` builds a `DistillConfig` from the expert's own config (its data selection and
environment), writes it beside the checkpoints (`RUN/config.json`) and rebuilds everything from it on resume.

Each iteration the **student drives** `horizon` steps of the tracking environment: per env, its latent comes from
the posterior (the training-only encoder, MaskedMimic's rollout) or, for a `prior_rollout_prob` share of the
episodes, from the deployable prior, so the data also covers the states the prior itself visits. The frozen expert
labels **every visited state** with its mean action, computed from the full teacher observation
`env.observe()`. As in InterMimic's distillation schedule, a share of the control steps can execute the expert's
label instead of the student's action (`expert_step_share`, falling linearly to `expert_step_final` over
`expert_step_samples`): an
early student falls within a second, so without it the later phases of long clips (the carry, the put-down) are
never visited; the mixed steps keep episodes on the demonstrations while the student still sees its own drift. The loss is the weighted ELBO of InterPrior §3 plus its two auxiliary terms:

    w_a·‖a_student − a_expert‖² + w_r·(masked-goal reconstruction) + w_kl(samples)·KL(q ‖ p)
    + w_n·(‖μ_p‖ − 1)² + w_t·‖μ_p(t) − μ_p(t−1)‖² [+ w_pa·‖a_prior − a_expert‖², optional, off by default]

with the KL weight ramped linearly over `kl_ramp_samples`. Minibatches are whole env trajectories (so
consecutive priors of one episode sit in the same minibatch for the temporal term).

**Actions.** With `student_actions = "absolute"` (default) the student outputs absolute PD targets (the env's
offset + scale·a mapping) and the expert's labels are converted to that space: an expert trained with residual
actions (PD target = next reference joint angles + scale·a, the CPU preset) reads the reference, which a sparse
goal policy cannot. "delta" makes the student's PD target the *current* joint angles + scale·a (labels converted
the same way): it reads no reference either, and its labels are small corrections rather than whole poses, which
a small network imitates far more precisely. "expert" keeps the expert's own action space (only sensible for an
absolute expert).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from interprior.algos.distill import DistillBuffer, LossWeights, distillation_losses
from interprior.assets.bodies import embodiment
from interprior.config import dict_to_config, require
from interprior.data.selection import DataSelection
from interprior.envs.goal import GoalEnv
from interprior.envs.tracking import TrackingConfig, TrackingEnv
from interprior.errors import DataFileError, InterpriorError
from interprior.mdp.goal_masks import MaskSampling
from interprior.mdp.goals import GoalLayout, entry_mask
from interprior.mdp.self_observation import self_observation_size
from interprior.models.prior import MaskedGoalPrior, PriorModelConfig, cpu_model_preset
from interprior.train.checkpoint import copy_weights, load_checkpoint
from interprior.train.progress import Progress, TensorBoardLogger
from interprior.train.rundir import RESUMABLE_KEYS, RunDir, check_resume_inputs, load_run_checkpoint
from interprior.train.stopping import checkpoint_on_stop
from interprior.train.teacher import Teacher

FORMAT = "interprior-prior-1"



@dataclass
class DistillOptim:
    lr: float = 2e-5
    # the rate falls linearly to lr × lr_final_scale between these sample counts (equal counts: constant rate);
    # a lower rate at the end steadies the student, whose weights otherwise keep jumping with each minibatch
    lr_decay_samples: tuple[int, int] = (0, 0)
    lr_final_scale: float = 1.0
    horizon: int = 32  # control steps per env per iteration
    epochs: int = 6
    minibatches: int = 8  # per epoch; each is a group of whole env trajectories
    max_grad_norm: float = 50.0
    seed: int = 0
    # the losses' forward pass in bfloat16 autocast (weights, gradients and the optimiser stay float32): about 1.45x
    # faster per minibatch on CPUs with bf16 instructions, slower where they are emulated
    bf16: bool = False
    # > 0: keep an exponential moving average of the weights (this decay per iteration), saved beside them; readers
    # of the run (eval, export, steering, finetune) take the average, which swings less from checkpoint to checkpoint
    ema_decay: float = 0.0

    def __post_init__(self):
        require(self, positive=("lr", "lr_final_scale", "horizon", "epochs", "minibatches", "max_grad_norm"),
                non_negative=("lr_decay_samples", "seed"), fraction=("ema_decay",))

    def lr_at(self, samples: int) -> float:
        a, b = self.lr_decay_samples
        if b <= a:
            return self.lr
        frac = min(max((samples - a) / (b - a), 0.0), 1.0)
        return self.lr * (1.0 + frac * (self.lr_final_scale - 1.0))


@dataclass
class DistillConfig:
    expert: str = ""  # run directory, checkpoint or exported expert file
    # "SKILL=EXPERT" entries: that expert labels the clips of that skill (the data set's synth.json says which),
    # `expert` the others (see `interprior.train.teacher`)
    skill_experts: tuple[str, ...] = ()
    # a new run starts from this prior's weights (run directory, checkpoint or exported prior; same sizes): a run
    # continued where its folder is gone, or a prior carried to other clips; ignored when the run resumes
    init: str | None = None
    data: DataSelection = field(default_factory=DataSelection)
    env: TrackingConfig = field(default_factory=TrackingConfig)  # the expert's, with this run's env count
    student_actions: str = "absolute"  # absolute | delta | expert (see the module docstring)
    prior_rollout_prob: float = 0.2  # share of episodes driven by the prior's latent instead of the posterior's
    # share of episodes with ε = 0: without them the decoder never sees the bare mean direction (with d_z = 64 the
    # noise outweighs μ), and the deterministic prior-mean policy is an input it was never trained on
    mean_latent_prob: float = 0.0
    # share of control steps that execute the expert's label (per env and step), falling linearly to
    # `expert_step_final` between these sample counts (equal counts: the share holds until the first, then the
    # final share); a final share > 0 keeps the student's states near the demonstrations for good
    expert_step_share: float = 0.0
    expert_step_samples: tuple[int, int] = (0, 0)
    expert_step_final: float = 0.0
    goals: GoalLayout = field(default_factory=GoalLayout)
    masks: MaskSampling = field(default_factory=MaskSampling)
    model: PriorModelConfig = field(default_factory=PriorModelConfig)
    optim: DistillOptim = field(default_factory=DistillOptim)
    loss: LossWeights = field(default_factory=LossWeights)
    total_samples: int = 200_000_000
    checkpoint_every_s: float = 300.0
    torch_threads: int | None = None

    def __post_init__(self):
        require(self, positive=("total_samples", "checkpoint_every_s", "torch_threads"),
                non_negative=("expert_step_samples",),
                fraction=("prior_rollout_prob", "mean_latent_prob", "expert_step_share", "expert_step_final"))

    def expert_share_at(self, samples: int) -> float:
        a, b = self.expert_step_samples
        if samples < a:
            return self.expert_step_share
        frac = 1.0 if b <= a else min((samples - a) / (b - a), 1.0)
        return self.expert_step_share + frac * (self.expert_step_final - self.expert_step_share)


def cpu_preset(cfg: DistillConfig) -> DistillConfig:
    """2-core CPU: 32 envs, narrow networks (same structure), larger learning rate, a short KL ramp."""

    cfg.env.num_envs = 32
    # measured on the 6.51 M demo expert (sampled latents, every goal bit on): at 0.5-0.6 M samples 84 frames
    # against 71 with absolute targets; 183 of the expert's 204 after 2 h on one core (absolute: 82 of 106)
    cfg.student_actions = "delta"
    # measured with these three, 2 h on two cores (2.77 M samples): 204 of the expert's 204 frames, 16/16 clips,
    # both with sampled latents and at ε = 0 (without the ε = 0 share: 32 frames at ε = 0)
    cfg.loss.prior_action = 1.0
    cfg.prior_rollout_prob = 0.5
    cfg.mean_latent_prob = 0.2
    cpu_model_preset(cfg.model)
    cfg.optim.lr = 3e-4
    # measured: at a constant 3e-4 the action loss sat at ~1e-3 from 0.2 M to 1.2 M samples; decaying to 3e-5
    # over the next 0.65 M brought it to 7e-4 and the prior's own to 1.4e-3 (from 1.9e-3)
    cfg.optim.lr_decay_samples, cfg.optim.lr_final_scale = (500_000, 1_500_000), 0.1
    cfg.optim.epochs = 4
    cfg.optim.minibatches = 4
    cfg.loss.kl_ramp_samples = (50_000, 500_000)
    return cfg


def student_env_config(cfg: DistillConfig) -> TrackingConfig:
    for key in ("prior_rollout_prob", "mean_latent_prob"):
        if not 0.0 <= getattr(cfg, key) <= 1.0:
            raise InterpriorError(f"{key} is a share of episodes, between 0 and 1; got {getattr(cfg, key)}")
    if cfg.student_actions not in ("absolute", "delta", "expert"):
        raise InterpriorError(f"student_actions must be absolute, delta or expert, got {cfg.student_actions!r}")
    env = cfg.env if cfg.student_actions == "expert" else replace(cfg.env, action_mode=cfg.student_actions)
    return replace(env, compute_reward=False)  # a student learns from labels, never from the tracking reward


# --- loading ------------------------------------------------------------------------------------------------------
EXPORTED_FORMAT = "interprior-prior-export-1"  # an exported prior: weights + config in one file, no optimiser


def load_prior(checkpoint: str | Path):
    """(config, model in eval mode, checkpoint dict) from a run directory (its latest checkpoint), a checkpoint
    file inside one, or an exported prior (`train export`)."""
    path = Path(checkpoint)
    if path.is_file() and path.parent.name != "checkpoints":
        state = load_checkpoint(path)
        if state.get("format") != EXPORTED_FORMAT:
            raise DataFileError(path, f"not an exported prior (format {state.get('format')!r}, expected "
                                      f"{EXPORTED_FORMAT!r})")
        cfg = dict_to_config(DistillConfig, state["config"])
    else:
        cfg, state, ckpt = load_run_checkpoint(checkpoint, DistillConfig, kind="prior")
        if state.get("format") != FORMAT:
            raise DataFileError(ckpt, f"not a Stage II prior checkpoint (format {state.get('format')!r})")
    model = MaskedGoalPrior(state["state_dim"], state["act_dim"], cfg.goals, cfg.model)
    model.load_state_dict(state.get("model_ema") or state["model"])  # a run's averaged weights where it kept them
    model.eval()
    return cfg, model, state


# --- the trainer --------------------------------------------------------------------------------------------------
class PriorDistiller:
    def __init__(self, cfg: DistillConfig, out: str | Path, restart: bool = False, accept_changes: bool = False):
        """Build the run in `out` (resumed from its newest intact checkpoint when it has one). Nothing is written
        until everything is built: a failed start leaves the folder as it was. `accept_changes`: resume even
        though the clips or the expert changed since the last checkpoint."""
        self.cfg = cfg
        student_env = student_env_config(cfg)  # checks the config before anything is written
        # the goal layout of the run's body (recorded resolved in config.json, so a resume compares like with like)
        cfg.goals = cfg.goals.for_groups(embodiment(cfg.env.variant).resolved)
        self.run = RunDir(out)
        with self.run.starting():
            self.run.check_config(cfg, restart=restart, ignore=RESUMABLE_KEYS)
            self._build(cfg, student_env)
            self.run.write_config(cfg, restart=restart, ignore=RESUMABLE_KEYS)
            state = self.run.load_latest()
            if state is not None:
                check_resume_inputs(self.run.root, state, self.clip_names, self.teacher.record, accept=accept_changes)
                self._resume(state)
            elif cfg.init:
                self._init_from(cfg.init)

    def _build(self, cfg: DistillConfig, student_env: TrackingConfig) -> None:
        self.learn_threads = cfg.torch_threads or torch.get_num_threads()
        if cfg.torch_threads:
            torch.set_num_threads(cfg.torch_threads)
        self.teacher = Teacher(cfg.expert, cfg.skill_experts)
        self.expert = self.teacher.expert
        clips = cfg.data.load()
        self.clip_names = [c.name for c in clips]
        self.env = TrackingEnv(clips, cfg.data.objects, student_env)
        self.teacher.bind(self.env, cfg.data.data)
        dev = self.env.device
        self.state_dim = self_observation_size(self.env.groups)
        self.model = MaskedGoalPrior(self.state_dim, self.env.act_dim, cfg.goals, cfg.model).to(dev)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.optim.lr)
        n = cfg.env.num_envs
        self.generator = torch.Generator().manual_seed(cfg.optim.seed)
        self.goal_env = GoalEnv(self.env, cfg.goals, cfg.masks, generator=self.generator)
        self.buffer = DistillBuffer(cfg.optim.horizon, n, self.state_dim, self.env.act_dim, cfg.goals,
                                    cfg.model.latent_dim, dev)
        self.eps = torch.zeros(n, cfg.model.latent_dim, device=dev)
        self.ema = ({k: v.detach().clone() for k, v in self.model.state_dict().items()}
                    if cfg.optim.ema_decay > 0 else None)
        self.use_prior = torch.zeros(n, dtype=torch.bool)
        self.first = torch.ones(n, dtype=torch.bool)
        self.samples = 0
        self.iteration = 0
        self.history: list[dict] = []  # learning curve: samples, losses, episode length

    def _resume(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        if self.ema is not None:  # a run that turns the average on starts it from its current weights
            self.ema = {k: v.clone() for k, v in (state.get("model_ema") or state["model"]).items()}
        self.optimizer.load_state_dict(state["optimizer"])
        self.samples, self.iteration = int(state["samples"]), int(state["iteration"])
        self.history = list(state.get("history", []))
        if "generator" in state:  # goals, latents and minibatches continue the saved random stream
            self.generator.set_state(state["generator"])
        print(f"resumed {self.run.root} at iteration {self.iteration}, {self.samples} samples")

    def _init_from(self, source: str) -> None:
        try:
            _, model, state = load_prior(source)
        except (InterpriorError, OSError) as e:
            raise InterpriorError(f"--init: {e}") from e
        copy_weights(self.model, model, source)
        print(f"initialised from {source} ({state.get('samples')} samples)")

    def checkpoint(self) -> Path:
        state = {
            "format": FORMAT, "kind": "prior", "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "samples": self.samples, "iteration": self.iteration, "history": self.history, "clips": self.clip_names,
            "state_dim": self.state_dim, "act_dim": self.env.act_dim, "generator": self.generator.get_state(),
            "teacher": self.teacher.record,
        }
        if self.ema is not None:
            state["model_ema"] = self.ema
        return self.run.save(self.iteration, state)

    @torch.no_grad()
    def update_ema(self) -> None:
        """Fold the current weights (and normaliser statistics) into their moving average."""
        live = self.model.state_dict()
        floats = [k for k, v in live.items() if v.is_floating_point()]
        torch._foreach_lerp_([self.ema[k] for k in floats], [live[k] for k in floats], 1.0 - self.cfg.optim.ema_decay)
        for k, v in live.items():
            if not v.is_floating_point():
                self.ema[k].copy_(v)

    # --- episodes ---------------------------------------------------------------------------------------------
    def new_latents(self, ids: torch.Tensor) -> None:
        """Fresh ε and rollout latent (prior or posterior) for envs that just started an episode (their goals are
        drawn by the goal env)."""
        self.eps[ids.to(self.eps.device)] = torch.randn(len(ids), self.eps.shape[1], generator=self.generator).to(
            self.eps)
        self.use_prior[ids] = torch.rand(len(ids), generator=self.generator) < self.cfg.prior_rollout_prob
        if self.cfg.mean_latent_prob > 0:
            at_mean = torch.rand(len(ids), generator=self.generator) < self.cfg.mean_latent_prob
            self.eps[ids[at_mean].to(self.eps.device)] = 0.0
        self.first[ids] = True

    def collect(self) -> dict:
        env, buf, model = self.env, self.buffer, self.model
        lengths, ended_by = [], {}
        expert_share = self.cfg.expert_share_at(self.samples)
        for t in range(self.cfg.optim.horizon):
            obs = self._goal_obs
            with torch.no_grad():
                label = self.teacher.labels(env, self._tracking_obs)
                action = model.rollout_action(obs.state_obs, obs.goal, self.eps, self.use_prior)
            buf.add(t, obs.state_obs, obs.goal, self.eps, label, self.first.to(buf.first.device))
            self.first[:] = False
            if expert_share > 0:
                by_expert = torch.rand(len(action), generator=self.generator) < expert_share
                action = torch.where(by_expert.to(action.device)[:, None], label.to(action), action)
            step = self.goal_env.step(action)
            if len(step.done_ids):
                self.new_latents(step.done_ids)
                lengths += step.episode_length.tolist()
                for why, hit in step.reasons.items():
                    ended_by[why] = ended_by.get(why, 0) + int(hit.sum())
            self._tracking_obs, self._goal_obs = step.tracking_obs, step.observation
        stats = {"rollout/expert_step_share": expert_share}
        if lengths:
            stats["episode/length"] = sum(lengths) / len(lengths)
            stats.update({f"ended_by/{why}": k / len(lengths) for why, k in ended_by.items()})
        return stats

    def update(self) -> dict:
        cfg, buf, model = self.cfg, self.buffer, self.model
        model.update_normalizers(buf.state_obs, buf.full, entry_mask(buf.defined, cfg.goals))
        kl_weight = cfg.loss.kl_weight(self.samples)
        lr = cfg.optim.lr_at(self.samples)
        for group in self.optimizer.param_groups:  # the config's rate, also over a resumed optimiser's saved one
            group["lr"] = lr
        n = cfg.env.num_envs
        per = max(1, n // max(1, cfg.optim.minibatches))
        sums, count = {}, 0
        for _ in range(cfg.optim.epochs):
            for ids in torch.randperm(n, generator=self.generator).split(per):
                with torch.autocast(buf.first.device.type, dtype=torch.bfloat16, enabled=cfg.optim.bf16):
                    losses = distillation_losses(model, buf.envs(ids.to(buf.first.device)), cfg.loss, kl_weight)
                self.optimizer.zero_grad(set_to_none=True)
                losses["total"].backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.max_grad_norm)
                self.optimizer.step()
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
                count += 1
        if self.ema is not None:
            self.update_ema()
        stats = {f"loss/{k}": v / count for k, v in sums.items()}
        stats["loss/kl_weight"] = kl_weight
        stats["loss/lr"] = lr
        return stats

    # --- the loop ---------------------------------------------------------------------------------------------
    def train(self, max_seconds: float | None = None) -> None:
        self.env.reset()
        self._goal_obs = self.goal_env.start(reset=False)
        self.new_latents(torch.arange(self.env.num_envs))
        self._tracking_obs = self.env.observe()
        self._start_samples = self.samples
        self._collect_s = self._learn_s = 0.0
        point = lambda: f"iteration {self.iteration}, {self.samples} samples"
        try:
            with TensorBoardLogger(self.run.root) as tb, checkpoint_on_stop(self.checkpoint, point):
                self._loop(tb, max_seconds)
            self.checkpoint()
        finally:
            self.run.unlock()
        total = self._collect_s + self._learn_s
        if total > 0:
            done = self.samples - self._start_samples
            print(f"distillation: {done} samples in {total:.0f} s = {done / total:.0f} samples/s "
                  f"(collection {self._collect_s:.0f} s, learning {self._learn_s:.0f} s)")

    def _loop(self, tb, max_seconds: float | None) -> None:
        cfg = self.cfg
        per_iter = cfg.env.num_envs * cfg.optim.horizon
        progress = Progress(cfg.total_samples, start_samples=self.samples, deadline_s=max_seconds)
        last_ckpt = start = time.time()
        while self.samples < cfg.total_samples:
            t0 = time.perf_counter()
            torch.set_num_threads(1)  # many small kernels while stepping: threads only add overhead
            stats = self.collect()
            torch.set_num_threads(self.learn_threads)
            t1 = time.perf_counter()
            stats.update(self.update())
            t2 = time.perf_counter()
            self._collect_s += t1 - t0
            self._learn_s += t2 - t1
            self.samples += per_iter
            self.iteration += 1
            stats["perf/samples_per_s"] = per_iter / (t2 - t0)
            stats["perf/collect_share"] = (t1 - t0) / (t2 - t0)
            point = {"samples": self.samples, "action": stats["loss/action"],
                     "action_prior": stats["loss/action_prior"], "kl": stats["loss/kl"]}
            if "episode/length" in stats:
                point["episode_length"] = stats["episode/length"]
            self.history.append(point)
            tb.scalars(self.samples, stats)
            metrics = {"action": stats["loss/action"], "prior": stats["loss/action_prior"], "kl": stats["loss/kl"],
                       "ep_len": stats.get("episode/length", float("nan"))}
            now = time.time()
            last = self.samples >= cfg.total_samples or (max_seconds is not None and now - start >= max_seconds)
            progress.update(self.samples, force=last, **metrics)
            if now - last_ckpt >= cfg.checkpoint_every_s:
                self.checkpoint()
                last_ckpt = now
            if last:
                break
