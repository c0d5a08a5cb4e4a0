"""Full-reference tracking evaluation (InterMimic's protocol): every clip from its first frame, deterministic
actions, no noise, perturbations or randomization; success = reached the clip's end without early termination;
duration (frames); E_h = mean key-body error (cm); E_o = mean object surface-point error (cm); best of k."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch

from interprior.envs.tracking import TrackingEnv
from interprior.eval.replay import physics_replay
from interprior.mdp.metrics import body_position_error, object_point_error
from interprior.report import Column, Group
from interprior.report import format_table as format_lines


@dataclass
class ClipResult:
    clip: str
    frames: int
    success: bool
    duration: int  # control frames tracked before termination (frames - 1 when it reached the end)
    e_h_cm: float
    e_o_cm: float
    ended_by: str = ""  # the termination rule that stopped it ("end": reached the clip's end; "limit": max_frames)
    e_h_frames: list[float] = field(default_factory=list, repr=False)  # per tracked frame (cm)
    e_o_frames: list[float] = field(default_factory=list, repr=False)

    def errors_over(self, frames: int) -> tuple[float, float]:
        """(E_h, E_o) in cm over the first `frames` tracked frames (another run's duration: a like-for-like
        comparison when the two lasted differently long)."""
        k = max(1, min(int(frames), len(self.e_h_frames)))
        return sum(self.e_h_frames[:k]) / k, sum(self.e_o_frames[:k]) / k

    def as_dict(self) -> dict:
        d = asdict(self)
        del d["e_h_frames"], d["e_o_frames"]
        return d


def evaluate_tracking(model, clips, objects_dir, env_cfg, rollouts: int = 1, max_frames: int = 1000,
                      record: bool = False):
    """Returns per-clip best results (longest, then lowest E_h + E_o) and, with `record`, qpos tracks.
    `model`: an expert (`act(obs, deterministic=True)` on the tracking observation); None: no policy - PD targets
    are the next reference frame (PD replay) under the same rules; or a policy that reads the env itself, with
    `bind_env(env)` called once the env exists (`interprior.eval.goals.FullGoalTracker`, a Stage II prior)."""

    n = len(clips) * rollouts
    if model is None:
        env_cfg = replace(env_cfg, action_mode="residual")  # zero residual = PD replay of the reference
    # nothing here reads the reward, and only an expert reads the tracking observation (`reads_tracking_obs`
    # False: a policy that observes the env itself)
    reads_obs = model is not None and getattr(model, "reads_tracking_obs", True)
    cfg = replace(env_cfg, num_envs=n, init="start", psi_slots=1, init_noise_pos=0.0, init_noise_rot=0.0,
                  perturb_prob=0.0, randomize_dynamics=False, episode_length=max_frames, compute_reward=False,
                  compute_tracking_obs=reads_obs)
    env = TrackingEnv(clips, objects_dir, cfg)
    if hasattr(model, "bind_env"):
        model.bind_env(env)
    clip_ids = torch.arange(len(clips)).repeat(rollouts)
    env.reset_to(torch.arange(n), clip_ids, torch.zeros(n, dtype=torch.long), noise=False)
    env.clip_ids[:], env.frame[:], env.start[:] = clip_ids, 0, 0
    obs = env.observe()
    lengths = env.ref.lengths[clip_ids]
    alive = torch.ones(n, dtype=torch.bool)
    success = torch.zeros(n, dtype=torch.bool)
    duration = torch.zeros(n, dtype=torch.long)
    err_h = torch.zeros(n, dtype=torch.float64)
    err_o = torch.zeros(n, dtype=torch.float64)
    ended_by = ["limit"] * n
    per_frame_h, per_frame_o = [], []  # [n] per step, while alive
    key = env.groups.key
    tracks = [[] for _ in range(n)] if record else None
    if record:
        for i in range(n):
            tracks[i].append(env.sim.backend.qpos()[i].cpu().double().numpy().copy())
    for _ in range(int(lengths.max()) - 1):
        if model is None:
            mu = torch.zeros(n, env.act_dim, device=obs.device)
        else:
            with torch.no_grad():
                _, _, _, mu = model.act(obs, deterministic=True)
        frame_before = env.frame.clone()
        state_ref = env.ref.state(env.clip_ids, frame_before + 1, env.device)
        step = env.step(mu)
        obs, terminated, timeout = step.obs, step.terminated, step.timeout
        st = step.state  # this step's state, before any auto-reset replaced it
        eh = body_position_error(st.body_pos, state_ref.body_pos, key).double().cpu()
        points = env.clip_points(clip_ids)  # this row's clip, even where an ended env was reset to another
        eo = object_point_error(st.obj_pos[:, 0], st.obj_rot[:, 0], state_ref.obj_pos, state_ref.obj_rot,
                                points).double().cpu()
        err_h += torch.where(alive, eh, torch.zeros_like(eh))
        err_o += torch.where(alive, eo, torch.zeros_like(eo))
        per_frame_h.append(torch.where(alive, eh, torch.nan))
        per_frame_o.append(torch.where(alive, eo, torch.nan))
        duration += alive.long()
        ended = (terminated | timeout).cpu()
        reached_end = (frame_before + 1 >= lengths - 1).cpu()
        success |= alive & reached_end & ~terminated.cpu()
        for i in (alive & (ended | reached_end)).nonzero().flatten().tolist():
            hit = [why for why, v in step.reasons.items() if bool(v[i])]
            ended_by[i] = hit[0] if hit else "end"
        if record:
            q = (step.qpos if step.qpos is not None else env.sim.backend.qpos()).cpu().double().numpy()
            for i in alive.nonzero().flatten().tolist():
                tracks[i].append(q[i].copy())
        alive &= ~ended & ~reached_end
        if not bool(alive.any()):
            break
    results = _best_results(clips, clip_ids, success, duration, err_h, err_o, ended_by, per_frame_h, per_frame_o)
    best_tracks = None
    if record:
        best_tracks = {}
        for c, clip in enumerate(clips):
            rows = [i for i in range(n) if int(clip_ids[i]) == c]
            best_tracks[clip.name] = tracks[max(rows, key=lambda i: int(duration[i]))]
    return results, env, best_tracks


def _best_results(clips, clip_ids, success, duration, err_h, err_o, ended_by, per_frame_h, per_frame_o) -> list:
    """Per clip, its best rollout (longest, then lowest E_h + E_o) as a `ClipResult`."""
    n = len(clip_ids)
    per_frame_h = 100.0 * torch.stack(per_frame_h, 1) if per_frame_h else torch.zeros(n, 0, dtype=torch.float64)
    per_frame_o = 100.0 * torch.stack(per_frame_o, 1) if per_frame_o else torch.zeros(n, 0, dtype=torch.float64)
    results = []
    for c, clip in enumerate(clips):
        rows = [i for i in range(n) if int(clip_ids[i]) == c]
        best = max(rows, key=lambda i: (int(duration[i]), -float(err_h[i] + err_o[i]) / max(int(duration[i]), 1)))
        d = max(int(duration[best]), 1)
        results.append(ClipResult(clip=clip.name, frames=clip.num_frames, success=bool(success[best]),
                                  duration=int(duration[best]), e_h_cm=100.0 * float(err_h[best]) / d,
                                  e_o_cm=100.0 * float(err_o[best]) / d, ended_by=ended_by[best],
                                  e_h_frames=per_frame_h[best, : int(duration[best])].tolist(),
                                  e_o_frames=per_frame_o[best, : int(duration[best])].tolist()))
    return results


def compare_with_baseline(model, clips, objects_dir, env_cfg, rollouts: int = 1, baseline: bool = True,
                          record: bool = False, skills: dict[str, str] | None = None):
    """The tracking evaluation with two no-policy baselines alongside (same humanoid variant): the PD replay under
    the same termination rules (`pd_*`: duration, E_h, E_o) and the foundation's physics replay that only stops at
    a fall (`baseline_*`). `skills`: clip name -> skill (a synthetic set's manifest) for figures per skill.
    -> (rows: one dict per clip, summary dict, env, best qpos tracks or None)."""

    env_cfg = replace(env_cfg, backend="cpu", device=None)
    results, env, tracks = evaluate_tracking(model, clips, objects_dir, env_cfg, rollouts=rollouts, record=record)
    pd_results = evaluate_tracking(None, clips, objects_dir, env_cfg)[0] if baseline else [None] * len(clips)
    rows = []
    for clip, res, pd in zip(clips, results, pd_results):
        row = res.as_dict()
        row["object"] = clip.object_name
        if skills:
            row["skill"] = skills.get(clip.name, "?")
        if baseline:
            row["pd_duration"], row["pd_e_h_cm"], row["pd_e_o_cm"] = pd.duration, pd.e_h_cm, pd.e_o_cm
            # like for like: both runs' errors over the frames both lasted (the shorter one's duration)
            common = min(res.duration, pd.duration)
            row["common_frames"] = common
            row["e_h_cm_common"], row["e_o_cm_common"] = res.errors_over(common)
            row["pd_e_h_cm_common"], row["pd_e_o_cm_common"] = pd.errors_over(common)
            base, _, _ = physics_replay(clip, objects_dir, body=env.body)
            row["baseline_duration"] = base.frames_before_fall
            row["baseline_e_h_cm"], row["baseline_e_o_cm"] = base.e_h_cm, base.e_o_cm or 0.0
        rows.append(row)
    mean = lambda key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
    summary = {"clips": len(rows), "success_rate": mean("success"), "mean_duration": mean("duration"),
               "mean_clip_frames": mean("frames"), "mean_e_h_cm": mean("e_h_cm"), "mean_e_o_cm": mean("e_o_cm")}
    for key, name in (("object", "per_object"), ("skill", "per_skill")):
        groups = sorted({r[key] for r in rows if key in r})
        if len(groups) > 1:  # several objects / skills: the same figures per group
            summary[name] = {g: _group_figures([r for r in rows if r.get(key) == g]) for g in groups}
    if baseline:
        summary.update(pd_mean_duration=mean("pd_duration"), pd_mean_e_h_cm=mean("pd_e_h_cm"),
                       pd_mean_e_o_cm=mean("pd_e_o_cm"), baseline_mean_duration=mean("baseline_duration"), baseline_mean_e_h_cm=mean("baseline_e_h_cm"),
                       baseline_mean_e_o_cm=mean("baseline_e_o_cm"), mean_common_frames=mean("common_frames"),
                       mean_e_h_cm_common=mean("e_h_cm_common"), mean_e_o_cm_common=mean("e_o_cm_common"),
                       pd_mean_e_h_cm_common=mean("pd_e_h_cm_common"), pd_mean_e_o_cm_common=mean("pd_e_o_cm_common"))
    return rows, summary, env, tracks


def _group_figures(rows: list[dict]) -> dict:
    avg = lambda key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
    return {"clips": len(rows), "success_rate": avg("success"), "mean_duration": avg("duration"),
            "mean_clip_frames": avg("frames"), "mean_e_h_cm": avg("e_h_cm"), "mean_e_o_cm": avg("e_o_cm")}


def format_table(rows: list[dict], summary: dict) -> str:
    """The per-clip table and the summary line, as printed by `eval tracking` and the demo."""
    baseline = "baseline_duration" in rows[0]
    columns = [Column("clip", "clip", width=26, align="<"), Column("frames", "frames", "d", 6),
               Column("success", "ok", width=3), Column("duration", "dur", "d", 5), Column("e_h_cm", "E_h", "6.1f"),
               Column("e_o_cm", "E_o", "6.1f"), Column("ended_by", "ended by", width=12)]
    groups: tuple[Group, ...] = ()
    if baseline:
        for prefix in ("pd_", "baseline_"):
            columns += [Column(f"{prefix}duration", "dur", "d", 6, sep="  | "), Column(f"{prefix}e_h_cm", "E_h", "6.1f"),
                        Column(f"{prefix}e_o_cm", "E_o", "6.1f")]
        groups = (Group("policy", "success", "ended_by"), Group("PD replay, same rules", "pd_duration", "pd_e_o_cm"),
                  Group("PD replay to a fall", "baseline_duration", "baseline_e_o_cm"))
    lines = format_lines(rows, columns, groups)
    s = summary
    tail = (f"policy: success {100 * s['success_rate']:.0f}%, duration {s['mean_duration']:.1f} of "
            f"{s['mean_clip_frames']:.1f} frames, E_h {s['mean_e_h_cm']:.1f} cm, E_o {s['mean_e_o_cm']:.1f} cm")
    for name, o in [*s.get("per_object", {}).items(), *s.get("per_skill", {}).items()]:
        tail += (f"\n  {name} ({o['clips']} clips): success {100 * o['success_rate']:.0f}%, duration "
                 f"{o['mean_duration']:.1f} of {o['mean_clip_frames']:.1f} frames, E_h {o['mean_e_h_cm']:.1f} cm, "
                 f"E_o {o['mean_e_o_cm']:.1f} cm")
    if baseline:
        tail += (f"\nPD replay, same rules: duration {s['pd_mean_duration']:.1f}, E_h {s['pd_mean_e_h_cm']:.1f} cm, "
                 f"E_o {s['pd_mean_e_o_cm']:.1f} cm; PD replay to a fall: duration {s['baseline_mean_duration']:.1f}, "
                 f"E_h {s['baseline_mean_e_h_cm']:.1f} cm, E_o {s['baseline_mean_e_o_cm']:.1f} cm"
                 f"\nover the frames both lasted (mean {s['mean_common_frames']:.1f}): policy E_h "
                 f"{s['mean_e_h_cm_common']:.1f} cm, E_o {s['mean_e_o_cm_common']:.1f} cm; PD replay, same rules: E_h "
                 f"{s['pd_mean_e_h_cm_common']:.1f} cm, E_o {s['pd_mean_e_o_cm_common']:.1f} cm")
    lines.append(tail)
    return "\n".join(lines)


def write_videos(directory, clips, env, tracks) -> list:
    """One MP4 per clip of its best rollout, reference bodies as green markers. -> the paths written."""
    from pathlib import Path

    import numpy as np

    from interprior.viz.render import write_video

    paths = []
    for clip in clips:
        out = Path(directory) / f"{clip.name}.mp4"
        out.parent.mkdir(parents=True, exist_ok=True)
        qpos = np.stack(tracks[clip.name])
        write_video(out, env.scene.model, qpos, markers=[(clip.body_pos[: len(qpos)].double().numpy(),
                                                          (0.1, 0.9, 0.2, 0.55), 0.025)], fps=clip.fps)
        paths.append(out)
    return paths
