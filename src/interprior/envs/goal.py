"""The goal environment: one loop of (self observation, masked goal) → action → physics for every goal-driven use —
Stage II distillation, goal evaluation, a prior tracking a full reference, and (next) RL finetuning and steering.

It composes a `TrackingEnv` (physics, clips, resets, terminations) with a `GoalSchedule` (which goal components are
given, when the snapshot is). Goals come from clips (the schedule's tokens at reference frames) **or from the
caller** (`set_caller_goal`: an object pose, body positions or contacts to reach some seconds from now, no clip
frame needed), which envs can mix row by row. With `open_ended=True` (steering) the clip only gives the start
state: its reference frame stays at the episode's start, so an episode lasts as long as the caller keeps stepping.

    env = GoalEnv(TrackingEnv(clips, objects, cfg), layout, masks)
    obs = env.start()                       # GoalObservation: self observation, goal, state
    while ...:
        step = env.step(policy.act(obs.state_obs, obs.goal))
        obs = step.observation              # after any auto-reset; step.state is this step's own state
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import torch
from torch import Tensor

from interprior.envs.tracking import TrackingEnv
from interprior.errors import InterpriorError
from interprior.mdp.goal_masks import GoalSchedule, MaskSampling
from interprior.mdp.goals import Goal, GoalLayout, build_goal, reference_frames
from interprior.mdp.self_observation import self_observation
from interprior.mdp.types import RefState
from interprior.sim.batched import SimState


@dataclass
class GoalObservation:
    """What a goal policy sees: the self observation [N, S] and the goal, both computed from `state`."""

    state_obs: Tensor
    goal: Goal
    state: SimState


@dataclass
class GoalStep:
    """One control step of every env.

    observation   the next observation (rows of envs that ended show their fresh episode when auto-reset is on)
    state         this step's simulated state, before any auto-reset replaced rows
    reference     the clip reference at `frame` (the frame `state` should match), [N, ...] fields
    frame         [N] that reference frame (before any reset)
    terminated    [N] bool, a termination rule fired; `truncated` [N] bool, the episode length ran out
    done_ids      envs whose episode ended this step (CPU, possibly empty); `episode_length` [len(done_ids)]
    reasons       rule name → [N] bool
    tracking_obs  [N, O] the teacher's full tracking observation (what an expert labels from)
    diverged      [N] bool, the simulation diverged this step (those envs end as `non_finite`; running count:
                  `env.diverged_total`)
    truncated_observation  where rows following a caller goal were truncated (`truncated` and in `done_ids`):
                  every row's observation of `state` with the goals before the reset, so a critic can bootstrap
                  those rows from their own last state and goal (only those rows are meaningful); else None
    """

    observation: GoalObservation
    state: SimState
    reference: RefState
    frame: Tensor
    terminated: Tensor
    truncated: Tensor
    done_ids: Tensor
    episode_length: Tensor
    reasons: dict[str, Tensor]
    tracking_obs: Tensor
    diverged: Tensor | None = None
    truncated_observation: GoalObservation | None = None


@dataclass
class CallerGoal:
    """A goal from the caller, in the world frame, to be reached `seconds` from now. Bodies are named (resolved
    by the env) and must be among the layout's goal bodies / contact bodies; anything not given stays hidden."""

    seconds: float = 2.0
    object_position: Tensor | None = None  # [n, 3]
    object_rotation: Tensor | None = None  # [n, 4] wxyz
    body_positions: dict[str, Tensor] = field(default_factory=dict)  # body name → [n, 3]
    body_rotations: dict[str, Tensor] = field(default_factory=dict)  # body name → [n, 4] wxyz
    contacts: dict[str, bool] = field(default_factory=dict)  # contact body name → touching the object


