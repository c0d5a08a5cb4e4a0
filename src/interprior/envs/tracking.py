"""Stage I tracking environment: N humanoids each tracking a clip of the motion library, with its object.

Stateful bookkeeping only (which clip and frame each env is at, episode starts, counters, PSI); everything else
is the pure kernels of `interprior.mdp`. One subject's skeleton per env set, like one InterMimic teacher per
subject; its clips may use several objects: the scene holds each once, every env uses its clip's object (object 0
of the simulated state, what the kernels read) and keeps the others parked out of reach.

Time convention: an env at `frame` f holds the simulated state that should match reference frame f. `step`
applies the action, the state moves to f + 1, the reward and terminations compare it with reference f + 1, and
the observation shows references f + 1 + Δ for Δ in `obs_offsets` ({1, 16}: the next frame and half a second on).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import Tensor

from interprior import schema
from interprior.assets.bodies import embodiment
from interprior.assets.humanoid import joint_ranges
from interprior.assets.objects import load_object
from interprior.assets.scene import SceneConfig, build_scene
from interprior.config import require
from interprior.data.clip import Clip
from interprior.data.skeleton import fit_skeleton
from interprior.data.state import ResetState
from interprior.errors import InterpriorError
from interprior.mdp import observations as obs_terms
from interprior.mdp import rewards as reward_terms
from interprior.mdp import terminations as term_terms
from interprior.mdp.clip_weights import ClipFailureRates
from interprior.mdp.psi import PsiBuffer
from interprior.mdp.motion_library import shared_motion_library
from interprior.rotations import axis_angle_to_quat, quat_mul, quat_normalize
from interprior.sim.backend import restore_backend, snapshot_backend
from interprior.sim.batched import BatchedSim, SimState
from interprior.sim.factory import make_backend
from interprior.sim.randomization import RandomizationRanges, sample_randomization


@dataclass
class TrackingConfig:
    num_envs: int = 64
    variant: str = "body_only"  # the body (`interprior.assets.embodiment`): SMPL-X "full" (153 DoF), "body_only" (63 DoF, rigid hands), or the tests' "toy"
    obs_offsets: tuple[int, ...] = (1, 16)
    # absolute: PD target = offset + scale·a (InterMimic's rule). residual: PD target = the next reference frame's
    # joint angles + residual_scale·a, so an untrained policy starts at the PD-replay baseline (a CPU-budget choice).
    # delta: PD target = the current joint angles + residual_scale·a (reads no reference: for goal policies, whose
    # labels are then small corrections instead of whole poses)
    action_mode: str = "absolute"
    residual_scale: float = 0.5  # rad per unit action (residual and delta)
    episode_length: int = 300  # control steps (training); evaluation uses 1000
    init: str = "hybrid"  # start | random | hybrid
    start_prob: float = 0.1  # hybrid: probability of starting at frame 0
    # share of resets whose clip is drawn ∝ its recent failure rate, the rest uniformly (0: uniform clip sampling;
    # `interprior.mdp.clip_weights`): samples go to the skills not yet mastered
    clip_weighting: float = 0.0
    psi_slots: int = 3  # 1 disables PSI (motion capture only)
    psi_update_prob: float = 0.05  # chance per finished-episode batch that PSI records it (paper: 0.005 at 4096 envs)
    init_noise_pos: float = 0.01  # m, root position noise at reset
    init_noise_rot: float = 0.05  # rad, root and joint angle noise at reset
    perturb_prob: float = 0.002  # per env and control step: a sparse impulse on the root
    perturb_speed: float = 0.5  # m/s added to the root velocity, horizontal, random direction
    joint_perturb_speed: float = 0.0  # rad/s (std) added to every hinge's velocity at the same impulses (robots)
    randomize_dynamics: bool = True
    friction_range: tuple[float, float] = (0.8, 1.1)
    mass_range: tuple[float, float] = (0.9, 1.1)
    inertia_range: tuple[float, float] = (1.0, 1.0)  # per-body factor on top of the mass scale
    com_offset: float = 0.01  # m
    backend: str = "cpu"
    device: str | None = None
    threads: int | None = None
    seed: int = 0
    # what `step` computes besides the simulation and terminations: the tracking reward (PPO on the expert) and the
    # teacher's tracking observation (the expert acting or labelling). A goal policy run alone (eval goals,
    # steering) needs neither, distillation no reward; off, `step` returns zeros and an [N, 0] observation
    compute_reward: bool = True
    compute_tracking_obs: bool = True
    reward: reward_terms.RewardWeights = field(default_factory=reward_terms.RewardWeights)
    termination: term_terms.TerminationConfig = field(default_factory=term_terms.TerminationConfig)

    def __post_init__(self):
        require(self, positive=("num_envs", "obs_offsets", "residual_scale", "episode_length", "psi_slots",
                                "threads", "friction_range", "mass_range", "inertia_range"),
                non_negative=("init_noise_pos", "init_noise_rot", "perturb_speed", "joint_perturb_speed",
                              "com_offset", "seed"),
                fraction=("start_prob", "psi_update_prob", "perturb_prob", "clip_weighting"))


def subject_skeleton(clips: list[Clip], parents: tuple[int, ...] = schema.BODY_PARENTS) -> tuple:
    """Bone offsets of the clips' subject, fitted over all their frames (body tree `parents`)."""
    subjects = {c.subject for c in clips}
    if len(subjects) > 1:
        raise InterpriorError(f"clips of several subjects {sorted(map(str, subjects))}: train one subject per run")
    body_pos = torch.cat([c.body_pos for c in clips])
    body_rot = torch.cat([c.body_rot for c in clips])
    return tuple(map(tuple, fit_skeleton(body_pos, body_rot, parents).offsets.tolist()))


