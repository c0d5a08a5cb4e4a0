"""The goal-following protocol (InterPrior Table 1, CPU scale): the same clips and seeds for every checkpoint.

* **Snap, Traj, Cont**: success of `eval goals --goal snapshot|trajectory|contact` (prior with the goal);
* **Chain**: `CHAIN_TARGETS` consecutive snapshot goals from one clip in one episode, `CHAIN_GAP` frames apart
  (the same bits each time: body/object positions drawn like snapshot goals); success when every target is reached
  at its time, in turn (positions within the snapshot tolerance), without a fall. Clips shorter than the chain are
  left out (named in the summary);
* **RInit**: randomized starts, then an object snapshot goal `RINIT_FRAMES` ahead: half the episodes start at the
  clip's first frame with root/joint noise (`RINIT_NOISE`) and a push of 1-2 m/s; half are pushed over in physics
  and start fallen (`interprior.envs.fallen`). Falls do not end these episodes (a fallen start must get up); success
  is the object within the snapshot tolerance at the target time;
* **Fail**: the share of Snap, Traj, Cont and Chain episodes (standing starts) that end in a fall.
"""

from __future__ import annotations

from html import escape

import torch
from torch import Tensor

from interprior.envs.fallen import push_over
from interprior.eval.goals import evaluate_goals, evaluation_env
from interprior.mdp.goal_success import POSITION_TOLERANCE, component_errors, defined_now, goals_met
from interprior.models.prior import GoalPolicy

CHAIN_TARGETS = 3
CHAIN_GAP = 40  # frames between chain targets (1.33 s)
RINIT_FRAMES = 90  # the object goal after a randomized start (3 s: a fallen start must get up first)
RINIT_NOISE = (0.05, 0.15)  # root position noise (m, horizontal), joint angle noise (rad)
METRICS = ("snap", "traj", "cont", "chain", "rinit", "fail")


def evaluate_protocol(model, cfg, clips, objects_dir, seed: int = 0, max_frames: int = 150) -> dict:
    """Every protocol figure of one prior -> {"snap", ..., "fail": rates in [0, 1], "episodes": {...}, ...}."""
    out, falls, episodes = {}, 0.0, 0
    for name, goal in (("snap", "snapshot"), ("traj", "trajectory"), ("cont", "contact")):
        _, summary = evaluate_goals(model, cfg, clips, objects_dir, goal, max_frames=max_frames, seed=seed)
        out[name] = summary["success_rate"]
        if summary["episodes"]:  # a snapshot row may score no clip (nothing moves far enough)
            falls += summary["fall_rate"] * summary["episodes"]
            episodes += summary["episodes"]
    chain = chain_episodes(model, cfg, clips, objects_dir, seed)
    out["chain"], out["chain_left_out"] = chain["success_rate"], chain["left_out"]
    falls += chain["falls"]
    episodes += chain["episodes"]
    rinit = rinit_episodes(model, cfg, clips, objects_dir, seed)
    out["rinit"], out["rinit_noisy"], out["rinit_fallen"] = rinit["success_rate"], rinit["noisy"], rinit["fallen"]
    out["fail"] = falls / max(episodes, 1)
    out["episodes"] = {"standing": episodes, "chain": chain["episodes"], "rinit": rinit["episodes"]}
    return out


def _act_loop(genv, policy, steps: int, on_step) -> None:
    obs = genv.observe()
    for _ in range(steps):
        target = genv.schedule.snapshot_frame.clone()
        step = genv.step(policy.act(obs.state_obs, obs.goal))
        if not on_step(step, target):
            return
        obs = step.observation


def chain_episodes(model, cfg, clips, objects_dir, seed: int = 0, targets: int = CHAIN_TARGETS,
                   gap: int = CHAIN_GAP) -> dict:
    """K snapshot goals in turn per clip (one episode each, ε = 0)."""
    long_enough = [c for c in clips if c.num_frames > targets * gap]
    left_out = [c.name for c in clips if c.num_frames <= targets * gap]
    if not long_enough:
        return {"success_rate": float("nan"), "episodes": 0, "falls": 0, "left_out": left_out}
    n = len(long_enough)
    ids = torch.arange(n)
    genv, horizon = evaluation_env(cfg, long_enough, objects_dir, "snapshot", ids, ids, targets * gap, seed,
                                   snapshot_frames=gap)
    policy = GoalPolicy(model, n, deterministic=True, seed=seed)
    bits = genv.schedule.bits[:, -1].clone()  # repeat_prob 1: every target has the same bits
    reached, seen = torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long)
    fell, alive = torch.zeros(n, dtype=torch.bool), torch.ones(n, dtype=torch.bool)

    def score(step, target: Tensor) -> bool:
        now = alive.clone()
        ended = step.terminated.cpu()
        fell.logical_or_(now & ended)
        at = now & (step.frame.cpu() == target) & (seen < targets)
        errors = component_errors(step.state, step.reference, genv.layout)
        ok = goals_met(errors, bits & defined_now(step.reference, genv.layout), genv.layout, POSITION_TOLERANCE)
        reached.add_((at & ok & (reached == seen)).long())  # in turn: every earlier target reached too
        seen.add_(at.long())
        alive.logical_and_(~ended & (seen < targets) & (step.frame.cpu() < horizon))
        return bool(alive.any())

    _act_loop(genv, policy, int(horizon.max()), score)
    success = (reached == targets) & ~fell
    return {"success_rate": success.float().mean().item(), "episodes": n, "falls": int(fell.sum()),
            "left_out": left_out}


