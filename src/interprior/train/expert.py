"""Stage I: train the imitation expert (InterMimic-style HOI tracking) with PPO. Resumable, logged.

`interprior train expert` builds an `ExpertConfig`, writes it beside the checkpoints (`RUN/config.json`) and
rebuilds everything from it on resume: a killed run continues from its last checkpoint with the same step count.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from interprior.algos.ppo import PPO, PPOConfig, RolloutBuffer
from interprior.config import require
from interprior.data.selection import DataSelection, held_out_indices  # noqa: F401  (re-exported)
from interprior.data.synth.dataset import clip_skills
from interprior.distributed import all_reduce_sum_, barrier, broadcast_module, init_distributed, is_main, shard
from interprior.envs.tracking import TrackingConfig, TrackingEnv
from interprior.errors import DataFileError, InterpriorError
from interprior.mdp.observations import repeated_columns
from interprior.models.actor_critic import ActorCritic
from interprior.sim.bench import bench_sim, raw_stepping_rate
from interprior.train.checkpoint import copy_weights, dict_to_config, load_checkpoint
from interprior.train.progress import Progress, TensorBoardLogger
from interprior.train.rundir import (
    RESUMABLE_KEYS,
    RunDir,
    check_resume_inputs,
    load_run_checkpoint,
)
from interprior.train.stopping import StopRequest, Stopped, checkpoint_on_stop


@dataclass
class ModelConfig:
    hidden: tuple[int, ...] = (1024, 1024, 512)
    critic_hidden: tuple[int, ...] | None = None
    log_std: float = -2.9

    def __post_init__(self):
        require(self, positive=("hidden", "critic_hidden"))


@dataclass
class ExpertConfig:
    data: DataSelection = field(default_factory=DataSelection)
    env: TrackingConfig = field(default_factory=TrackingConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    total_samples: int = 20_000_000
    checkpoint_every_s: float = 300.0
    torch_threads: int | None = None
    # a new run starts from these policy weights (and observation statistics): an expert run directory, a checkpoint
    # or an exported file with the same observation/action sizes and network. Fine-tuning with changed rewards or
    # clips. Read only when the run has no checkpoint yet; the optimiser and the sample count start afresh.
    init: str | None = None

    def __post_init__(self):
        require(self, positive=("total_samples", "checkpoint_every_s", "torch_threads"))


FORMAT = "interprior-expert-1"  # an exported expert file

def load_expert(checkpoint: str | Path):
    """(config, model in eval mode, checkpoint dict) from a run directory (its latest checkpoint), a checkpoint
    file inside one, or an exported file."""
    path = Path(checkpoint)
    if not path.exists():
        raise DataFileError(path, "no such run directory or checkpoint file")
    if path.is_file() and path.parent.name != "checkpoints":
        state = load_checkpoint(path)
        if state.get("format") != FORMAT:
            hint = ("; a training checkpoint is read from its run's checkpoints/ folder, beside the run's config.json"
                    if "model" in state and "iteration" in state else "")
            raise DataFileError(path, f"not an exported expert (format {state.get('format')!r}, expected "
                                      f"{FORMAT!r}){hint}")
        cfg = dict_to_config(ExpertConfig, state["config"])
    else:
        cfg, state, _ = load_run_checkpoint(path, ExpertConfig, kind="expert")
    model = ActorCritic(state["obs_dim"], state["act_dim"], hidden=cfg.model.hidden,
                        critic_hidden=cfg.model.critic_hidden, log_std=cfg.model.log_std)
    model.load_state_dict(state["model"])
    model.eval()
    return cfg, model, state


def cpu_preset(cfg: ExpertConfig) -> ExpertConfig:
    """Scaled-down constants for a 2-core CPU: same code, smaller batch and network, fewer epochs."""
    cfg.env.num_envs = 64
    cfg.ppo.num_envs = 64
    cfg.ppo.horizon = 32
    cfg.ppo.minibatch_size = 512  # 16 gradient steps per 2048-sample rollout: few samples, use them well
    cfg.ppo.epochs = 4
    cfg.ppo.actor_lr = 2e-4
    cfg.ppo.critic_lr = 5e-4
    cfg.ppo.desired_kl = 0.01  # the rates above are where it starts; the KL keeps 16 small-batch steps in check
    cfg.model.hidden = (256, 256, 128)
    cfg.env.action_mode = "residual"
    cfg.env.variant = "body_only"
    cfg.env.init_noise_rot = 0.02  # 0.05 rad on every joint breaks most grasps before the policy can act
    return cfg


class ExpertTrainer:
    def __init__(self, cfg: ExpertConfig, out: str | Path, restart: bool = False, accept_changes: bool = False):
        """Build the run in `out` (resumed from its newest intact checkpoint when it has one). Nothing is written
        until everything is built: a failed start leaves the folder as it was. `accept_changes`: resume even
        though the selected clips changed since the last checkpoint."""
        self.cfg = cfg
        cfg.ppo.num_envs = cfg.env.num_envs  # one source of truth: the env count
        # under torchrun: one process per device, each with its share of the clips and its own envs; gradients and
        # observation statistics are all-reduced (PPO), only rank 0 writes, prints and logs. A no-op otherwise.
        dist_info = init_distributed("cpu" if cfg.env.backend == "cpu" else cfg.env.device)
        self.world = dist_info.world_size
        self.run = RunDir(out)
        with self.run.starting() if is_main() else contextlib.nullcontext():
            if is_main():
                self.run.check_config(cfg, restart=restart, ignore=RESUMABLE_KEYS)
            self._build(cfg, dist_info)
            if is_main():
                self.run.write_config(cfg, restart=restart, ignore=RESUMABLE_KEYS)
            barrier()
            state = self.run.load_latest(tidy=is_main())
            if state is not None:
                check_resume_inputs(self.run.root, state, self.clip_names, accept=accept_changes)
                self._resume(state)
            elif cfg.init:
                self._init_from(cfg.init)
                broadcast_module(self.model)

    def _build(self, cfg: ExpertConfig, dist_info) -> None:
        self.learn_threads = cfg.torch_threads or torch.get_num_threads()
        torch.manual_seed(cfg.env.seed + dist_info.rank)  # network init and action noise: one seed, one run
        clips = cfg.data.load()
        self.clip_names = [c.name for c in clips]
        env_cfg = cfg.env
        if self.world > 1:
            if len(clips) < self.world:
                raise InterpriorError(f"{len(clips)} clips cannot be shared by {self.world} processes")
            clips = [clips[i] for i in shard(len(clips), dist_info.rank, self.world)]
            env_cfg = replace(cfg.env, seed=cfg.env.seed + dist_info.rank,
                              device=str(dist_info.device) if cfg.env.backend != "cpu" else cfg.env.device)
        self.env = TrackingEnv(clips, cfg.data.objects, env_cfg)
        # the skill of each clip, where the data set is synthetic (its synth.json): failure rates per skill
        skills = clip_skills(cfg.data.data) if cfg.data.data else {}
        self.skill_names = sorted({skills[c.name] for c in clips if c.name in skills})
        self._clip_skill = torch.tensor([self.skill_names.index(skills[c.name]) if c.name in skills else -1
                                         for c in clips], dtype=torch.long)
        dev = self.env.device
        self.model = ActorCritic(self.env.obs_dim, self.env.act_dim, hidden=cfg.model.hidden,
                                 critic_hidden=cfg.model.critic_hidden, log_std=cfg.model.log_std).to(dev)
        broadcast_module(self.model)  # every rank starts from rank 0's weights
        # the observation repeats its simulator-only blocks for every reference offset: multiply them once
        self.model.share_input_columns(repeated_columns(self.env.groups, cfg.env.obs_offsets))
        self.ppo = PPO(self.model, cfg.ppo)
        self.buffer = RolloutBuffer(cfg.env.num_envs, cfg.ppo.horizon, self.env.obs_dim, self.env.act_dim, dev)
        self.samples = 0
        self.iteration = 0
        self.history: list[dict] = []  # learning curve: samples, reward, episode length
        self._episode: dict | None = None  # a checkpoint's episodes under way (resume), until `train` restores them
        self._obs: torch.Tensor | None = None

    def _resume(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.ppo.load_state_dict(state["ppo"])
        self.samples, self.iteration = int(state["samples"]), int(state["iteration"])
        self.history = list(state.get("history", []))
        self._restore_env_state(state)
        self._episode = state.get("episode") if is_main() else None  # the episodes under way, for `train`
        if is_main():
            print(f"resumed {self.run.root} at iteration {self.iteration}, {self.samples} samples")

    def _restore_env_state(self, state: dict) -> None:
        """The env's random stream and its PSI buffer as checkpointed (runs written before they were saved resume
        with fresh ones). Ranks > 0 keep their own: only rank 0's are saved."""
        if not is_main():
            return
        if "env_generator" in state:
            self.env.generator.set_state(state["env_generator"])
        if "psi" in state and self.env.psi is not None:
            self.env.psi.load_state_dict(state["psi"])

    def _init_from(self, source: str) -> None:
        try:
            _, model, state = load_expert(source)
        except InterpriorError as e:
            raise InterpriorError(f"--init: {e}") from e
        copy_weights(self.model, model, source, f"obs {state['obs_dim']} vs {self.env.obs_dim}, act "
                                                 f"{state['act_dim']} vs {self.env.act_dim}; ")
        if is_main():
            print(f"initialised from {source} ({state.get('samples')} samples)")

    def _point(self) -> str:
        return f"iteration {self.iteration}, {self.samples} samples"

    def checkpoint(self) -> Path | None:
        if not is_main():  # every rank holds the same weights and optimiser state; rank 0 writes them
            return None
        return self.run.save(self.iteration, {
            "kind": "expert", "model": self.model.state_dict(), "ppo": self.ppo.state_dict(), "samples": self.samples,
            "iteration": self.iteration, "history": self.history, "clips": self.clip_names,
            "obs_dim": self.env.obs_dim, "act_dim": self.env.act_dim,
            "env_generator": self.env.generator.get_state(),
            "psi": self.env.psi.state_dict() if self.env.psi is not None else None,
            # between iterations (see `train`): the episodes under way, so a resumed run continues exactly
            "episode": None if self._obs is None else {**self.env.episode_state(), "obs": self._obs.cpu(),
                                                       "torch_rng": torch.get_rng_state()},
        })

    def collect(self) -> dict:
        env, model, buf = self.env, self.model, self.buffer
        buf.clear()
        obs = self._obs
        lengths, returns, term_sums, ended_by = [], [], {}, {}
        narrow = torch.get_num_threads()
        with model.fixed_weights():  # no update during a rollout: the network's input layers are prepared once
            for _ in range(self.cfg.ppo.horizon):
                # the policy's matrix products over all envs take every learning thread (the cores idle between
                # physics steps); the env's many small kernels stay on `narrow`
                torch.set_num_threads(self.learn_threads)
                action, log_prob, value, _ = model.act(obs)
                torch.set_num_threads(narrow)
                step = env.step(action)
                timeout_values = torch.zeros_like(step.reward)
                if len(step.done_ids):
                    ids = step.done_ids.to(obs.device)
                    with torch.no_grad():
                        timeout_values[ids] = model.value(step.final_obs).flatten()
                    lengths += step.episode_length.tolist()
                    returns += step.episode_return.tolist()
                    for why, hit in step.reasons.items():
                        ended_by[why] = ended_by.get(why, 0) + int(hit.sum())
                buf.add(obs, action, log_prob, value, step.reward, step.terminated, step.timeout, timeout_values)
                for k, v in step.terms.items():
                    term_sums[k] = term_sums.get(k, 0.0) + float(v.mean())
                obs = step.obs
            self._obs = obs
            with torch.no_grad():
                buf.compute_returns(model.value(obs).flatten(), self.cfg.ppo.gamma, self.cfg.ppo.gae_lambda)
        stats = {f"reward/{k}": v / self.cfg.ppo.horizon for k, v in term_sums.items()}
        stats["reward/step"] = float(buf.rewards.mean())
        if lengths:
            stats["episode/length"] = sum(lengths) / len(lengths)
            stats["episode/return"] = sum(returns) / len(returns)
            # which rule ended the episodes (fractions of the episodes that ended; the rest timed out)
            stats.update({f"ended_by/{why}": n / len(lengths) for why, n in ended_by.items()})
        return stats

    def _reference_targets(self, steps: int) -> list[torch.Tensor]:
        """PD targets of the next `steps` reference frames of every env from where it is (benchmarks drive the
        envs with these)."""
        env = self.env
        frame, out = env.frame.clone(), []
        for _ in range(steps):
            frame = torch.minimum(frame + 1, env.ref.lengths[env.clip_ids] - 1)
            ref_next = env.ref.tracks["dof_pos"][env.ref.flat(env.clip_ids, frame)]
            out.append(ref_next[:, env._dof_index].to(env.device, torch.float64))
        return out

    def bench_same_scene(self, steps: int = 30, reset: bool = True) -> float:
        """Env-steps/s of the bare batched simulator (stepping + full state extraction, nothing else) on this run's
        own scene: its envs, randomized model copies and object, started from the run's own reset states and
        driven by the reference PD targets."""
        env, sim = self.env, self.env.sim
        if reset:
            env.reset()
        targets = self._reference_targets(steps)
        seconds, step_seconds = sim.seconds, sim.step_seconds
        start = time.perf_counter()
        for target in targets:
            sim.step(targets=target)
            sim.state()
        rate = env.num_envs * steps / (time.perf_counter() - start)
        sim.seconds, sim.step_seconds = seconds, step_seconds
        return rate

    def bench_raw_stepping(self, steps: int = 30) -> float:
        """Env-steps/s of raw MuJoCo stepping of this run's own scene: the same backend (its envs, randomized
        models, threads) from the envs' current states, driven by the reference PD targets; `backend.step` only
        (no state extraction, kernels or policy). The envs are put back afterwards. The ceiling training is
        measured against."""
        return raw_stepping_rate(self.env.sim.backend, self._reference_targets(steps))

    def bench_standard(self, steps: int = 30) -> float:
        """`interprior bench sim` on this run's scene config (standing humanoid, object resting untouched, one
        shared model): the generic simulator figure, printed beside the same-scene one."""

        if self.cfg.env.backend != "cpu":
            return float("nan")
        res = bench_sim(envs=self.cfg.env.num_envs, steps=steps, scene=self.env.scene, threads=self.cfg.env.threads,
                        repeats=1)
        return res.batched_env_steps_per_s

    def train(self, max_seconds: float | None = None, bench: bool = True) -> None:
        raw: dict[str, float] = {}  # raw stepping of this run's scene, from its reset states and its final states
        sim_rate = float("nan")
        if bench:
            self.env.reset()
            raw["reset states"] = self.bench_raw_stepping()
            sim_rate = self.bench_same_scene(reset=False)
        if bench and is_main():
            print(f"bench sim on this run's scene (its envs, randomized models, reset states; stepping + full state "
                  f"extraction): {sim_rate:.0f} env-steps/s; raw stepping (backend.step only): "
                  f"{raw['reset states']:.0f} env-steps/s; `interprior bench sim` (standing, object untouched): "
                  f"{self.bench_standard():.0f} env-steps/s")
        self._start_episodes()
        self._start_samples = self.samples
        self.env.sim.seconds = self.env.sim.step_seconds = 0.0
        self._collect_s = self._learn_s = 0.0
        self._stop = StopRequest()  # a signal stops the loop between iterations: its checkpoint resumes exactly
        try:
            with TensorBoardLogger(self.run.root) as tb, checkpoint_on_stop(self.checkpoint, self._point, self._stop):
                self._loop(tb, max_seconds)
            self.checkpoint()
        except KeyboardInterrupt:  # stopped by a signal, checkpoint written: report what ran, then exit as asked
            with contextlib.suppress(OSError, ValueError):  # a closed stdout (`| head`) has no reader left
                self._report(sim_rate, raw)
            raise
        finally:
            self.run.unlock()
        if bench:
            raw["final states"] = self.bench_raw_stepping()
        self._report(sim_rate, raw)

    def _start_episodes(self) -> None:
        """The episodes the loop starts from: a resumed checkpoint's, exactly as they were (simulator, counters,
        the last observation, both random streams), else fresh ones."""
        saved, self._episode = self._episode, None
        if saved is None:
            self.env.reset()
            self._obs = self.env.observe()
            return
        self.env.load_episode_state(saved)
        self._obs = saved["obs"].to(self.env.device)
        torch.set_rng_state(saved["torch_rng"])

    def _loop(self, tb, max_seconds: float | None) -> None:
        cfg = self.cfg
        per_iter = cfg.env.num_envs * cfg.ppo.horizon * self.world  # samples of all ranks together
        progress = Progress(cfg.total_samples, start_samples=self.samples, deadline_s=max_seconds)
        last_ckpt = start = time.time()
        while self.samples < cfg.total_samples:
            t0, sim_s, step_s = time.perf_counter(), self.env.sim.seconds, self.env.sim.step_seconds
            torch.set_num_threads(1)  # many small kernels while stepping: threads only add overhead
            stats = self.collect()
            torch.set_num_threads(self.learn_threads)  # large matmuls while learning
            t1 = time.perf_counter()
            stats.update({f"ppo/{k}": v for k, v in self.ppo.update(self.buffer).items()})
            t2 = time.perf_counter()
            self._collect_s += t1 - t0
            self._learn_s += t2 - t1
            self.samples += per_iter
            self.iteration += 1
            stats["perf/samples_per_s"] = per_iter / (t2 - t0)
            stats["perf/collect_share"] = (t1 - t0) / (t2 - t0)
            # share of this iteration spent in the bare simulator (stepping + state extraction): training speed as
            # a fraction of the simulator's own speed on the same states, measured under the same load
            stats["perf/sim_share"] = (self.env.sim.seconds - sim_s) / (t2 - t0)
            stats["perf/step_share"] = (self.env.sim.step_seconds - step_s) / (t2 - t0)  # raw physics stepping
            stats.update(self.skill_failure())
            point = {"samples": self.samples, "reward": stats["reward/step"]}
            if "episode/length" in stats:
                point["episode_length"] = stats["episode/length"]
            self.history.append(point)
            tb.scalars(self.samples, stats)
            progress.update(self.samples, reward=stats["reward/step"], ep_len=stats.get("episode/length", float("nan")),
                            sim_share=stats["perf/sim_share"])
            now = time.time()
            if now - last_ckpt >= cfg.checkpoint_every_s:
                self.checkpoint()
                last_ckpt = now
            if max_seconds is not None and self._all_agree(now - start >= max_seconds):
                break
            if self._all_agree(self._stop.signum is not None):  # every rank stops at the same iteration
                raise Stopped(self._stop.signum or signal.SIGTERM)

    def skill_failure(self) -> dict[str, float]:
        """{"clips/failure/<skill>": the mean over the skill's clips of their recent share of episodes that ended
        early} (this rank's clips; empty for data without skills)."""
        rates = self.env.clip_failure.rates
        return {f"clips/failure/{name}": float(rates[self._clip_skill == k].mean())
                for k, name in enumerate(self.skill_names) if bool((self._clip_skill == k).any())}

    def _all_agree(self, flag: bool) -> bool:
        """True on every rank once any rank says so (ranks must leave the loop together: updates all-reduce)."""
        if self.world == 1:
            return flag
        return bool(all_reduce_sum_(torch.tensor([float(flag)], device=self.env.device)).item() > 0)

    def rank_divergence(self) -> float:
        """Largest parameter difference between any rank and rank 0 (0.0 when in sync or not distributed)."""
        flat = torch.cat([p.detach().reshape(-1).double() for p in self.model.parameters()])
        if self.world == 1:
            return 0.0
        import torch.distributed as dist

        gathered = [torch.empty_like(flat) for _ in range(self.world)]
        dist.all_gather(gathered, flat)
        return max(float((g - gathered[0]).abs().max()) for g in gathered)

    def _report(self, sim_rate: float, raw: dict[str, float] | None = None) -> None:
        if self.world > 1:
            diff = self.rank_divergence()
            if is_main():
                print(f"{self.world} processes: largest parameter difference between ranks {diff:.3g}")
        if not is_main():
            return
        total = self._collect_s + self._learn_s
        if total <= 0:
            return
        trained = self.samples - self._start_samples
        rate = trained / total
        line = (f"training: {trained} samples in {total:.0f} s = {rate:.0f} samples/s "
                f"(collection {self._collect_s:.0f} s, learning {self._learn_s:.0f} s)")
        if sim_rate == sim_rate:  # not NaN
            line += f"; {100 * rate / sim_rate:.0f}% of the bare simulator on this scene ({sim_rate:.0f} env-steps/s)"
        print(line)
        sim = self.env.sim
        failure = self.skill_failure()
        if failure:
            print("episodes ending early, recent share per skill: " + ", ".join(
                f"{k.rsplit('/', 1)[1]} {v:.2f}" for k, v in failure.items()))
        print(f"simulator stepping + full state extraction took {sim.seconds:.0f} s of {total:.0f} s: training runs at "
              f"{100 * sim.seconds / total:.0f}% of the bare simulator's speed on its own states "
              f"(learning overhead {total / max(sim.seconds, 1e-9):.2f}x)")
        if raw:
            self._report_raw(rate, sim_rate, raw, total)

    def _report_raw(self, rate: float, sim_rate: float, raw: dict[str, float], total: float) -> None:
        """Training against raw MuJoCo stepping of its own scene; the higher of the two raw figures (reset
        states, final states: both best of three) is the ceiling, so load during one of them cannot flatter it."""
        ceiling = max(raw.values())
        per_state = ", ".join(f"{k} {v:.0f}" for k, v in raw.items())
        print(f"raw MuJoCo stepping of this run's scene (its envs, models, threads and states; backend.step only, "
              f"no state extraction): {ceiling:.0f} env-steps/s ({per_state})")
        line = (f"training / raw stepping: {rate:.0f} samples/s / {ceiling:.0f} env-steps/s = "
                f"{100 * rate / ceiling:.0f}%")
        if not math.isnan(sim_rate):
            line += f"; simulator with state extraction / raw stepping: {100 * sim_rate / ceiling:.0f}%"
        print(line)
        print(f"inside training, raw stepping took {self.env.sim.step_seconds:.0f} s of {total:.0f} s "
              f"({100 * self.env.sim.step_seconds / total:.0f}%, under the run's own load)")