@dataclass
class TrackingStep:
    """What one `TrackingEnv.step` did. `obs` is the next observation (reset envs: their new episode's first);
    `state` the simulated state this step reached, before any auto-reset replaced rows of it."""

    obs: Tensor  # [N, O]
    reward: Tensor  # [N]
    terminated: Tensor  # [N] bool: an early-termination rule (or a fall, or divergence) ended the episode
    timeout: Tensor  # [N] bool: the episode reached its length or its clip's end (and was not terminated)
    terms: dict[str, Tensor]  # reward term name -> [N]
    reasons: dict[str, Tensor]  # termination rule -> [N] bool (non_finite first)
    diverged: Tensor  # [N] bool: the simulation blew up this step (reward 0, ended as non_finite)
    state: SimState  # [N] this step's simulated state, before auto-resets
    qpos: Tensor | None = None  # [N, nq] this step's qpos where envs were reset (else read the backend)
    done_ids: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))  # [k] envs that ended
    final_obs: Tensor | None = None  # [k, O] their last observation
    episode_length: Tensor = field(default_factory=lambda: torch.zeros(0))  # [k] control steps
    episode_return: Tensor = field(default_factory=lambda: torch.zeros(0))  # [k]
    psi_written: Tensor | None = None  # PSI slots written from these episodes (when the buffer recorded)


