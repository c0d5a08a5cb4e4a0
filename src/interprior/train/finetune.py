"""Stage III: RL finetuning of the deployable prior (prior + decoder) on single-frame in-betweening, anchored by
concurrent distillation (InterPrior §3 "Stage III"). Resumable, logged, with the run lifecycle of Stage II.

`interprior train finetune --prior RUN2 --out RUN3` builds a `FinetuneConfig` around the prior's own resolved
config (`base`: its data, environment, goal layout, mask sampling and model; the expert it was distilled from)
and writes it as ``RUN3/finetune.json`` (checked on resume like every run's config). ``RUN3/config.json`` holds
`base`, so a finetune run *is* a prior run to every reader: `load_prior`, `load_run`, `eval goals`,
`eval protocol`, `train export` and `train export-prior` read its checkpoints (format and keys of
`PriorDistiller`'s, plus the critic, log σ and optimiser state for resume) unchanged.

Each iteration every env runs `ppo.horizon` steps. The **RL rows** play in-betweening episodes
(`interprior.train.finetune_episodes`): varied starts, one sparse goal L frames ahead, reward 0 or r_succ; the
policy is `PriorActorCritic` (per-episode latent ε + learnable Gaussian action noise, see its module). The first
`distill_share` of the envs, the **distillation rows**, keep running Stage II's setting (clip starts, the prior's
goal schedule, the student's mean action driving) and the frozen expert labels every state they visit (online
DAgger); the loss is

    PPO (clipped surrogate + critic + bound, over RL rows) + distill_weight · ‖a_policy − a_expert‖² (distillation rows)

so the RL gradient cannot drag the motions away from the expert's.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from interprior.algos.ppo import (
    PPO,
    PPOConfig,
    RolloutBuffer,
    bound_loss,
    explained_variance,
    select_rows,
)
from interprior.config import config_to_dict, require
from interprior.envs.goal import GoalEnv
from interprior.envs.tracking import TrackingEnv
from interprior.errors import InterpriorError
from interprior.files import atomic_write_text
from interprior.mdp.inbetween import SuccessTolerances
from interprior.mdp.self_observation import self_observation_size
from interprior.models.finetune_policy import (
    PriorActorCritic,
    goal_observation,
    observation_shapes,
)
from interprior.train.checkpoint import RUN_MARK
from interprior.train.distill import (
    FORMAT,
    DistillConfig,
    load_prior,
    student_env_config,
)
from interprior.train.finetune_episodes import (
    GoalTypes,
    InbetweenEpisodes,
    StartDistribution,
)
from interprior.train.progress import Progress, TensorBoardLogger
from interprior.train.rundir import RESUMABLE_KEYS, RunDir, check_resume_inputs
from interprior.train.stopping import checkpoint_on_stop
from interprior.train.teacher import Teacher

CONFIG_NAME = "finetune.json"  # the Stage III config; config.json holds the prior's (`base`)


def finetune_ppo() -> PPOConfig:
    """PPO settings for finetuning a distilled policy: small actor steps, a fresh critic learning fast."""
    return PPOConfig(num_envs=32, horizon=32, minibatch_size=512, epochs=4, actor_lr=1e-5, critic_lr=3e-4,
                     critic_coef=1.0, bound_coef=1.0, max_grad_norm=1.0)


@dataclass
class FinetuneConfig:
    prior: str = ""  # the Stage II run (directory, checkpoint or exported prior) to start from
    base: DistillConfig = field(default_factory=DistillConfig)  # the prior's config (data, env, goals, masks, model)
    horizon_frames: tuple[int, int] = (15, 90)  # L: the goal this many frames ahead of the start, uniform
    margin: int = 5  # the episode ends this many control steps after the goal time
    starts: StartDistribution = field(default_factory=StartDistribution)
    goal_types: GoalTypes = field(default_factory=GoalTypes)
    tolerances: SuccessTolerances = field(default_factory=SuccessTolerances)
    # weight of the upright reward on get-up rows (fallen starts until standing); small, so that crouching just below
    # the standing threshold never pays more than reaching a goal (0: off)
    getup_reward: float = 0.05
    distill_share: float = 0.25  # share of the envs that keep Stage II's objective (the expert's labels)
    distill_weight: float = 1.0  # weight of their action loss beside the PPO loss
    log_std: float = -2.3  # initial log σ of the action noise (σ ≈ 0.1)
    critic_hidden: tuple[int, ...] = (256, 256)
    ppo: PPOConfig = field(default_factory=finetune_ppo)  # num_envs is ignored: base.env.num_envs counts
    total_samples: int = 20_000_000
    checkpoint_every_s: float = 300.0
    torch_threads: int | None = None

    def __post_init__(self):
        require(self, positive=("horizon_frames", "total_samples", "checkpoint_every_s", "torch_threads",
                                "critic_hidden"),
                non_negative=("margin", "distill_weight", "getup_reward"), fraction=("distill_share",))


def check_finetune_config(cfg: FinetuneConfig) -> None:
    """What the field checks cannot see (sums, orders, shares); raises `InterpriorError`."""
    cfg.starts.probs()
    cfg.goal_types.sampling(cfg.base.masks, cfg.horizon_frames)
    lo, hi = cfg.horizon_frames
    if lo > hi:
        raise InterpriorError(f"horizon_frames must be (low, high) with low <= high, got {cfg.horizon_frames}")
    if distill_rows(cfg) >= cfg.base.env.num_envs:
        raise InterpriorError(f"distill_share {cfg.distill_share} of {cfg.base.env.num_envs} envs leaves no env "
                              "for RL")
    if not cfg.prior or not cfg.base.expert:
        raise InterpriorError("a finetune config names its prior and (in base.expert) the prior's expert")


def distill_rows(cfg: FinetuneConfig) -> int:
    return round(cfg.distill_share * cfg.base.env.num_envs)


def finetune_config_for(prior: str | Path, num_envs: int | None = None) -> FinetuneConfig:
    """Defaults around a prior: its resolved config as `base` (with `num_envs` envs if given)."""
    prior_cfg, _, _ = load_prior(prior)
    if num_envs is not None:
        prior_cfg.env.num_envs = num_envs
    return FinetuneConfig(prior=str(prior), base=prior_cfg)


class Finetuner:
    def __init__(self, cfg: FinetuneConfig, out: str | Path, restart: bool = False, accept_changes: bool = False):
        """Build the run in `out` (resumed from its newest intact checkpoint when it has one); nothing is written
        until everything is built. `accept_changes`: resume although the clips or the expert changed."""
        self.cfg = cfg
        check_finetune_config(cfg)
        student_env_config(cfg.base)
        self.run = RunDir(out)
        if (self.run.root / "config.json").is_file() and not (self.run.root / CONFIG_NAME).is_file():
            raise InterpriorError(f"{out} holds another stage's run (config.json, no {CONFIG_NAME}); it is left "
                                  "alone: use another --out")
        self.run.config_path = self.run.root / CONFIG_NAME
        with self.run.starting():
            self.run.check_config(cfg, restart=restart, ignore=RESUMABLE_KEYS)
            self._build(cfg)
            self.run.write_config(cfg, restart=restart, ignore=RESUMABLE_KEYS)
            atomic_write_text(self.run.root / "config.json", _json({**config_to_dict(cfg.base),
                                                                    RUN_MARK[0]: RUN_MARK[1]}))
            state = self.run.load_latest()
            if state is not None:
                check_resume_inputs(self.run.root, state, self.clip_names, self.teacher.record, accept=accept_changes)
                self._resume(state)

    # --- building ---------------------------------------------------------------------------------------------
    def _build(self, cfg: FinetuneConfig) -> None:
        self.learn_threads = cfg.torch_threads or torch.get_num_threads()
        if cfg.torch_threads:
            torch.set_num_threads(cfg.torch_threads)
        base = cfg.base
        prior_cfg, model, prior_state = load_prior(cfg.prior)
        if config_to_dict(prior_cfg.model) != config_to_dict(base.model) or \
                config_to_dict(prior_cfg.goals) != config_to_dict(base.goals):
            raise InterpriorError(f"base.model / base.goals differ from the prior {cfg.prior}'s: they are its network")
        self.teacher = Teacher(base.expert, base.skill_experts)
        clips = base.data.load()
        self.clip_names = [c.name for c in clips]
        hi = cfg.horizon_frames[1]
        env_cfg = replace(student_env_config(base), init_noise_pos=cfg.starts.root_noise,
                          init_noise_rot=cfg.starts.joint_noise,
                          episode_length=max(base.env.episode_length, hi + cfg.margin + 2),
                          termination=replace(base.env.termination, enabled=False, fall_height=0.0))
        self.env = TrackingEnv(clips, base.data.objects, env_cfg)
        self.teacher.bind(self.env, base.data.data)
        self.state_dim = self_observation_size(self.env.groups)
        if (self.state_dim, self.env.act_dim) != (prior_state["state_dim"], prior_state["act_dim"]):
            raise InterpriorError(f"the prior {cfg.prior} was trained on another body (state/action sizes)")
        n, dev = base.env.num_envs, self.env.device
        self.generator = torch.Generator().manual_seed(cfg.ppo.seed)
        self.goal_env = GoalEnv(self.env, base.goals, base.masks, generator=self.generator)
        rl_rows = torch.arange(distill_rows(cfg), n)
        self.episodes = InbetweenEpisodes(self.goal_env, rl_rows, cfg.starts,
                                          cfg.goal_types.sampling(base.masks, cfg.horizon_frames), cfg.tolerances,
                                          cfg.margin, self.generator, getup_reward=cfg.getup_reward)
        self.is_rl = self.episodes.is_rl
        self.policy = PriorActorCritic(model.train(), cfg.critic_hidden, cfg.log_std, seed=cfg.ppo.seed).to(dev)
        self.ppo = PPO(self.policy, cfg.ppo)
        self.buffer = RolloutBuffer(n, cfg.ppo.horizon, observation_shapes(model), self.env.act_dim, dev)
        self.labels = torch.zeros(cfg.ppo.horizon, n, self.env.act_dim, device=dev)
        self.eps = torch.zeros(n, base.model.latent_dim, device=dev)
        self.reached = torch.zeros(n, dtype=torch.bool)  # the episode's goal was met at some step
        self.steps = torch.zeros(n, dtype=torch.long)  # control steps of the running episode
        self.samples = self.iteration = 0
        self.history: list[dict] = []

    def _resume(self, state: dict) -> None:
        self.policy.load_prior_state(state["model"])
        self.policy.load_extra_state(state["policy"])
        self.ppo.load_state_dict(upgrade_optimizer_state(state["ppo"], self.ppo.optimizer))
        self.samples, self.iteration = int(state["samples"]), int(state["iteration"])
        self.history = list(state.get("history", []))
        self.generator.set_state(state["generator"])
        print(f"resumed {self.run.root} at iteration {self.iteration}, {self.samples} samples")

    def checkpoint(self) -> Path:
        self.policy.sync_prior()
        return self.run.save(self.iteration, {
            "format": FORMAT, "kind": "prior", "stage": "finetune", "model": self.policy.prior.state_dict(),
            "policy": self.policy.extra_state(), "ppo": self.ppo.state_dict(), "samples": self.samples,
            "iteration": self.iteration, "history": self.history, "clips": self.clip_names,
            "state_dim": self.state_dim, "act_dim": self.env.act_dim, "generator": self.generator.get_state(),
            "teacher": self.teacher.record, "prior": self.cfg.prior,
        })

    # --- rollouts ---------------------------------------------------------------------------------------------
    def new_latents(self, ids: torch.Tensor) -> None:
        """Fresh per-episode ε for envs `ids` (the policy's own latent sampling on the sphere)."""
        if len(ids):
            self.eps[ids.to(self.eps.device)] = torch.randn(len(ids), self.eps.shape[1],
                                                            generator=self.generator).to(self.eps)
            self.reached[ids] = False
            self.steps[ids] = 0

    def start(self) -> None:
        """Every env at a fresh episode: the fallen-state pool is made first (it resets every env)."""
        made = self.episodes.make_pool()
        self.pool_size = made
        self.env.reset()
        self.goal_env.start(reset=False)
        self.episodes.begin(self.episodes.rows)
        self.new_latents(torch.arange(self.env.num_envs))
        self._goal_obs = self.goal_env.observe()
        self._tracking_obs = self.env.observe()

    def collect(self) -> dict:
        env, buf, policy = self.env, self.buffer, self.policy
        rl = self.is_rl.to(env.device)
        buf.clear()
        success, lengths, ended_by, stood_up = [], [], {}, 0
        hits = torch.zeros(self.cfg.ppo.horizon, env.num_envs, dtype=torch.bool, device=env.device)
        for t in range(self.cfg.ppo.horizon):
            obs = goal_observation(self._goal_obs.state_obs, self._goal_obs.goal, self.eps, self.episodes.subtask)
            with torch.no_grad():
                self.labels[t] = self.teacher.labels(env, self._tracking_obs)
            action, log_prob, value, mu = policy.act(obs)
            action = torch.where(rl[:, None], action, mu)  # distillation rows: the student's own mean drives
            step = self.goal_env.step(action.clamp(-1.0, 1.0))
            hit = self.episodes.reward(step.state)  # the success reward alone
            reward = hit + self.episodes.getup_bonus(step.state).to(hit)
            hits[t] = hit > 0
            stood_up += int(self.episodes.update_subtask(step.state).sum())
            env_done = torch.zeros(env.num_envs, dtype=torch.bool)
            env_done[step.done_ids] = True
            ends = self.episodes.ends(step.state, step.reference, env_done, self.cfg.base.env.termination)
            cut, cut_values = self._truncations(step, ends)
            buf.add(obs, action, log_prob, value, reward, (ends.done & ~cut).to(env.device), cut.to(env.device),
                    cut_values)
            self.reached |= (hit > 0).cpu()
            self.steps += 1
            done_rl = ends.done & self.is_rl
            if bool(done_rl.any()):
                success.append(self.reached[done_rl].float())
                lengths.append(self.steps[done_rl].float())
            for why, hit in ends.reasons.items():
                ended_by[why] = ended_by.get(why, 0) + int(hit.sum())
            restarted = self.episodes.restart(ends)
            self.new_latents(ends.done.nonzero().flatten())
            if len(restarted):
                self._goal_obs, self._tracking_obs = self.goal_env.observe(), env.observe()
            else:
                self._goal_obs, self._tracking_obs = step.observation, step.tracking_obs
        last = goal_observation(self._goal_obs.state_obs, self._goal_obs.goal, self.eps, self.episodes.subtask)
        with torch.no_grad():
            buf.compute_returns(policy.value(last), self.cfg.ppo.gamma, self.cfg.ppo.gae_lambda)
        stats = {"reward/step_success": float(hits[:, rl].float().mean()), "episode/stood_up": stood_up}
        if success:
            stats["episode/success"] = float(torch.cat(success).mean())
            stats["episode/length"] = float(torch.cat(lengths).mean())
        total = max(1, sum(ended_by.values()))
        stats.update({f"ended_by/{why}": k / total for why, k in ended_by.items()})
        return stats

    def _truncations(self, step, ends) -> tuple[torch.Tensor, torch.Tensor | None]:
        """RL rows the tracking env cut off (clip end, episode length) before their goal time ended them: [N] bool,
        and the critic's value of their last state with their own goal (`step.truncated_observation`), which GAE
        bootstraps from. Goal-time ends, falls and divergence stay terminal."""
        cut = ends.reasons["env"] & step.truncated.cpu() & self.is_rl & ~ends.reasons["goal_time"]
        if not bool(cut.any()) or step.truncated_observation is None:
            return torch.zeros_like(cut), None
        final = step.truncated_observation
        obs = goal_observation(final.state_obs, final.goal, self.eps, self.episodes.subtask)
        with torch.no_grad():
            return cut, self.policy.value(obs)

    # --- learning ---------------------------------------------------------------------------------------------
    def update(self) -> dict:
        """PPO over the RL rows plus the distillation rows' action loss, in the same minibatches."""
        cfg, policy, ppo = self.cfg, self.policy, self.ppo
        data = self.buffer.flat()
        rl = self.is_rl.to(data["values"].device)[None].expand(cfg.ppo.horizon, -1).reshape(-1)
        labels = self.labels.reshape(-1, self.labels.shape[-1])
        rl_ids = rl.nonzero().flatten()
        policy.update_normalizer(select_rows(data["obs"], rl_ids))
        adv = data["advantages"]
        if cfg.ppo.normalize_advantage:
            a = adv[rl_ids]
            adv = (adv - a.mean()) / (a.std(unbiased=False) + 1e-8)
        n = adv.numel()
        mb = min(cfg.ppo.minibatch_size, n)
        names = ("policy", "value", "bound", "distill", "approx_kl")
        sums, count = torch.zeros(len(names)), 0
        params = [p for g in ppo.optimizer.param_groups for p in g["params"]]
        for _ in range(cfg.ppo.epochs):
            perm = torch.randperm(n, generator=ppo.generator).to(adv.device)
            for start in range(0, n - mb + 1, mb):
                idx = perm[start:start + mb]
                losses = self._minibatch_losses(data, adv, labels, rl, idx)
                ppo.optimizer.zero_grad(set_to_none=True)
                losses["total"].backward()
                if cfg.ppo.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, cfg.ppo.max_grad_norm)
                ppo.optimizer.step()
                sums += torch.stack([losses[k].detach().float().cpu() for k in names])
                count += 1
        stats = {f"loss/{k}": float(v) / max(count, 1) for k, v in zip(names, sums)}
        stats["loss/explained_variance"] = explained_variance(data["values"][rl_ids], data["returns"][rl_ids])
        stats["policy/log_std"] = float(policy.log_std.detach().mean())
        policy.sync_prior()
        return stats

    def _minibatch_losses(self, data: dict, adv, labels, rl, idx) -> dict:
        cfg = self.cfg.ppo
        log_prob, entropy, value, mu = self.policy.evaluate(select_rows(data["obs"], idx), data["actions"][idx])
        w = rl[idx].float()
        k = w.sum().clamp_min(1.0)
        log_ratio = log_prob - data["log_probs"][idx]
        ratio = log_ratio.exp()
        a = adv[idx]
        surrogate = torch.max(-a * ratio, -a * ratio.clamp(1 - cfg.clip, 1 + cfg.clip))
        policy_loss = (surrogate * w).sum() / k
        value_loss = ((value - data["returns"][idx]).square() * w).sum() / k
        b_loss = bound_loss(mu, cfg.bound)
        d = 1.0 - w
        distill = ((mu - labels[idx]).square().mean(-1) * d).sum() / d.sum().clamp_min(1.0)
        ent = (entropy * w).sum() / k
        total = (policy_loss + cfg.critic_coef * value_loss + cfg.bound_coef * b_loss - cfg.entropy_coef * ent
                 + self.cfg.distill_weight * distill)
        with torch.no_grad():
            kl = (((ratio - 1) - log_ratio) * w).sum() / k
        return {"total": total, "policy": policy_loss, "value": value_loss, "bound": b_loss, "distill": distill,
                "approx_kl": kl}

    # --- the loop ---------------------------------------------------------------------------------------------
    def train(self, max_seconds: float | None = None) -> None:
        self.start()
        point = lambda: f"iteration {self.iteration}, {self.samples} samples"
        try:
            with TensorBoardLogger(self.run.root) as tb, checkpoint_on_stop(self.checkpoint, point):
                self._loop(tb, max_seconds)
            self.checkpoint()
        finally:
            self.run.unlock()

    def _loop(self, tb, max_seconds: float | None) -> None:
        cfg = self.cfg
        per_iter = cfg.base.env.num_envs * cfg.ppo.horizon
        progress = Progress(cfg.total_samples, start_samples=self.samples, deadline_s=max_seconds)
        last_ckpt = start = time.time()
        while self.samples < cfg.total_samples:
            t0 = time.perf_counter()
            torch.set_num_threads(1)
            stats = self.collect()
            torch.set_num_threads(self.learn_threads)
            t1 = time.perf_counter()
            stats.update(self.update())
            t2 = time.perf_counter()
            self.samples += per_iter
            self.iteration += 1
            stats["perf/samples_per_s"] = per_iter / (t2 - t0)
            stats["perf/collect_share"] = (t1 - t0) / (t2 - t0)
            point = {"samples": self.samples, "step_success": stats["reward/step_success"],
                     "distill": stats["loss/distill"], "value": stats["loss/value"]}
            for key, name in (("episode/success", "success"), ("episode/length", "episode_length")):
                if key in stats:
                    point[name] = stats[key]
            self.history.append(point)
            tb.scalars(self.samples, stats)
            now = time.time()
            last = self.samples >= cfg.total_samples or (max_seconds is not None and now - start >= max_seconds)
            progress.update(self.samples, force=last, success=stats.get("episode/success", float("nan")),
                            distill=stats["loss/distill"])
            if now - last_ckpt >= cfg.checkpoint_every_s:
                self.checkpoint()
                last_ckpt = now
            if last:
                break


