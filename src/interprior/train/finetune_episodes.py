"""Stage III episodes (InterPrior §3 "Stage III"): single-frame in-betweening from varied starts.

* **Starts** (`StartDistribution`, per episode): a dataset state with root and joint noise (a share of them at
  frames where the reference **holds the object**: object contact with a hand in contact); a dataset state
  followed by a random horizontal impulse on the root; or a **fallen** state from a pool made in physics when the
  trainer starts (`interprior.envs.fallen.make_fallen_starts`: random clip frames pushed over and left to fall).
* **Goal**: one sparse goal per episode on the snapshot token, the clip's reference L frames ahead of the start
  frame (L uniform in `horizon_frames`, clamped to the clip's end), with a mask of one of the sparse goal types
  (snapshot, object, hand, contact, composed; `GoalTypes`). It is held as the goal env's caller goal, so once its
  time has come it stays the goal (time to target one control step) for the episode's last `margin` frames.
* **Reward**: `success_reward` of the step's state against that goal: exactly 0 or r_succ; plus, on **get-up**
  rows, `getup_reward · upright_reward` (pelvis height share × torso cosine to upright, in [0, 1]).
* **Getting up**: a fallen start sets the row's subtask token to `GET_UP` (the prior's subtask token, an input the
  policy sees); once the body stands (`is_standing`, checked after each step's reward) the token is cleared and the
  episode goes on to its goal with no upright reward. Other starts: token 0 throughout.
* **Ends**: `margin` frames after the goal time (the task is over: no bootstrap), on a fall (pelvis below the
  fall height; not for fallen starts, which must get up), or when the tracking env ends the row (non-finite state,
  clip end).

Everything is batched over the envs that start or end; no per-env Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from interprior.config import require
from interprior.data.state import ResetState
from interprior.envs.fallen import make_fallen_starts
from interprior.envs.goal import GoalEnv
from interprior.errors import InterpriorError
from interprior.mdp import terminations as term_terms
from interprior.mdp.goal_masks import MaskSampling, sample_bits, sample_goal_types
from interprior.mdp.goals import GoalLayout, build_goal, reference_frames
from interprior.mdp.inbetween import (
    SuccessTolerances,
    is_standing,
    success_reward,
    upright_reward,
)
from interprior.mdp.terminations import TerminationConfig
from interprior.models.prior import GET_UP

START_KINDS = ("dataset", "impulse", "fallen")


@dataclass
class StartDistribution:
    dataset_prob: float = 0.6  # a clip frame with root / joint noise
    impulse_prob: float = 0.2  # ... then a random horizontal push on the root
    fallen_prob: float = 0.2  # a fallen state made in physics (the pool below)
    holding_share: float = 0.3  # of the dataset starts: at a frame where the reference holds the object
    root_noise: float = 0.05  # m, horizontal root position noise of dataset starts
    joint_noise: float = 0.1  # rad, root tilt and joint angle noise of dataset starts
    impulse_speed: tuple[float, float] = (1.0, 2.5)  # m/s, uniform
    fall_seconds: float = 2.5  # how long pushed humanoids fall before their states join the pool
    fallen_push_speed: tuple[float, float] = (2.0, 4.0)  # m/s

    def __post_init__(self):
        require(self, positive=("fall_seconds", "fallen_push_speed"),
                non_negative=("root_noise", "joint_noise", "impulse_speed"),
                fraction=("dataset_prob", "impulse_prob", "fallen_prob", "holding_share"))

    def probs(self) -> Tensor:
        p = torch.tensor([self.dataset_prob, self.impulse_prob, self.fallen_prob], dtype=torch.float64)
        if abs(float(p.sum()) - 1.0) > 1e-6:
            raise InterpriorError(f"starts: dataset_prob, impulse_prob and fallen_prob must sum to 1, got "
                                  f"{p.tolist()} (sum {float(p.sum()):.3f})")
        return p


@dataclass
class GoalTypes:
    """Probabilities of the episode goal types (sum 1); body selection etc. come from the prior's `MaskSampling`."""

    snapshot: float = 0.3
    object: float = 0.3
    hand: float = 0.15
    contact: float = 0.1
    composed: float = 0.15

    def __post_init__(self):
        require(self, fraction=("snapshot", "object", "hand", "contact", "composed"))

    def sampling(self, base: MaskSampling, horizon_frames: tuple[int, int]) -> MaskSampling:
        """`base` restricted to these types, snapshot goals only (no paths), L frames ahead."""
        total = self.snapshot + self.object + self.hand + self.contact + self.composed
        if abs(total - 1.0) > 1e-6:
            raise InterpriorError(f"goal_types must sum to 1, got {total:.3f}")
        return replace(base, full_prob=0.0, trajectory_prob=0.0, snapshot_prob=self.snapshot,
                       object_goal_prob=self.object, hand_goal_prob=self.hand, contact_prob=self.contact,
                       composed_prob=self.composed, object_path_prob=0.0, hand_path_prob=0.0,
                       snapshot_frames=tuple(int(x) for x in horizon_frames))


