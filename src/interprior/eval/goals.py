"""Goal-following evaluation of a Stage II prior (InterPrior Table 1 protocol, CPU scale).

Every clip starts at its first frame with deterministic physics (no noise, perturbations or randomization); the
policy runs the **prior + decoder only** (no encoder) with ε = 0 (or one ε per episode with `sample`). Only a fall
(or a diverged simulation) ends an episode early: tracking terminations are off, since a sparse goal leaves the
policy free between its targets. Goals are drawn by the training masks `restricted_to(goal_type)` with a fixed
seed, and the **baseline** is the same policy on the same clips with the zero goal (nothing given), so the table shows what the
goal itself contributes.

Success per goal type (thresholds below, also in the README):

* ``snapshot``:   at the snapshot's target time, every given body / object position is within `POSITION_TOLERANCE`
  and every given rotation within `ROTATION_TOLERANCE`; not fallen before. The target time is the frame, within
  the training's snapshot range ahead of the start (`MaskSampling.snapshot_frames`) and the horizon, where the
  given parts have moved farthest from where they started; episodes whose given parts move less than
  `MIN_SNAPSHOT_MOVE` in that window are not scored (standing still would meet them);
* ``trajectory``: at every step until the horizon, every given position within `TRAJECTORY_TOLERANCE` of the
  reference at that time (and rotations within `ROTATION_TOLERANCE`); not fallen;
* ``contact``:    the given contact bits are matched (simulated object contact = reference label) on at least
  `CONTACT_MATCH_RATE` of the (step, body) pairs until the horizon; not fallen;
* ``full``:       full-reference tracking: mean key-body error ≤ `FULL_BODY_ERROR` and mean object surface-point error
  ≤ `FULL_OBJECT_ERROR` at every step until the horizon (the Stage I termination thresholds); not fallen;
* ``composed``:   every given part of the goal meets its own rule above (snapshot, trajectory and contact parts);
* ``object``, ``hand``: only the object's pose / one or both wrist positions, as a snapshot: the snapshot rule;
* ``object_path``: only the object's position (and maybe rotation) on every preview token: the trajectory rule.

The horizon is the clip's end or `max_frames`, whichever is first.
"""

from __future__ import annotations

from dataclasses import replace
from math import nan

import torch
from torch import Tensor

from interprior.envs.goal import GoalEnv, GoalStep
from interprior.envs.tracking import TrackingEnv
from interprior.mdp.goal_masks import EVAL_GOAL_TYPES, GoalSchedule
from interprior.mdp.goal_success import (
    CONTACT_MATCH_RATE,
    MIN_SNAPSHOT_MOVE,
    POSITION_TOLERANCE,
    SNAPSHOT_FRAMES,
    SUCCESS_RULES,
    TRAJECTORY_TOLERANCE,
    component_errors,
    scoring_rule,
    defined_now,
    full_tracking_ok,
    given_position_error,
    goals_met,
    largest_move_frames,
)
from interprior.mdp.metrics import body_position_error, object_point_error
from interprior.models.prior import GoalPolicy
from interprior.report import Column, Group, format_table
from interprior.train.distill import student_env_config