def rinit_episodes(model, cfg, clips, objects_dir, seed: int = 0, frames: int = RINIT_FRAMES) -> dict:
    """Per clip two episodes: a noisy pushed start and a fallen start, then an object snapshot goal."""
    m = len(clips)
    clip_ids = torch.arange(m).repeat(2)
    genv, horizon = evaluation_env(cfg, clips, objects_dir, "object", clip_ids, torch.arange(2 * m) % m, frames,
                                   seed, snapshot_frames=frames, fall_height=0.0)
    env = genv.env
    g = torch.Generator().manual_seed(seed)
    _noisy_push(env, torch.arange(m), g)
    push_over(env, torch.arange(m, 2 * m), generator=g)
    policy = GoalPolicy(model, 2 * m, deterministic=True, seed=seed)
    bits = genv.schedule.bits[:, -1].clone()
    target_frame = genv.schedule.snapshot_frame.clone()
    success = torch.zeros(2 * m, dtype=torch.bool)
    done = torch.zeros(2 * m, dtype=torch.bool)

    def score(step, target: Tensor) -> bool:
        at = ~done & (step.frame.cpu() == target_frame)
        errors = component_errors(step.state, step.reference, genv.layout)
        ok = goals_met(errors, bits & defined_now(step.reference, genv.layout), genv.layout, POSITION_TOLERANCE)
        success.logical_or_(at & ok)
        done.logical_or_(at | (step.frame.cpu() >= horizon))
        return not bool(done.all())

    _act_loop(genv, policy, int(horizon.max()), score)
    return {"success_rate": success.float().mean().item(), "episodes": 2 * m,
            "noisy": success[:m].float().mean().item(), "fallen": success[m:].float().mean().item()}


def _noisy_push(env, ids: Tensor, g: torch.Generator) -> None:
    """Root position and joint angle noise and a 1-2 m/s horizontal push on envs `ids` (in place)."""
    backend = env.sim.backend
    dev_ids = ids.to(env.device)
    qpos, qvel = backend.qpos()[dev_ids].clone(), backend.qvel()[dev_ids].clone()
    n = len(ids)
    qpos[:, 0:2] += (RINIT_NOISE[0] * torch.randn(n, 2, generator=g)).to(qpos)
    qpos[:, 7:] += (RINIT_NOISE[1] * torch.randn(n, qpos.shape[1] - 7, generator=g)).to(qpos) * \
        (torch.arange(7, qpos.shape[1]) < 7 + env.sim.num_dofs).to(qpos)  # the humanoid's joints, not objects'
    angle = 2 * torch.pi * torch.rand(n, generator=g)
    speed = 1.0 + torch.rand(n, generator=g)
    qvel[:, 0:3] += (torch.stack([angle.cos(), angle.sin(), torch.zeros(n)], -1) * speed[:, None]).to(qvel)
    backend.reset(dev_ids, qpos, qvel)
    env.prev = None


# --- reports ----------------------------------------------------------------------------------------------------------
def format_protocol_table(rows: list[dict]) -> str:
    """Markdown: one row per checkpoint, success rates in %, Fail in % (lower is better)."""
    pct = lambda v: "-" if v != v else f"{100 * v:.1f}"  # noqa: E731
    head = "| checkpoint | Snap | Traj | Cont | Chain | RInit | Fail |"
    lines = [head, "|" + "---|" * 7]
    for r in rows:
        lines.append(f"| {r['checkpoint']} | " + " | ".join(pct(r[k]) for k in METRICS) + " |")
    return "\n".join(lines)


def protocol_svg(rows: list[dict]) -> str:
    """Grouped bars: per metric, one bar per checkpoint (0-100 %)."""
    colors = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
    w, h, pad_l, pad_b, pad_t = 700, 300, 50, 40, 40
    group = (w - pad_l - 20) / len(METRICS)
    bar = group * 0.8 / max(len(rows), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + pad_t + pad_b}" '
             'font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>',
             f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{w - 10}" y2="{pad_t + h}" stroke="#333"/>',
             f'<text x="{pad_l - 6}" y="{pad_t + 4}" text-anchor="end">100%</text>',
             f'<text x="{pad_l - 6}" y="{pad_t + h}" text-anchor="end">0</text>']
    for i, metric in enumerate(METRICS):
        x0 = pad_l + i * group + group * 0.1
        parts.append(f'<text x="{x0 + group * 0.4:.1f}" y="{pad_t + h + 16}" text-anchor="middle">'
                     f'{metric.capitalize()}</text>')
        for j, r in enumerate(rows):
            v = r[metric] if r[metric] == r[metric] else 0.0
            parts.append(f'<rect x="{x0 + j * bar:.1f}" y="{pad_t + h * (1 - v):.1f}" width="{bar * 0.9:.1f}" '
                         f'height="{h * v:.1f}" fill="{colors[j % len(colors)]}"/>')
    for j, r in enumerate(rows):
        parts.append(f'<rect x="{pad_l + 10 + 160 * j}" y="10" width="12" height="12" '
                     f'fill="{colors[j % len(colors)]}"/><text x="{pad_l + 26 + 160 * j}" y="21">'
                     f'{escape(str(r["checkpoint"]))[:20]}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
