"""Steering a Stage II prior by hand or by script: one simulated humanoid and its object, goals set in the world
frame, physics and the prior stepped at the control rate (30 Hz), the state read back in plain Python values.

    steer = Steering("runs/prior", object_names=["box"])
    steer.set_goal(object_position=[1.0, 0.5, 0.6], seconds=2.0)
    state = steer.step(60)                  # two seconds
    print(state.object, state.goal_error, state.fallen)

The run's data selection gives the start: the humanoid standing at the first frame of a clip of the object (the
first such clip in name order); goals come only from the caller (`GoalEnv.set_caller_goal`), never from the clip.
Physics is deterministic (no noise, perturbations or randomization; the prior's mean latent ε = 0 unless
`sample`), so the same calls give the same states. Tracking terminations are off and a fall ends nothing: it is
reported (`fallen`, `falls`) and `reset()` recovers. A diverged simulation restarts the episode (goal cleared) and
is reported as `diverged`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from interprior.envs.goal import CallerGoal, GoalEnv
from interprior.envs.tracking import TrackingEnv
from interprior.errors import InterpriorError
from interprior.models.prior import SUBTASKS, GoalPolicy
from interprior.rotations import axis_angle_to_quat, quat_apply, quat_mul
from interprior.steer.goals import GoalNames, SteerGoal, make_goal
from interprior.steer.recording import Recording
from interprior.train.distill import student_env_config
from interprior.train.runs import Run, load_run

MAX_STEPS_PER_CALL = 30 * 3600  # one hour of control steps


@dataclass(frozen=True)
class SteerState:
    """The simulation now, in the world frame (m, rad, s). `goal_error`: the largest distance of a given position
    target (object, hands) from where it is now, None without one."""

    time: float  # s since the start or the last reset
    steps: int  # control steps since then
    object_name: str
    pelvis: tuple[float, float, float]
    pelvis_heading: float  # rad: where the pelvis faces (its x axis) about the world z axis
    left_hand: tuple[float, float, float]
    right_hand: tuple[float, float, float]
    object: tuple[float, float, float]
    object_yaw: float
    contacts: tuple[str, ...]  # bodies touching the object
    fallen: bool  # pelvis below the fall height now
    diverged: bool  # the simulation diverged during the last `step` call (the episode restarted)
    goal: SteerGoal | None
    goal_seconds_left: float
    goal_error: float | None
    object_error: float | None

    def to_dict(self) -> dict:
        return asdict(self)


class Steering:
    def __init__(self, prior_run: Run | str | Path, objects_dir: str | Path | None = None,
                 object_names: list[str] | tuple[str, ...] | None = None, seed: int = 0, sample: bool = False,
                 record: bool = False, runtime: str = "torch"):
        """`prior_run`: a loaded prior `Run` or its path; `objects_dir`: the objects folder (default: the run's);
        `object_names`: objects to start at (default: the run's first clip's object), the first is active;
        `sample`: one latent ε drawn per episode from `seed` instead of the prior's mean; `record`: keep every
        frame (`record()`, for clips and videos); `runtime`: "onnx" runs the prior + decoder in onnxruntime
        (`pip install -e ".[onnx]"`), several times faster than PyTorch at batch 1."""
        run = prior_run if isinstance(prior_run, Run) else load_run(prior_run, kind="prior")
        if run.kind != "prior":
            raise InterpriorError(f"steering needs a Stage II prior run, got {'an' if run.kind == 'expert' else 'a'} "
                                  f"{run.kind}")
        cfg = run.config
        clips, self.start_clips, objects = _start_clips(cfg.data, objects_dir, object_names)
        env_cfg = replace(student_env_config(cfg), num_envs=1, init="start", psi_slots=1, init_noise_pos=0.0,
                          init_noise_rot=0.0, perturb_prob=0.0, randomize_dynamics=False, episode_length=1000,
                          termination=replace(cfg.env.termination, enabled=False, fall_height=0.0),
                          backend="cpu", device=None, threads=1, seed=seed, compute_tracking_obs=False)
        self.env = TrackingEnv(clips, objects, env_cfg)
        self.layout = layout = cfg.goals
        no_clip_goal = torch.zeros(layout.num_tokens, layout.bit_size, dtype=torch.bool)
        self.goal_env = GoalEnv(self.env, layout, cfg.masks, generator=torch.Generator().manual_seed(seed),
                                fixed_bits=no_clip_goal, open_ended=True)
        self.policy = GoalPolicy(run.model, 1, deterministic=not sample, seed=seed, runtime=runtime)
        self.dt = self.env.dt
        names = self.env.body.body_names
        self.hand_names = tuple(names[i] for i in layout.hands)  # (left, right)
        self.pelvis_name = names[0]
        self.names = GoalNames(contacts=tuple(names[i] for i in layout.contact_bodies),
                               objects=tuple(self.start_clips), heading=0 in layout.bodies)
        self.subject = clips[0].subject or "sub0"
        self.object_name = next(iter(self.start_clips))
        self._recording = Recording(1.0 / self.dt, self.subject, self.env.body) if record else None
        self.falls = self.divergences = 0
        self.subtask: str | None = None  # the prior's subtask token (`set_subtask`)
        self._subtask_ids: torch.Tensor | None = None
        self.reset()

    # --- episodes -----------------------------------------------------------------------------------------------
    def reset(self, object_name: str | None = None) -> SteerState:
        """Back to the start (of a clip of `object_name`, one of `names.objects`; default: the active object's),
        goal cleared, a fresh ε when sampling."""
        name = self.object_name if object_name is None else object_name
        if name not in self.start_clips:
            raise InterpriorError(f"unknown object {name!r}; this scene has {', '.join(self.start_clips)}")
        self.object_name = name
        zero = torch.zeros(1, dtype=torch.long)
        self.env.reset_to(zero, torch.tensor([self.start_clips[name]]), zero, noise=False)
        self.obs = self.goal_env.start(reset=False)
        self.policy.reset()
        self.goal: SteerGoal | None = None
        self.steps, self.fallen, self._diverged = 0, False, False
        if self._recording is not None:
            self._recording.begin(name)
            self._record()
        return self.state()

    # --- goals --------------------------------------------------------------------------------------------------
    def set_goal(self, object_position=None, object_yaw=None, left_hand=None, right_hand=None, contacts=None,
                 seconds: float = 2.0, pelvis_heading=None) -> SteerGoal:
        """Reach these world-frame targets `seconds` from now (replaces the goal): the object's position [x, y, z]
        and yaw (rad), the left / right wrist positions, contacts {body name: touching}, the pelvis heading (rad;
        where `names.heading`). Validated (`interprior.steer.goals`); an `InterpriorError` names what is wrong and
        leaves the goal as it was."""
        goal = make_goal(self.names, object_position=object_position, object_yaw=object_yaw, left_hand=left_hand,
                         right_hand=right_hand, contacts=contacts, seconds=seconds, pelvis_heading=pelvis_heading)
        self.apply_goal(goal)
        return goal

    def apply_goal(self, goal: SteerGoal) -> None:
        """Follow an already validated goal (a goal script's line). A pelvis heading becomes the pelvis rotation
        of now, turned about z to face it."""
        dtype = torch.float64
        bodies = {hand: torch.tensor(p, dtype=dtype) for hand, p in zip(self.hand_names, (goal.left_hand,
                                                                                          goal.right_hand)) if p}
        rotations = {}
        if goal.pelvis_heading is not None:
            root = self.obs.state.root_rot[0].detach().double().cpu()
            turn = axis_angle_to_quat(torch.tensor([0.0, 0.0, goal.pelvis_heading - _heading(root)], dtype=dtype))
            rotations[self.pelvis_name] = quat_mul(turn, root)
        rotation = None
        if goal.object_yaw is not None:
            rotation = axis_angle_to_quat(torch.tensor([0.0, 0.0, goal.object_yaw], dtype=dtype))
        position = None if goal.object_position is None else torch.tensor(goal.object_position, dtype=dtype)
        self.goal_env.set_caller_goal(torch.zeros(1, dtype=torch.long), CallerGoal(
            seconds=goal.seconds, object_position=position, object_rotation=rotation, body_positions=bodies,
            body_rotations=rotations, contacts=dict(goal.contacts)))
        self.goal = goal
        self.obs = self.goal_env.observe(self.obs.state)

    def set_subtask(self, name: str | None) -> None:
        """The prior's subtask token from now on: "get_up" (stand up, then go on to the goal) or None (no token,
        the plain prior). It stays until set again (resets keep it)."""
        if name is not None and (name not in SUBTASKS or name == "none"):
            raise InterpriorError(f"unknown subtask {name!r}; use one of {', '.join(SUBTASKS[1:])} or None")
        self.subtask = name
        ids = None if name is None else torch.tensor([SUBTASKS.index(name)])
        self._subtask_ids = ids

    def clear_goal(self) -> None:
        """No goal from now on: the prior continues with the zero goal (nothing given)."""
        self.goal_env.clear_caller_goal(torch.zeros(1, dtype=torch.long))
        self.goal = None
        self.obs = self.goal_env.observe(self.obs.state)

    # --- stepping -----------------------------------------------------------------------------------------------
    def step(self, n: int = 1) -> SteerState:
        """`n` control steps of physics and the prior (1/30 s each). -> the state after them."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_STEPS_PER_CALL:
            raise InterpriorError(f"step: n must be an integer within [1, {MAX_STEPS_PER_CALL}], got {n!r}")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one env: many small kernels, which extra threads only slow down
        try:
            self._diverged = self._run(n)
        finally:
            torch.set_num_threads(threads)
        return self.state()

    def _run(self, n: int) -> bool:
        """`n` control steps. -> whether the simulation diverged on the way."""
        diverged = False
        for _ in range(n):
            action = self.policy.act(self.obs.state_obs, self.obs.goal, self._subtask_ids)
            step = self.goal_env.step(action)
            if len(step.done_ids):  # only a diverged simulation ends an open-ended episode
                diverged = True
                self.divergences += 1
                self.reset()
                continue
            self.obs = step.observation
            self.steps += 1
            fallen = bool(self.obs.state.root_pos[0, 2] < self.env.body.fall_height)
            self.falls += int(fallen and not self.fallen)
            self.fallen = fallen
            if self._recording is not None:
                self._record()
        return diverged

    @property
    def time(self) -> float:
        return self.steps * self.dt

    # --- reading ------------------------------------------------------------------------------------------------
    def state(self) -> SteerState:
        s = self.obs.state
        left, right = (s.body_pos[0, self.env.body.body_index[h]] for h in self.hand_names)
        obj_pos, obj_rot = s.obj_pos[0, 0], s.obj_rot[0, 0]
        forward = quat_apply(obj_rot, torch.tensor([1.0, 0.0, 0.0], dtype=obj_rot.dtype, device=obj_rot.device))
        touching = s.object_contact[0].nonzero().flatten().tolist()
        object_error, goal_error = self._errors()
        return SteerState(
            time=self.time, steps=self.steps, object_name=self.object_name, pelvis=_triple(s.root_pos[0]),
            pelvis_heading=_heading(s.root_rot[0]),
            left_hand=_triple(left), right_hand=_triple(right), object=_triple(obj_pos),
            object_yaw=math.atan2(float(forward[1]), float(forward[0])),
            contacts=tuple(self.env.body.body_names[i] for i in touching), fallen=self.fallen,
            diverged=self._diverged, goal=self.goal,
            goal_seconds_left=float(self.goal_env.caller_time_left()[0]), goal_error=goal_error,
            object_error=object_error)

    def record(self) -> Recording | None:
        """The recording (every frame since the start or `start_recording`; None unless made with `record=True`
        or recording)."""
        return self._recording

    def start_recording(self) -> None:
        """Keep every frame from now on, in a new recording (its first episode starts at the current frame)."""
        self._recording = Recording(1.0 / self.dt, self.subject, self.env.body)
        self._recording.begin(self.object_name)
        self._record()

    def stop_recording(self) -> Recording | None:
        """Stop keeping frames. -> the recording (None when none was running)."""
        recording, self._recording = self._recording, None
        return recording

    def qpos(self) -> np.ndarray:
        """[nq] the MuJoCo qpos of the scene now (a copy; for drawing it)."""
        return self.env.sim.backend.qpos()[0].detach().double().cpu().numpy().copy()

    @property
    def model(self):
        """The MuJoCo model of the scene (for rendering a recording)."""
        return self.env.scene.model

    def _targets(self) -> torch.Tensor:
        """[3, 3] the goal's object, left and right hand targets (NaN rows where not given)."""
        out = torch.full((3, 3), float("nan"), dtype=torch.float64)
        g = self.goal
        for row, point in enumerate((g.object_position, g.left_hand, g.right_hand) if g else ()):
            if point is not None:
                out[row] = torch.tensor(point, dtype=torch.float64)
        return out

    def _errors(self) -> tuple[float | None, float | None]:
        """(object position error, largest position error) to the goal's targets, m; None where not given."""
        if self.goal is None:
            return None, None
        s = self.obs.state
        index = self.env.body.body_index
        now = torch.stack([s.obj_pos[0, 0]] + [s.body_pos[0, index[h]] for h in self.hand_names]).double().cpu()
        dist = (now - self._targets()).norm(dim=-1)  # NaN where not given
        given = ~torch.isnan(dist)
        object_error = float(dist[0]) if bool(given[0]) else None
        return object_error, (float(dist[given].max()) if bool(given.any()) else None)

    def _record(self) -> None:
        _, goal_error = self._errors()
        qpos = self.env.sim.backend.qpos()[0]
        self._recording.add(self.obs.state, qpos, self._targets(), goal_error)


def _heading(q: torch.Tensor) -> float:
    """Yaw (rad) of the rotated x axis of the wxyz rotation `q` [4]."""
    w, x, y, z = q.detach().double().cpu().tolist()
    return math.atan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (y * y + z * z))


def _triple(t: torch.Tensor) -> tuple[float, float, float]:
    x, y, z = t.detach().double().cpu().tolist()
    return (x, y, z)


def _start_clips(selection, objects_dir, object_names) -> tuple[list, dict[str, int], str]:
    """The run's clips (of `object_names` when given: every clip of the run's folder of those objects) and, per
    object, the index of its start clip (the first in name order). -> (clips, {object: clip index}, objects
    folder)."""
    selection = replace(selection, holdout=0)
    if objects_dir is not None:
        selection = replace(selection, objects=str(objects_dir))
    if object_names:
        bad = [n for n in object_names if not isinstance(n, str) or not n or "," in n]
        if bad:
            raise InterpriorError(f"object names must be non-empty names without commas, got {bad}")
        selection = replace(selection, object_name=",".join(object_names), clips=(), shortest=0)
    clips = sorted(selection.load(), key=lambda c: c.name)
    order = list(object_names) if object_names else list(dict.fromkeys(c.object_name for c in clips))
    starts = {}
    for name in order:
        found = [i for i, c in enumerate(clips) if c.object_name == name and c.num_frames >= 3]
        if not found:
            have = sorted({c.object_name for c in clips})
            raise InterpriorError(f"no clip of object {name!r} (of at least 3 frames) in {selection.data}; "
                                  f"objects there: {', '.join(have)}")
        starts[name] = found[0]
    return clips, starts, selection.objects