def evaluate_goals(model, cfg, clips, objects_dir, goal_type: str, max_frames: int = 300, rollouts: int = 1,
                   seed: int = 0, sample: bool = False, runtime: str = "torch",
                   skills: dict[str, str] | None = None,
                   min_move: float = MIN_SNAPSHOT_MOVE) -> tuple[list[dict], dict]:
    """Run the prior on every clip with goals of `goal_type` and, beside it, with the zero goal. `model`: a
    `MaskedGoalPrior`; `cfg`: its `DistillConfig`; `skills`: clip name -> skill (a data set's manifest), for
    success per skill; `min_move` (m): snapshot-type goals whose given parts move less are not scored.
    -> (rows: one per scored clip and rollout, summary)."""
    m = len(clips) * rollouts
    n = 2 * m  # rows [0, m): the goal; rows [m, 2m): the same targets, zero goal
    clip_ids = torch.arange(len(clips)).repeat(rollouts).repeat(2)
    out = _run_episodes(model, cfg, clips, objects_dir, goal_type, clip_ids, goal_on=torch.arange(n) < m,
                        goal_source=torch.arange(n) % m, sample=torch.full((n,), sample), max_frames=max_frames,
                        seed=seed, runtime=runtime, min_move=min_move)
    rows, unscored = [], []
    for i in range(m):
        if not out["scored"][i]:
            unscored.append(clips[int(clip_ids[i])].name)
            continue
        row = {"clip": clips[int(clip_ids[i])].name, "rollout": i // len(clips), "frames": int(out["horizon"][i])}
        for prefix, j in (("", i), ("baseline_", i + m)):
            row.update({prefix + k: _item(out[k][j]) for k in ("success", "fell", "duration", "tracked", "error_cm",
                                                               "contact_match")})
        rows.append(row)
    summary = {"goal": goal_type, "rule": SUCCESS_RULES[goal_type], "episodes": len(rows),
               "unscored_episodes": len(unscored), "sampled_latent": sample, "mean_frames": _mean(rows, "frames")}
    for name, key in (("success_rate", "success"), ("fall_rate", "fell"), ("mean_duration", "duration"),
                      ("mean_tracked", "tracked"), ("mean_error_cm", "error_cm")):
        summary[name] = _mean(rows, key)
        summary[f"baseline_{name}"] = _mean(rows, f"baseline_{key}")
    if goal_type in ("contact", "composed"):
        summary["contact_match"] = _mean(rows, "contact_match")
        summary["baseline_contact_match"] = _mean(rows, "baseline_contact_match")
    if skills:
        for row in rows:
            row["skill"] = skills.get(row["clip"], "?")
        summary["per_skill"] = per_skill(rows)
    return rows, summary


def evaluate_diversity(model, cfg, clips, objects_dir, goal_type: str = "snapshot", latents: int = 8,
                       max_frames: int = 300, seed: int = 0, runtime: str = "torch",
                       min_move: float = MIN_SNAPSHOT_MOVE) -> tuple[list[dict], dict]:
    """Generativity: per clip one fixed goal of `goal_type`, run with `latents` sampled ε (one per episode) and once
    with ε = 0 (the prior's mean direction). Trajectory distance = mean over steps (until the horizon, or the first
    fall of the pair) and key bodies of the distance between two runs' body positions. -> (rows per clip, summary)
    with the mean pairwise distance among the sampled runs, their mean distance to the ε = 0 run, and the goal's
    success rate of both (over the clips whose goal is scored, `min_move` as in `evaluate_goals`)."""
    if latents < 2:
        raise ValueError(f"latents must be >= 2 to measure pairwise distances, got {latents}")
    c = len(clips)
    n = c * (latents + 1)  # rows [0, c·latents): sampled ε; the last c rows: ε = 0
    clip_ids = torch.arange(c).repeat(latents + 1)
    sampled = torch.arange(n) < c * latents
    out = _run_episodes(model, cfg, clips, objects_dir, goal_type, clip_ids, goal_on=torch.ones(n, dtype=torch.bool),
                        goal_source=torch.arange(n) % c, sample=sampled, max_frames=max_frames, seed=seed,
                        record=True, runtime=runtime, min_move=min_move)
    paths, alive = out["key_pos"], out["alive_steps"]  # [T, n, B, 3], [T, n]
    rows = []
    for i in range(c):
        runs = torch.arange(i, c * latents, c)
        mean_row = c * latents + i
        pairs = [(int(a), int(b)) for k, a in enumerate(runs) for b in runs[k + 1:]]
        pairwise = [_path_distance(paths, alive, a, b) for a, b in pairs]
        to_mean = [_path_distance(paths, alive, int(a), mean_row) for a in runs]
        rows.append({"clip": clips[i].name, "frames": int(out["horizon"][i]), "latents": latents,
                     "pairwise_cm": 100.0 * _nanmean(pairwise), "to_mean_latent_cm": 100.0 * _nanmean(to_mean),
                     "scored": bool(out["scored"][i]),  # success means nothing on a target that never moves
                     "sampled_success": float(out["success"][runs].float().mean()) if out["scored"][i] else nan,
                     "sampled_fell": float(out["fell"][runs].float().mean()),
                     "mean_latent_success": float(out["success"][mean_row]) if out["scored"][i] else nan,
                     "mean_latent_fell": bool(out["fell"][mean_row])})
    summary = {"goal": goal_type, "rule": SUCCESS_RULES[goal_type], "clips": c, "latents": latents,
               "mean_frames": _mean(rows, "frames")}
    for key in ("pairwise_cm", "to_mean_latent_cm", "sampled_success", "sampled_fell", "mean_latent_success",
                "mean_latent_fell"):
        summary[key] = _mean(rows, key)
    return rows, summary


def _path_distance(paths: Tensor, alive: Tensor, a: int, b: int) -> float:
    """Mean key-body distance (m) between runs a and b over the steps both were running (NaN if none)."""
    both = alive[:, a] & alive[:, b]
    if not bool(both.any()):
        return float("nan")
    return float((paths[both, a] - paths[both, b]).norm(dim=-1).mean())


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if v == v]
    return sum(kept) / len(kept) if kept else float("nan")