class TrackingEnv:
    def __init__(self, clips: list[Clip], objects_dir, cfg: TrackingConfig):
        missing = [c.name for c in clips if not c.object_name]
        if missing or not clips:
            raise InterpriorError(f"every clip needs an object; none named in {missing[:3] or 'an empty clip list'}")
        self.cfg = cfg
        self.body = embodiment(cfg.variant)  # the body description; its groups go to every kernel
        other = sorted({int(c.body_pos.shape[1]) for c in clips} - {self.body.num_bodies})
        if other:
            raise InterpriorError(f"the clips have {other[0]} bodies, the {self.body.name!r} body (env.variant) has "
                                  f"{self.body.num_bodies}: train the body the data was made for")
        self.groups = self.body.resolved
        self.object_names = list(dict.fromkeys(c.object_name for c in clips))  # scene order: first use
        assets = [load_object(objects_dir, name) for name in self.object_names]
        self.clip_object = torch.tensor([self.object_names.index(c.object_name) for c in clips])  # [clips]
        self.scene = build_scene(SceneConfig(body=self.body, offsets=subject_skeleton(clips, self.body.parents),
                                             objects=tuple(assets)))
        backend = make_backend(self.scene.model, cfg.num_envs, self.scene.config.substeps, cfg.backend, cfg.device,
                               cfg.threads)
        self.sim = BatchedSim(self.scene, backend)
        self.device = self.sim.device
        self.num_envs = cfg.num_envs
        self.ref = shared_motion_library(clips, [torch.as_tensor(assets[i].surface_points)
                                                 for i in self.clip_object], self.body)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.dt = self.scene.config.control_dt
        n = cfg.num_envs
        self.clip_ids = torch.zeros(n, dtype=torch.long)
        self.frame = torch.zeros(n, dtype=torch.long)
        self.start = torch.zeros(n, dtype=torch.long)
        self.hand_counter = torch.zeros(n, 2, dtype=torch.long, device=self.device)
        self.episode_return = torch.zeros(n)
        self.prev = None
        self.psi = self._make_psi()
        self.clip_failure = ClipFailureRates(self.ref.num_clips)
        # packed simulated states of each env's current episode, for PSI scoring when it ends
        self.traj = torch.zeros(n, cfg.episode_length + 1, self._state_dim()) if self.psi is not None else None
        if cfg.randomize_dynamics:
            self._randomize()
        if cfg.action_mode not in ("absolute", "residual", "delta"):
            raise InterpriorError(f"action_mode must be absolute, residual or delta, got {cfg.action_mode!r}")
        self._dof_index = torch.as_tensor(self.body.dof_index)
        self._dof_v = torch.as_tensor(self.scene.layout.dof_qvel_adr, device=self.device)
        self.limits = torch.as_tensor(joint_ranges(self.body)[list(self.body.dof_index)], device=self.device)
        self.last_action: Tensor | None = None  # [N, A] the previous step's action (stabilisation reward)
        self.acted = torch.zeros(n, dtype=torch.bool)  # envs that acted since their reset
        self.obs_dim = obs_terms.observation_size(self.groups, cfg.obs_offsets)
        self.act_dim = self.body.num_dofs

    @property
    def points(self) -> Tensor:
        """Object-frame surface points of each env's object: [P, 3] (one object) or [N, P, 3]."""
        return self.sim.env_points()

    def clip_points(self, clip_ids: Tensor) -> Tensor:
        """Object-frame surface points of the given clips' objects: [P, 3] (one object) or [n, P, 3]."""
        if len(self.object_names) == 1:
            return self.sim.object_points
        return self.sim.points_by_object[self.clip_object[clip_ids.cpu()].to(self.device)]

    # --- resets ---------------------------------------------------------------------------------------------
    def _make_psi(self):
        if self.cfg.psi_slots <= 1:
            return None

        return PsiBuffer(self.ref.num_clips, int(self.ref.lengths.max()), self.cfg.psi_slots, self._state_dim(),
                         clip_lengths=self.ref.lengths)

    def _state_dim(self) -> int:
        return 13 + 2 * self.body.num_dofs + 13

    def _randomize(self) -> None:
        ranges = RandomizationRanges(friction=self.cfg.friction_range, mass=self.cfg.mass_range,
                                     inertia=self.cfg.inertia_range, com_offset=self.cfg.com_offset)
        self.sim.backend.randomize(sample_randomization(self.scene.model, self.num_envs, ranges, self.generator))

    def _sample_starts(self, n: int) -> tuple[Tensor, Tensor]:
        if self.cfg.clip_weighting > 0:
            clip_ids = self.clip_failure.sample(n, self.cfg.clip_weighting, self.generator)
        else:
            clip_ids = torch.randint(self.ref.num_clips, (n,), generator=self.generator)
        lengths = self.ref.lengths[clip_ids]
        if self.cfg.init == "start":
            return clip_ids, torch.zeros(n, dtype=torch.long)
        # random frame, leaving at least 30 frames of motion ahead
        latest = (lengths - 30).clamp_min(1)
        frames = (torch.rand(n, generator=self.generator) * latest).long()
        if self.cfg.init == "hybrid":
            if self.psi is not None:
                # favour frames where PSI holds little successful state; any frame with 30 frames of motion ahead
                # (InterMimic excludes the clip's last episode-length frames: short clips would always start at 0)
                return clip_ids, self.psi.sample_start_frames(clip_ids, 30, self.generator, self.cfg.start_prob)
            at_start = torch.rand(n, generator=self.generator) < self.cfg.start_prob
            frames = torch.where(at_start, torch.zeros_like(frames), frames)
        return clip_ids, frames

    def _noisy(self, state: ResetState) -> ResetState:
        n = state.root_pos.shape[0]
        g, dt = self.generator, state.root_pos.dtype
        state.root_pos = state.root_pos + self.cfg.init_noise_pos * torch.randn(n, 3, generator=g, dtype=dt) * \
            torch.tensor([1.0, 1.0, 0.0], dtype=dt)
        tilt = self.cfg.init_noise_rot * torch.randn(n, 3, generator=g, dtype=dt)
        state.root_rot = quat_normalize(quat_mul(axis_angle_to_quat(tilt), state.root_rot))
        state.dof_pos = state.dof_pos + self.cfg.init_noise_rot * torch.randn(state.dof_pos.shape, generator=g,
                                                                                 dtype=dt)
        return state

    def reset(self, env_ids: Tensor | None = None) -> None:
        ids = torch.arange(self.num_envs) if env_ids is None else env_ids.cpu()
        if len(ids) == 0:
            return
        clip_ids, frames = self._sample_starts(len(ids))
        self.reset_to(ids, clip_ids, frames, noise=True)

    def reset_to(self, ids: Tensor, clip_ids: Tensor, frames: Tensor, noise: bool = False) -> None:
        """Put envs `ids` at the given clips and frames (PSI states where the buffer has them)."""
        state = self.ref.reset_state(clip_ids, frames, self.body)
        if self.psi is not None and noise:
            state = self.psi.apply(state, clip_ids, frames, self.generator, pack=self._pack, unpack=self._unpack)
        state = self._noisy(state) if noise else state
        self.sim.set_active(ids, self.clip_object[clip_ids.cpu()])
        self.sim.reset(ids.to(self.device), state)
        if self.traj is not None:
            self.traj[ids, 0] = self._pack(state)
        self.clip_ids[ids], self.frame[ids], self.start[ids] = clip_ids, frames, frames
        self.hand_counter[ids.to(self.device)] = 0
        self.episode_return[ids] = 0.0
        self.acted[ids] = False
        self.prev = None  # some rows changed; `step` sets it again

    def reset_to_state(self, ids: Tensor, clip_ids: Tensor, frames: Tensor, state: ResetState) -> None:
        """Put envs `ids` in `state` (e.g. a fallen state made in physics), with clip `clip_ids` at `frames` as their
        reference (which goals are drawn from)."""
        self.reset_to(ids, clip_ids, frames)
        self.sim.reset(ids.to(self.device), state)
        if self.traj is not None:
            self.traj[ids, 0] = self._pack(state)

    def reset_state_of(self, state: SimState) -> ResetState:
        """The reset state that puts envs back exactly where the simulated `state` is (positions, velocities)."""
        return self._unpack(self._pack(state))

    def current_dof_pos(self) -> Tensor:
        """[N, D] joint angles now (the last step's state, or read from the simulator after a reset)."""
        return (self.prev if self.prev is not None else self.sim.state()).dof_pos

    # PSI stores the reset-relevant simulated state as one flat vector per (clip, frame, slot)
    def _pack(self, s) -> Tensor:
        return torch.cat([s.root_pos, s.root_rot, s.root_linvel, s.root_angvel, s.dof_pos, s.dof_vel,
                          s.obj_pos[:, 0], s.obj_rot[:, 0], s.obj_linvel[:, 0], s.obj_angvel[:, 0]], dim=-1).float().cpu()

    def _unpack(self, v: Tensor) -> ResetState:
        d = self.body.num_dofs
        parts = torch.split(v, [3, 4, 3, 3, d, d, 3, 4, 3, 3], dim=-1)
        obj = [p[:, None, :] for p in parts[6:]]
        return ResetState(*parts[:6], *obj)

    # --- checkpoints ----------------------------------------------------------------------------------------
    def episode_state(self) -> dict:
        """Everything of the episodes under way, as tensors: the simulator (with its solver warm start, on the CPU
        backend), clips, frames, counters, the PSI trajectories, the last step's state and the random stream.
        `load_episode_state` continues from it exactly."""
        snap = snapshot_backend(self.sim.backend)
        prev = None if self.prev is None else {f.name: getattr(self.prev, f.name).cpu() for f in fields(SimState)}
        return {"backend": [torch.as_tensor(x).clone().cpu() for x in snap], "clip_ids": self.clip_ids.clone(),
                "frame": self.frame.clone(), "start": self.start.clone(), "hand_counter": self.hand_counter.cpu(),
                "episode_return": self.episode_return.clone(), "active": self.sim.active.cpu(),
                "traj": None if self.traj is None else self.traj.clone(), "prev": prev,
                "generator": self.generator.get_state(), "acted": self.acted.clone(),
                "clip_failure": self.clip_failure.rates.clone(),
                "last_action": None if self.last_action is None else self.last_action.cpu()}

    def load_episode_state(self, state: dict) -> None:
        native = hasattr(self.sim.backend, "restore")  # the CPU backend's own snapshot (numpy arrays)
        snap = [x.numpy() if native else x.to(self.device) for x in state["backend"]]
        restore_backend(self.sim.backend, tuple(snap))
        self.clip_ids[:], self.frame[:], self.start[:] = state["clip_ids"], state["frame"], state["start"]
        self.hand_counter = state["hand_counter"].to(self.device)
        self.episode_return[:] = state["episode_return"]
        self.sim.active[:] = state["active"].to(self.device)
        if self.traj is not None and state["traj"] is not None:
            self.traj[:] = state["traj"]
        prev = state["prev"]
        self.prev = None if prev is None else SimState(**{k: v.to(self.device) for k, v in prev.items()})
        self.generator.set_state(state["generator"])
        self.acted[:] = state.get("acted", torch.zeros_like(self.acted))
        if state.get("clip_failure") is not None and state["clip_failure"].shape == self.clip_failure.rates.shape:
            self.clip_failure.rates = state["clip_failure"].clone()
        last = state.get("last_action")
        self.last_action = None if last is None else last.to(self.device)

    # --- stepping -------------------------------------------------------------------------------------------
    def observe(self, sim_state=None) -> Tensor:
        sim_state = sim_state or self.sim.state()
        refs = [self.ref.state(self.clip_ids, self.frame + k, self.device) for k in self.cfg.obs_offsets]
        return obs_terms.tracking_observation(sim_state, refs, self.groups)

    def _stability(self, state: SimState, action: Tensor) -> dict[str, Tensor]:
        """The robot stabilisation factors (none with their default weights 0); remembers `action`."""
        w = self.cfg.reward
        if not (w.feet_flat > 0 or w.upright > 0 or w.action_rate > 0 or w.joint_limits > 0):
            return {}
        action = action.to(self.device, state.root_pos.dtype)
        prev = None
        if self.last_action is not None:  # rows just reset have no previous action: their term is 1
            prev = torch.where(self.acted.to(self.device)[:, None], self.last_action, action)
        terms = reward_terms.stability_terms(state, self.groups, w, action, prev, self.limits)
        self.last_action, self.acted[:] = action, True
        return terms

    def _perturb(self) -> None:
        hit = torch.rand(self.num_envs, generator=self.generator) < self.cfg.perturb_prob
        if not bool(hit.any()):
            return
        ids = hit.nonzero().flatten()
        qpos = self.sim.backend.qpos()[ids.to(self.device)].clone()
        qvel = self.sim.backend.qvel()[ids.to(self.device)].clone()
        angle = 2 * torch.pi * torch.rand(len(ids), generator=self.generator)
        push = self.cfg.perturb_speed * torch.stack([angle.cos(), angle.sin(), torch.zeros_like(angle)], -1)
        qvel[:, 0:3] += push.to(qvel)
        if self.cfg.joint_perturb_speed > 0:  # per-joint impulses (robot training)
            kick = self.cfg.joint_perturb_speed * torch.randn(len(ids), len(self._dof_v), generator=self.generator)
            qvel[:, self._dof_v] += kick.to(qvel)
        self.sim.backend.reset(ids.to(self.device), qpos, qvel)

    @property
    def diverged_total(self) -> int:
        """Env-steps whose simulation diverged since the env was made (each ended its episode as non_finite)."""
        return self.sim.diverged_total

    def step(self, action: Tensor) -> TrackingStep:
        """One control step of every env. Envs that ended are reset (auto-reset); the result carries their final
        observation (for bootstrapping timeouts) and episode statistics, and this step's state before the reset."""
        if self.cfg.perturb_prob > 0:
            self._perturb()
        if self.cfg.action_mode == "residual":
            ref_next = self.ref.tracks["dof_pos"][self.ref.flat(self.clip_ids, self.frame + 1)]
            targets = ref_next[:, self._dof_index].to(self.device, torch.float64)
            self.sim.step(targets=targets + self.cfg.residual_scale * action.to(targets).clamp(-1.0, 1.0))
        elif self.cfg.action_mode == "delta":
            current = self.current_dof_pos().to(torch.float64)
            self.sim.step(targets=current + self.cfg.residual_scale * action.to(current).clamp(-1.0, 1.0))
        else:
            self.sim.step(action=action)
        state = self.sim.state()
        self.frame += 1
        ref = self.ref.state(self.clip_ids, self.frame, self.device)
        if self.cfg.compute_reward:
            stability = self._stability(state, action)
            reward, terms = reward_terms.tracking_reward(state, ref, self.prev, self.groups, self.cfg.reward, self.dt,
                                                         stability)
        else:
            reward, terms = torch.zeros(self.num_envs, dtype=state.root_pos.dtype, device=self.device), {}
        diverged = self.sim.diverged  # [N] the simulation blew up (already reset by the simulator): non_finite
        terminated, reasons, self.hand_counter = term_terms.early_termination(
            state, ref, self.hand_counter, self.points, self.frame.to(self.device), self.start.to(self.device),
            self.groups, self.cfg.termination, diverged=diverged)
        reward = reward.masked_fill(diverged.to(reward.device), 0.0)  # that state is no outcome of the policy
        timeout = term_terms.timeout(self.frame, self.start, self.ref.lengths[self.clip_ids], self.cfg.episode_length)
        timeout = timeout.to(self.device) & ~terminated
        obs = self.observe(state) if self.cfg.compute_tracking_obs else torch.zeros(self.num_envs, 0,
                                                                                      device=self.device)
        if self.traj is not None:
            step_index = (self.frame - self.start).clamp(max=self.cfg.episode_length)
            self.traj[torch.arange(self.num_envs), step_index] = self._pack(state)
        self.episode_return += reward.cpu()
        done = (terminated | timeout).cpu()
        out = TrackingStep(obs=obs, reward=reward, terminated=terminated, timeout=timeout, terms=terms,
                           reasons=reasons, diverged=diverged, state=state)
        if bool(done.any()):
            out.qpos = self.sim.backend.qpos().clone()
            ids = done.nonzero().flatten()
            out.done_ids, out.final_obs = ids, obs[ids.to(self.device)].clone()
            out.episode_length = (self.frame[ids] - self.start[ids]).float()
            out.episode_return = self.episode_return[ids].clone()
            self.clip_failure.update(self.clip_ids[ids], terminated[ids.to(self.device)])
            if self.psi is not None and float(torch.rand(1, generator=self.generator)) < self.cfg.psi_update_prob:
                out.psi_written = self.psi.record(
                    self.clip_ids[ids], self.start[ids], self.frame[ids], self.ref.lengths[self.clip_ids[ids]],
                    self.cfg.episode_length, self.traj[ids])
            self.reset(ids)
            dev_ids = ids.to(self.device)
            fresh = self.sim.state(dev_ids)  # only the reset envs changed
            if self.cfg.compute_tracking_obs:
                refs = [self.ref.state(self.clip_ids[ids], self.frame[ids] + k, self.device)
                        for k in self.cfg.obs_offsets]
                obs[dev_ids] = obs_terms.tracking_observation(fresh, refs, self.groups)
            state = state.with_rows(dev_ids, fresh)
        self.prev = state
        return out