class GoalEnv:
    def __init__(self, env: TrackingEnv, layout: GoalLayout, masks: MaskSampling,
                 generator: torch.Generator | None = None, fixed_bits: Tensor | None = None,
                 open_ended: bool = False):
        """`open_ended`: every step first puts the tracking env's reference frame back at its episode's start
        (`env.start`), so the clip's end never times an episode out (give the env an `episode_length` of at least
        3 and clips of at least 3 frames from the start); for caller goals only (steering)."""
        self.env, self.layout, self.open_ended = env, layout, open_ended
        self.num_envs, self.device = env.num_envs, env.device
        self.schedule = GoalSchedule(env.num_envs, layout, masks, fps=1.0 / env.dt, generator=generator,
                                     fixed_bits=fixed_bits)
        n, k = env.num_envs, layout.num_tokens
        self.caller = torch.zeros(n, dtype=torch.bool)  # rows driven by a caller goal
        self.caller_bits = torch.zeros(n, k, layout.bit_size, dtype=torch.bool)
        self.clock = torch.zeros(n, dtype=torch.long)  # control steps since each env's episode began
        self.caller_deadline = torch.zeros(n, dtype=torch.long)  # `clock` value at which the caller goal is due
        self.caller_target: RefState | None = None  # [N, ...] snapshot targets (rows of `caller` only are used)
        self._state: SimState | None = None

    # --- episodes -------------------------------------------------------------------------------------------
    def last_frames(self, ids: Tensor | None = None) -> Tensor:
        clip_ids = self.env.clip_ids if ids is None else self.env.clip_ids[ids]
        return self.env.ref.lengths[clip_ids] - 1

    def start(self, reset: bool = True, goal_rows: Tensor | None = None) -> GoalObservation:
        """Begin: reset every env (`reset=False`: keep the states the caller set with `env.reset_to`) and draw
        fresh goals for `goal_rows` (default: every env; evaluation draws a few and shares them). -> the first
        observation."""
        if reset:
            self.env.reset()
        self.new_episodes(torch.arange(self.num_envs) if goal_rows is None else goal_rows)
        self._state = self.env.sim.state()
        return self.observe()

    def new_episodes(self, ids: Tensor) -> None:
        """Fresh clip goals for envs `ids` (their caller goals end)."""
        self.schedule.reset(ids, self.env.frame[ids], self.last_frames(ids))
        self.caller[ids] = False
        self.clock[ids] = 0

    def observe(self, state: SimState | None = None) -> GoalObservation:
        """The self observation and the goal of every env now (advances the schedule's reached snapshots)."""
        env = self.env
        state = state if state is not None else (self._state if self._state is not None else env.sim.state())
        self.schedule.advance(env.frame, self.last_frames())
        return self._observation(state)

    def _observation(self, state: SimState) -> GoalObservation:
        """The self observation of `state` and the goals as they stand (the schedule is not advanced)."""
        env = self.env
        last = self.last_frames()
        targets = self.schedule.target_frames(env.frame, last)
        ref = reference_frames(env.ref, env.clip_ids, targets, env.device)
        bits, time = self.schedule.bits.to(env.device), self.schedule.times(env.frame, targets)
        if bool(self.caller.any()):
            ref, bits, time = self._with_caller_goals(ref, bits, time)
        goal = build_goal(state, ref, bits, time, self.layout)
        return GoalObservation(self_observation(state, env.groups), goal, state)

    def step(self, action: Tensor) -> GoalStep:
        env = self.env
        if self.open_ended:  # the clip gave only the start state: its reference stays there
            env.frame.copy_(env.start)
        frame = env.frame + 1  # the reference frame the state after this step should match
        clip_ids = env.clip_ids.clone()  # an auto-reset may move an env to another clip
        result = env.step(action)
        state = result.state
        reference = env.ref.state(clip_ids, frame, env.device)
        done_ids = result.done_ids
        self.clock += 1
        truncated_observation = None
        if len(done_ids):
            cut = result.timeout.cpu()[done_ids] & self.caller[done_ids]
            if bool(cut.any()):  # before the reset ends their caller goals
                truncated_observation = self._observation(state)
            self.new_episodes(done_ids)
        self._state = env.prev
        return GoalStep(observation=self.observe(env.prev), state=state, reference=reference, frame=frame,
                        terminated=result.terminated, truncated=result.timeout, done_ids=done_ids,
                        episode_length=result.episode_length, reasons=result.reasons,
                        tracking_obs=result.obs, diverged=result.diverged,
                        truncated_observation=truncated_observation)

    # --- goals from the caller ------------------------------------------------------------------------------
    def set_caller_goal(self, env_ids: Tensor, goal: CallerGoal) -> None:
        """Envs `env_ids` follow `goal` (as their snapshot token; previews hidden) until it is replaced, cleared
        (`clear_caller_goal`) or their episode ends. Raises `InterpriorError` naming what is wrong."""
        ids = torch.as_tensor(env_ids, dtype=torch.long).cpu().reshape(-1)
        if len(ids) == 0:
            return
        if not (goal.seconds > 0 and goal.seconds == goal.seconds):
            raise InterpriorError(f"caller goal: seconds must be > 0, got {goal.seconds}")
        state = self._state if self._state is not None else self.env.sim.state()
        target = self._target_from_state(state, ids)
        bits = torch.zeros(len(ids), self.layout.bit_size, dtype=torch.bool)
        sl = self.layout.bit_slices
        if goal.object_position is not None:
            target.obj_pos = _rows(goal.object_position, len(ids), 3, "object_position").to(target.obj_pos)
            bits[:, sl["obj_pos"]] = True
        if goal.object_rotation is not None:
            rot = _rows(goal.object_rotation, len(ids), 4, "object_rotation").to(target.obj_rot)
            target.obj_rot = rot / rot.norm(dim=-1, keepdim=True)
            bits[:, sl["obj_rot"]] = True
        for name, value in goal.body_positions.items():
            body, slot = self._goal_body(name, self.layout.bodies, "goal bodies")
            target.body_pos[:, body] = _rows(value, len(ids), 3, f"body_positions[{name!r}]").to(target.body_pos)
            bits[:, sl["body_pos"].start + slot] = True
        for name, value in goal.body_rotations.items():
            body, slot = self._goal_body(name, self.layout.bodies, "goal bodies")
            rot = _rows(value, len(ids), 4, f"body_rotations[{name!r}]").to(target.body_rot)
            target.body_rot[:, body] = rot / rot.norm(dim=-1, keepdim=True)
            bits[:, sl["body_rot"].start + slot] = True
        for name, touching in goal.contacts.items():
            body, slot = self._goal_body(name, self.layout.contact_bodies, "contact bodies")
            target.contact[:, body] = 1.0 if touching else -1.0
            bits[:, sl["contact"].start + slot] = True
        self._store_caller(ids, target, bits, round(goal.seconds / self.env.dt))

    def clear_caller_goal(self, env_ids: Tensor) -> None:
        self.caller[torch.as_tensor(env_ids, dtype=torch.long).cpu()] = False

    def caller_time_left(self) -> Tensor:
        """[N] seconds until each env's caller goal is due (0 once due, and for envs without one)."""
        left = (self.caller_deadline - self.clock).clamp_min(0).float() * self.env.dt
        return torch.where(self.caller, left, torch.zeros_like(left))

    def _goal_body(self, name: str, group: tuple[int, ...], what: str) -> tuple[int, int]:
        body = self.env.body
        index = body.body_index.get(name)
        if index is None or index not in group:
            names = ", ".join(body.body_names[i] for i in group)
            raise InterpriorError(f"caller goal: {name!r} is not one of the {what}: {names}")
        return index, group.index(index)

    def _target_from_state(self, state: SimState, ids: Tensor) -> RefState:
        """A target equal to the current state of envs `ids` (so hidden parts are zero residuals), contacts
        unknown."""
        rows = ids.to(state.root_pos.device)
        n, nb = len(ids), state.body_pos.shape[1]
        zeros = lambda *s: torch.zeros(n, *s, dtype=state.root_pos.dtype, device=state.root_pos.device)  # noqa: E731
        return RefState(root_pos=state.root_pos[rows].clone(), root_rot=state.root_rot[rows].clone(),
                        body_pos=state.body_pos[rows].clone(), body_rot=state.body_rot[rows].clone(),
                        body_linvel=zeros(nb, 3), body_angvel=zeros(nb, 3), dof_pos=state.dof_pos[rows].clone(),
                        obj_pos=state.obj_pos[rows, 0].clone(), obj_rot=state.obj_rot[rows, 0].clone(),
                        obj_linvel=zeros(3), obj_angvel=zeros(3), contact=zeros(nb), obj_contact=zeros(),
                        nearest_object_vec=zeros(nb, 3))

    def _store_caller(self, ids: Tensor, target: RefState, bits: Tensor, frames_ahead: int) -> None:
        if self.caller_target is None:
            self.caller_target = RefState(**{
                f.name: torch.zeros((self.num_envs,) + getattr(target, f.name).shape[1:],
                                    dtype=getattr(target, f.name).dtype, device=getattr(target, f.name).device)
                for f in fields(target)})
        for f in fields(target):
            getattr(self.caller_target, f.name)[ids.to(getattr(target, f.name).device)] = getattr(target, f.name)
        self.caller_bits[ids] = False
        self.caller_bits[ids, -1] = bits
        self.caller_deadline[ids] = self.clock[ids] + max(1, frames_ahead)
        self.caller[ids] = True

    def _with_caller_goals(self, ref: RefState, bits: Tensor, time: Tensor) -> tuple[RefState, Tensor, Tensor]:
        """Caller rows: the caller's target in the snapshot token, its bits, the seconds left (never below one
        control step: a due goal stays a goal to hold)."""
        rows = self.caller.nonzero().flatten()
        dev_rows = rows.to(bits.device)
        parts = {}
        for f in fields(ref):
            if f.name == "dof_pos":  # goals read no joint angles (and the file's 153 differ from a variant's)
                continue
            value = getattr(ref, f.name).clone()
            value[dev_rows, -1] = getattr(self.caller_target, f.name)[dev_rows].to(value)
            parts[f.name] = value
        bits = bits.clone()
        bits[dev_rows] = self.caller_bits[rows].to(bits.device)
        time = time.clone()
        left = (self.caller_deadline[rows] - self.clock[rows]).clamp_min(1).float() * self.env.dt
        time[rows, -1] = left.to(time)
        return replace(ref, **parts), bits, time


def _rows(value, n: int, width: int, what: str) -> Tensor:
    """`value` as [n, width]: one row broadcast to every env, or one per env; finite."""
    t = torch.as_tensor(value, dtype=torch.float64)
    if t.dim() == 1:
        t = t[None].expand(n, -1)
    if t.shape != (n, width):
        raise InterpriorError(f"caller goal: {what} must be [{width}] or [{n}, {width}], got {list(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise InterpriorError(f"caller goal: {what} is not finite")
    return t