def _item(value: Tensor):
    return value.item() if value.dtype != torch.bool else bool(value)


def _run_episodes(model, cfg, clips, objects_dir, goal_type: str, clip_ids: Tensor, goal_on: Tensor,
                  goal_source: Tensor, sample: Tensor, max_frames: int, seed: int, record: bool = False,
                  runtime: str = "torch", min_move: float = MIN_SNAPSHOT_MOVE) -> dict:
    """One episode per row from clip `clip_ids[row]`'s first frame. Goal bits are drawn for `goal_type`, then row
    r takes row `goal_source[r]`'s bits and snapshot time; rows with `goal_on` false get the zero goal (their
    success is still scored against those bits). `sample` [n]: rows that draw one ε per episode (else ε = 0).
    `runtime`: "torch" or "onnx" (`GoalPolicy`). Snapshot-type goals are timed by `time_snapshots`; rows whose
    given parts move less than `min_move` (m) are not `scored`.
    -> per-row tensors (success, fell, duration, tracked, error_cm, contact_match, horizon, scored) and, with `record`,
    key-body positions [T, n, B, 3] and the rows still running at each step [T, n]."""
    if goal_type not in EVAL_GOAL_TYPES:
        raise ValueError(f"unknown goal type {goal_type!r}; choose from {', '.join(EVAL_GOAL_TYPES)}")
    genv, horizon = evaluation_env(cfg, clips, objects_dir, goal_type, clip_ids, goal_source, max_frames, seed)
    scored = torch.ones(len(clip_ids), dtype=torch.bool)
    if scoring_rule(goal_type) == "snapshot":
        scored = time_snapshots(genv, horizon, cfg.masks.snapshot_frames) >= min_move
    score = GoalScore(genv, goal_type, clip_ids, horizon, record)
    policy = GoalPolicy(model, len(clip_ids), deterministic=False, seed=seed, runtime=runtime)
    policy.eps[~sample.to(policy.eps.device)] = 0.0
    goal_rows = goal_on[:, None, None]
    obs = genv.observe()
    for _ in range(int(score.horizon.max())):
        goal = obs.goal.with_bits(obs.goal.bits & goal_rows.to(obs.goal.bits.device))
        step = genv.step(policy.act(obs.state_obs, goal))
        if not score.update(step):
            break
        obs = step.observation
    return {**score.result(), "scored": scored}