def upgrade_optimizer_state(saved: dict, optimizer: torch.optim.Optimizer) -> dict:
    """A PPO state (`PPO.state_dict`) saved before the subtask token: its optimiser lacks the token, the actor
    group's last parameter (`PriorActorCritic.actor_parameters`). Renumber the saved parameters into this
    optimiser's layout; the token starts with no Adam moments. Other states are returned as they are."""
    opt = saved["optimizer"]
    have = [len(g["params"]) for g in opt["param_groups"]]
    want = [len(g["params"]) for g in optimizer.param_groups]
    if have == want or len(have) != len(want) or want[0] != have[0] + 1 or have[1:] != want[1:]:
        return saved
    old_ids = [i for g in opt["param_groups"] for i in g["params"]]
    new_ids = list(range(have[0])) + [want[0] + j for j in range(sum(have[1:]))]
    remap = dict(zip(old_ids, new_ids))
    groups, start = [], 0
    for g, n in zip(opt["param_groups"], want):
        groups.append({**g, "params": list(range(start, start + n))})
        start += n
    state = {remap[k]: v for k, v in opt["state"].items()}
    return {**saved, "optimizer": {"state": state, "param_groups": groups}}


def _json(d: dict) -> str:
    return json.dumps(d, indent=2, sort_keys=True) + "\n"