@dataclass
class EpisodeEnds:
    done: Tensor  # [N] bool, the episode ended this step (terminal: no bootstrap)
    reasons: dict[str, Tensor]  # goal_time, fall, env -> [N] bool


def holding_frames(env) -> Tensor:
    """[F] flat reference frame indices (`env.ref.flat`) where the object is held: the object is in contact and a
    hand body is labelled in contact; frames at least 30 before their clip's end, so a goal lies ahead."""
    ref, groups = env.ref, env.groups
    hands = list(groups.left_hand + groups.right_hand)
    held = (ref.tracks["obj_contact"] > 0.5) & (ref.tracks["contact"][:, hands] > 0.5).any(-1)
    clip = torch.repeat_interleave(torch.arange(ref.num_clips), ref.lengths)
    frame = torch.arange(len(clip)) - ref.starts[clip]
    return (held & (frame < ref.lengths[clip] - 30)).nonzero().flatten()


def _rows(state: ResetState, idx: Tensor) -> ResetState:
    return ResetState(*[getattr(state, f.name)[idx] for f in fields(ResetState)])


class InbetweenEpisodes:
    """The start distribution and the per-episode goal of the RL rows `rows` of a `GoalEnv` (the other rows, the
    concurrent-distillation share, keep the goal env's own Stage II schedule)."""

    def __init__(self, goal_env: GoalEnv, rows: Tensor, starts: StartDistribution, sampling: MaskSampling,
                 tolerances: SuccessTolerances, margin: int, generator: torch.Generator, getup_reward: float = 0.0):
        self.goal_env, self.env = goal_env, goal_env.env
        self.layout: GoalLayout = goal_env.layout
        self.rows = rows
        self.is_rl = torch.zeros(goal_env.num_envs, dtype=torch.bool)
        self.is_rl[rows] = True
        self.starts, self.sampling, self.tol, self.margin = starts, sampling, tolerances, int(margin)
        self.probs = starts.probs()
        self.generator = generator
        n = goal_env.num_envs
        self.kind = torch.zeros(n, dtype=torch.long)  # index into START_KINDS
        self.goal_clip = torch.zeros(n, dtype=torch.long)
        self.goal_frame = torch.zeros(n, dtype=torch.long)
        self.goal_bits = torch.zeros(n, self.layout.bit_size, dtype=torch.bool)
        self.subtask = torch.zeros(n, dtype=torch.long)  # the prior's subtask token id per row (GET_UP or 0)
        self.getup_reward = float(getup_reward)
        self.pool: tuple[ResetState, Tensor, Tensor] | None = None
        self.held_frames = holding_frames(self.env)  # flat frame indices where the reference holds the object
        self.holding = torch.zeros(n, dtype=torch.bool)  # rows whose episode started holding the object

    # --- starts ----------------------------------------------------------------------------------------------
    def make_pool(self) -> int:
        """Fallen states for fallen starts, made in physics from every env (resets every env). -> pool size."""
        if self.starts.fallen_prob <= 0:
            return 0
        s = self.starts
        made = make_fallen_starts(self.env, seconds=s.fall_seconds, push_speed=s.fallen_push_speed,
                                  generator=self.generator)
        self.pool = (made.states, made.clip_ids, made.frames) if len(made.clip_ids) else None
        return len(made.clip_ids)

    def begin(self, ids: Tensor) -> None:
        """New episodes for RL rows `ids` (CPU long): a start of a drawn kind, then a goal L frames ahead."""
        if len(ids) == 0:
            return
        g, env = self.generator, self.env
        kind = torch.multinomial(self.probs, len(ids), replacement=True, generator=g)
        if self.pool is None:
            kind[kind == 2] = 1  # no fallen state could be made: a pushed start instead
        env.reset(ids)
        self._hold(ids[kind == 0])
        self._impulse(ids[kind == 1])
        fallen = ids[kind == 2]
        if len(fallen):
            states, clips, frames = self.pool
            pick = torch.randint(len(clips), (len(fallen),), generator=g)
            env.reset_to_state(fallen, clips[pick], frames[pick], _rows(states, pick))
        self.kind[ids] = kind
        self.subtask[ids] = torch.where(kind == 2, GET_UP, 0)
        self.goal_env.start(reset=False, goal_rows=ids)  # fresh episode bookkeeping, the state read afresh
        self._new_goals(ids)

    def _hold(self, ids: Tensor) -> None:
        """Put a `holding_share` of dataset-start rows `ids` at frames where the reference holds the object."""
        self.holding[ids] = False
        if len(ids) == 0 or len(self.held_frames) == 0:
            return
        g = self.generator
        ids = ids[torch.rand(len(ids), generator=g) < self.starts.holding_share]
        if len(ids) == 0:
            return
        flat = self.held_frames[torch.randint(len(self.held_frames), (len(ids),), generator=g)]
        ref = self.env.ref
        clips = torch.searchsorted(ref.starts, flat, right=True) - 1
        self.env.reset_to(ids, clips, flat - ref.starts[clips], noise=True)
        self.holding[ids] = True

    def _impulse(self, ids: Tensor) -> None:
        if len(ids) == 0:
            return
        g, backend, dev_ids = self.generator, self.env.sim.backend, ids.to(self.env.device)
        qpos, qvel = backend.qpos()[dev_ids].clone(), backend.qvel()[dev_ids].clone()
        lo, hi = self.starts.impulse_speed
        angle = 2 * torch.pi * torch.rand(len(ids), generator=g)
        speed = lo + (hi - lo) * torch.rand(len(ids), generator=g)
        qvel[:, 0:3] += (torch.stack([angle.cos(), angle.sin(), torch.zeros_like(angle)], -1) * speed[:, None]).to(qvel)
        backend.reset(dev_ids, qpos, qvel)
        self.env.prev = None

    def _new_goals(self, ids: Tensor) -> None:
        env = self.env
        clips, frames = env.clip_ids[ids].clone(), env.frame[ids].clone()
        lo, hi = self.sampling.snapshot_frames
        ahead = torch.randint(int(lo), int(hi) + 1, (len(ids),), generator=self.generator)
        target = torch.minimum(frames + ahead, env.ref.lengths[clips] - 1)
        types = sample_goal_types(len(ids), self.sampling, self.generator)
        bits = sample_bits(types, self.layout, self.sampling, self.generator)[:, -1]
        self.goal_clip[ids], self.goal_frame[ids], self.goal_bits[ids] = clips, target, bits
        ref = env.ref.state(clips, target, env.device)
        self.goal_env._store_caller(ids, ref, bits, 1)  # the goal env's caller-goal slot, due below
        self.goal_env.caller_deadline[ids] = self.goal_env.clock[ids] + (target - frames).clamp_min(1)

    # --- per step --------------------------------------------------------------------------------------------
    def reward(self, state) -> Tensor:
        """[N] success reward of `state` (a step's state, before resets) against each RL row's episode goal
        (0 on the other rows). The step's full reward adds `getup_bonus`."""
        ref = reference_frames(self.env.ref, self.goal_clip, self.goal_frame[:, None], self.env.device)
        bits = self.goal_bits[:, None].to(self.env.device)
        goal = build_goal(state, ref, bits, torch.zeros(bits.shape[:2]), self.layout)
        r = success_reward(goal.full[:, 0], goal.bits[:, 0], self.layout, self.tol)
        return r * self.is_rl.to(r.device)

    def getup_bonus(self, state) -> Tensor:
        """[N] `getup_reward · upright_reward` of `state` on the RL rows getting up (token `GET_UP`), 0 elsewhere
        (on the env's device)."""
        getting_up = (self.subtask == GET_UP) & self.is_rl
        if self.getup_reward <= 0 or not bool(getting_up.any()):
            return torch.zeros(len(getting_up), device=self.env.device)
        upright = upright_reward(*self.posture(state))
        return (self.getup_reward * upright * getting_up.to(upright.dtype)).float().to(self.env.device)

    def posture(self, state) -> tuple[Tensor, Tensor]:
        """(pelvis height [N], torso rotation [N, 4]) of `state`, on the CPU."""
        torso = self.env.groups.torso[0]
        return state.root_pos[:, 2].cpu(), state.body_rot[:, torso].cpu()

    def update_subtask(self, state) -> Tensor:
        """Clear the get-up token of rows that stand in `state` (after the step's reward). -> [N] bool, the rows
        that stood up this step."""
        stood = (self.subtask == GET_UP) & is_standing(*self.posture(state))
        self.subtask[stood] = 0
        return stood

    def ends(self, state, reference, env_done: Tensor, drift: TerminationConfig) -> EpisodeEnds:
        """Which rows end after this step (`state`, `reference`: the step's, before resets; `env_done` [N] bool:
        the tracking env ended and reset them). RL rows: `margin` frames past the goal time, a fall (not a fallen
        start), or the env. Distillation rows: a fall, or their body too far from the reference they track
        (`drift`: the prior's termination thresholds), or the env."""
        genv, rl = self.goal_env, self.is_rl
        goal_time = genv.clock >= genv.caller_deadline + self.margin
        fall = (state.root_pos[:, 2] < self.env.body.fall_height).cpu() & (self.kind != 2)
        far = term_terms.body_too_far(state, reference, self.env.groups, drift).cpu()
        reasons = {"goal_time": goal_time & rl, "fall": fall & ~env_done, "drift": far & ~rl & ~fall & ~env_done,
                   "env": env_done}
        done = reasons["goal_time"] | reasons["fall"] | reasons["drift"] | reasons["env"]
        return EpisodeEnds(done=done, reasons=reasons)

    def restart(self, ends: EpisodeEnds) -> Tensor:
        """Begin new episodes where `ends` says: RL rows by the start distribution, distillation rows (that the
        env did not already reset) at a fresh dataset start with the Stage II schedule. -> the ids restarted."""
        rl = (ends.done & self.is_rl).nonzero().flatten()
        distill = (ends.done & ~self.is_rl & ~ends.reasons["env"]).nonzero().flatten()
        if len(distill):
            self.env.reset(distill)
            self.goal_env.start(reset=False, goal_rows=distill)
        self.begin(rl)
        return torch.cat([rl, distill])