def time_snapshots(genv: GoalEnv, horizon: Tensor, window: tuple[int, int]) -> Tensor:
    """Put every row's snapshot target at the frame where its given parts (bodies named by a position or rotation
    bit, the object likewise) have moved farthest from the episode's start, within `window` (frames ahead, both
    inclusive: the training's snapshot range) and the horizon. -> that distance [n] (m)."""
    env, layout, schedule = genv.env, genv.layout, genv.schedule
    n, start = env.num_envs, env.frame.cpu()
    lo, hi = window
    steps = torch.arange(int(hi) + 1)
    ref = env.ref.state(env.clip_ids.cpu().repeat(len(steps)), (start[None] + steps[:, None]).flatten())
    bodies = ref.body_pos[:, list(layout.bodies)].reshape(len(steps), n, layout.num_bodies, 3)
    positions = torch.cat([bodies, ref.obj_pos.reshape(len(steps), n, 1, 3)], dim=2)
    snap, sl = schedule.bits[:, -1], layout.bit_slices
    given = torch.cat([snap[:, sl["body_pos"]] | snap[:, sl["body_rot"]],
                       snap[:, sl["obj_pos"]] | snap[:, sl["obj_rot"]]], dim=1)
    first = torch.full((n,), int(lo))
    last = torch.maximum(torch.minimum(horizon.cpu() - start, torch.full((n,), int(hi))), first)
    frame, moved = largest_move_frames(positions, given, first, last)
    schedule.snapshot_frame[:] = torch.minimum(start + frame, horizon.cpu())
    return moved


def evaluation_env(cfg, clips, objects_dir, goal_type: str, clip_ids: Tensor, goal_source: Tensor,
                   max_frames: int, seed: int, snapshot_frames: int = SNAPSHOT_FRAMES,
                   fall_height: float | None = None) -> tuple[GoalEnv, Tensor]:
    """The deterministic goal env of an evaluation, every row at its clip's first frame, goals drawn for the
    source rows only (the same seed gives the same goal per clip whatever the rows around it) and shared; the
    snapshot `snapshot_frames` ahead (and again that far after each one is reached). `fall_height` 0 lets
    fallen starts run (no fall ends them). -> (env, horizon [n])."""
    n = len(clip_ids)
    env_cfg = replace(student_env_config(cfg), num_envs=n, init="start", psi_slots=1, init_noise_pos=0.0,
                      init_noise_rot=0.0, perturb_prob=0.0, randomize_dynamics=False,
                      episode_length=max_frames + 1,  # the env's own time limit after the scored horizon
                      termination=replace(cfg.env.termination, enabled=False, **(
                          {} if fall_height is None else {"fall_height": fall_height})), backend="cpu", device=None,
                      compute_tracking_obs=False)  # the policy alone: no teacher reads it
    env = TrackingEnv(clips, objects_dir, env_cfg)
    env.reset_to(torch.arange(n), clip_ids, torch.zeros(n, dtype=torch.long), noise=False)
    sampling = replace(cfg.masks.restricted_to(goal_type), snapshot_frames=(snapshot_frames, snapshot_frames),
                       repeat_prob=1.0)
    genv = GoalEnv(env, cfg.goals, sampling, generator=torch.Generator().manual_seed(seed))
    last = genv.last_frames()
    horizon = torch.minimum(last, torch.full_like(last, max_frames))
    genv.new_episodes(goal_source.unique())
    schedule = genv.schedule
    schedule.snapshot_frame[:] = torch.minimum(schedule.snapshot_frame, horizon)
    _share(schedule, goal_source)
    return genv, horizon


class GoalScore:
    """Per-row bookkeeping of one goal evaluation: the success rule of `goal_type` (`interprior.mdp.goal_success`)
    checked against the goal bits drawn at the start (repeat_prob 1 keeps them for the whole episode)."""

    def __init__(self, genv: GoalEnv, goal_type: str, clip_ids: Tensor, horizon: Tensor, record: bool):
        n, layout = len(clip_ids), genv.layout
        self.genv, self.layout, self.clip_ids, self.record = genv, layout, clip_ids, record
        self.goal_type = scoring_rule(goal_type)  # object / hand goals: the rule of their form
        self.bits = genv.schedule.bits.clone()
        self.snapshot_at = genv.schedule.snapshot_frame.clone()
        self.horizon = torch.minimum(horizon, self.snapshot_at) if self.goal_type == "snapshot" else horizon
        self.has_snapshot = self.bits[:, -1].any(1)
        self.has_trajectory = self.bits[:, :-1, : layout.bit_slices["contact"].start].any((1, 2))
        self.contact_bits = self.bits[:, :, layout.bit_slices["contact"]].any(1)
        self.alive = torch.ones(n, dtype=torch.bool)
        self.fell = torch.zeros(n, dtype=torch.bool)
        self.frames_run = torch.zeros(n, dtype=torch.long)
        self.snapshot_ok = torch.zeros(n, dtype=torch.bool)
        self.trajectory_ok = torch.ones(n, dtype=torch.bool)
        self.contact_hits, self.contact_pairs = torch.zeros(n), torch.zeros(n)
        self.full_ok = torch.ones(n, dtype=torch.bool)
        self.tracked = torch.zeros(n, dtype=torch.long)  # frames before the full-tracking rule first failed
        self.err_sum, self.err_count = torch.zeros(n, dtype=torch.float64), torch.zeros(n)
        self.key_pos, self.running = [], []

    def update(self, step: GoalStep) -> bool:
        """Score one step. -> whether any row is still running."""
        layout, bits, now = self.layout, self.bits, self.alive.clone()
        after, ref, frame = step.state, step.reference, step.frame
        terminated = step.terminated.cpu()
        errors = component_errors(after, ref, layout)
        self.fell |= now & terminated
        self.frames_run += now.long()
        if self.record:
            self.key_pos.append(after.body_pos[:, list(self.genv.env.groups.key)].cpu())
            self.running.append(now & ~terminated)
        # trajectory: the preview selection against the reference at every step
        traj_bits = bits[:, 0] & defined_now(ref, layout)
        self.trajectory_ok &= ~now | ~self.has_trajectory | goals_met(errors, traj_bits, layout, TRAJECTORY_TOLERANCE)
        # contact: matched (step, body) pairs among the given, known labels
        known = ref.contact[:, torch.as_tensor(layout.contact_bodies)] != 0
        given_c = self.contact_bits & known & now[:, None]
        self.contact_hits += (errors["contact"] & given_c).sum(1).float()
        self.contact_pairs += given_c.sum(1).float()
        # snapshot: at its target frame
        at_target = now & (frame == self.snapshot_at)
        snap_bits = bits[:, -1] & defined_now(ref, layout)
        self.snapshot_ok |= at_target & goals_met(errors, snap_bits, layout, POSITION_TOLERANCE)
        # full tracking
        eh = body_position_error(after.body_pos, ref.body_pos, self.genv.env.groups.key).cpu()
        points = self.genv.env.clip_points(self.clip_ids)
        eo = object_point_error(after.obj_pos[:, 0], after.obj_rot[:, 0], ref.obj_pos, ref.obj_rot, points).cpu()
        self.full_ok &= ~now | full_tracking_ok(eh, eo)
        self.tracked += (now & self.full_ok & ~terminated).long()
        # the reported error: E_h for full tracking, else the mean error of the given positions
        step_err = eh if self.goal_type in ("full", "contact") else given_position_error(
            errors, bits[:, -1] if self.goal_type == "snapshot" else bits[:, 0], layout)
        use = (at_target if self.goal_type == "snapshot" else now) & ~torch.isnan(step_err)
        self.err_sum += torch.where(use, step_err.double(), torch.zeros_like(self.err_sum))
        self.err_count += use.float()
        self.alive &= ~terminated & (frame < self.horizon)
        return bool(self.alive.any())

    def result(self) -> dict:
        contact_rate = self.contact_hits / self.contact_pairs.clamp_min(1.0)
        ok = {"snapshot": self.snapshot_ok, "trajectory": self.trajectory_ok,
              "contact": contact_rate >= CONTACT_MATCH_RATE, "full": self.full_ok}
        if self.goal_type == "composed":
            success = ((~self.has_snapshot | ok["snapshot"]) & (~self.has_trajectory | ok["trajectory"])
                       & (~self.contact_bits.any(1) | ok["contact"]))
        else:
            success = ok[self.goal_type]
        success = success & ~self.fell
        # NaN where nothing was measured (e.g. a fall before the snapshot's target time)
        error_cm = torch.where(self.err_count > 0, 100.0 * self.err_sum / self.err_count.clamp_min(1.0),
                               float("nan"))
        out = {"success": success, "fell": self.fell, "duration": self.frames_run, "tracked": self.tracked,
               "error_cm": error_cm, "contact_match": contact_rate, "horizon": self.horizon}
        if self.record:
            out["key_pos"], out["alive_steps"] = torch.stack(self.key_pos), torch.stack(self.running)
        return out


class FullGoalTracker:
    """A Stage II prior as a full-reference tracker for `evaluate_tracking`: every goal bit on (the "full" goal type:
    previews and snapshot of every body, the object and the known contacts), prior + decoder only, ε = 0 (or, with
    `deterministic=False`, ε drawn per episode). The
    expert's protocol and termination rules then apply unchanged, so student and expert durations compare
    like for like."""

    reads_tracking_obs = False  # it observes the env through its own goal env

    def __init__(self, model, cfg, runtime: str = "torch", deterministic: bool = True):
        self.model, self.cfg, self.runtime, self.deterministic = model, cfg, runtime, deterministic
        self.env = None

    def bind_env(self, env: TrackingEnv) -> None:
        layout = self.cfg.goals
        self.env = env
        self.policy = GoalPolicy(self.model, env.num_envs, deterministic=self.deterministic, runtime=self.runtime)
        every_bit = torch.ones(layout.num_tokens, layout.bit_size, dtype=torch.bool)
        self.goal_env = GoalEnv(env, layout, self.cfg.masks, fixed_bits=every_bit)
        self.started = False

    @torch.no_grad()
    def act(self, obs: Tensor, deterministic: bool = True):
        """(None, None, None, action): the expert's `act` signature; `obs` (the tracking observation) is unused."""
        env = self.env
        if not self.started:
            self.goal_env.new_episodes(torch.arange(env.num_envs))
            self.started = True
        goal_obs = self.goal_env.observe(env.prev if env.prev is not None else env.sim.state())
        return None, None, None, self.policy.act(goal_obs.state_obs, goal_obs.goal)


def _mean(rows: list[dict], key: str) -> float:
    """Mean of a column over the episodes where it was measured (NaN when it never was)."""
    values = [float(r[key]) for r in rows if float(r[key]) == float(r[key])]
    return sum(values) / len(values) if values else float("nan")


def per_skill(rows: list[dict]) -> dict[str, dict]:
    """Success with the goal and with the zero goal, per skill (rows carry "skill")."""
    out = {}
    for skill in sorted({r["skill"] for r in rows}):
        mine = [r for r in rows if r["skill"] == skill]
        out[skill] = {"episodes": len(mine), "success_rate": _mean(mine, "success"),
                      "baseline_success_rate": _mean(mine, "baseline_success"), "fall_rate": _mean(mine, "fell")}
    return out


def _share(schedule: GoalSchedule, source: Tensor) -> None:
    """Row r takes exactly row `source[r]`'s goal bits and snapshot time (rows compared on one goal)."""
    schedule.bits[:] = schedule.bits[source]
    schedule.snapshot_frame[:] = schedule.snapshot_frame[source]




def format_goal_table(rows: list[dict], summary: dict) -> str:
    """Per-episode table (prior with the goal | same prior, zero goal) and the summary lines. `dur`: frames before
    a fall or the horizon; for full tracking, frames before the tracking rule first failed."""
    full = summary["goal"] == "full"
    err = "E_h cm" if summary["goal"] in ("full", "contact") else "err cm"
    dur, base_dur = ("tracked", "baseline_tracked") if full else ("duration", "baseline_duration")
    columns = [Column("clip", "clip", width=24, align="<"), Column("rollout", "run", "d", 3),
               Column("frames", "frames", "d", 6)]
    for prefix, d, sep in (("", dur, " "), ("baseline_", base_dur, " | ")):
        columns += [Column(prefix + "success", "ok", width=4, sep=sep), Column(prefix + "fell", "fell", width=5),
                    Column(d, "dur", "d", 5), Column(prefix + "error_cm", err, "8.1f")]
    groups = (Group("prior + goal", "success", "error_cm"),
              Group("zero goal (baseline)", "baseline_success", "baseline_error_cm"))
    lines = [f"goal: {summary['goal']}; success = {summary['rule']}"] + format_table(rows, columns, groups)
    s = summary
    key = "tracked" if full else "duration"
    tail = (f"success: prior + goal {100 * s['success_rate']:.0f}%, zero goal {100 * s['baseline_success_rate']:.0f}%; "
            f"falls {100 * s['fall_rate']:.0f}% vs {100 * s['baseline_fall_rate']:.0f}%; mean dur "
            f"{s['mean_' + key]:.1f} vs {s['baseline_mean_' + key]:.1f} of {s['mean_frames']:.1f} frames; mean {err} "
            f"{s['mean_error_cm']:.1f} vs {s['baseline_mean_error_cm']:.1f}")
    if "contact_match" in s:
        tail += f"; contacts matched {100 * s['contact_match']:.0f}% vs {100 * s['baseline_contact_match']:.0f}%"
    if s.get("unscored_episodes"):
        tail += f"; {s['unscored_episodes']} episodes not scored (their snapshot targets hardly move)"
    lines.append(tail)
    if s.get("per_skill"):
        lines.append("per skill: " + "; ".join(
            f"{k} {100 * v['success_rate']:.0f}% vs {100 * v['baseline_success_rate']:.0f}% ({v['episodes']})"
            for k, v in s["per_skill"].items()))
    return "\n".join(lines)



def format_diversity_table(rows: list[dict], summary: dict) -> str:
    """Per clip: spread of the sampled-latent runs, their distance to the ε = 0 run, and goal success of both."""
    lines = [f"goal: {summary['goal']} (one fixed goal per clip); success = {summary['rule']}",
             f"{summary['latents']} sampled latents per clip against the prior's mean latent (ε = 0); distances are "
             "mean key-body position gaps between runs, in cm"]
    lines += format_table(rows, [
        Column("clip", "clip", width=24, align="<"), Column("frames", "frames", "d", 6),
        Column("pairwise_cm", "pairwise", "9.1f"), Column("to_mean_latent_cm", "to mean", "8.1f"),
        Column("sampled_success", "ok (sampled)", lambda v: f"{100 * v:.0f}%", 13),
        Column("mean_latent_success", "ok (mean)", lambda v: "-" if v != v else ("yes" if v else "no"), 10)])
    s = summary
    lines.append(f"mean pairwise distance {s['pairwise_cm']:.1f} cm, to the mean-latent run {s['to_mean_latent_cm']:.1f}"
                 f" cm; success: sampled {100 * s['sampled_success']:.0f}%, mean latent "
                 f"{100 * s['mean_latent_success']:.0f}%; falls {100 * s['sampled_fell']:.0f}% vs "
                 f"{100 * s['mean_latent_fell']:.0f}%")
    return "\n".join(lines)
