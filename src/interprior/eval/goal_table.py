"""The goal table of a Stage II prior: every goal type a user gives, each with the goal and with the zero goal, with
the prior's mean latent (ε = 0) and with a sampled one, in one call (`interprior eval goals --goal table`).

Each cell is one `evaluate_goals` run (same clips, seed and rules), so a row reads exactly like the single-type
report of that goal type. The falls line counts every episode that was given a goal, over the whole table.
"""

from __future__ import annotations

from interprior.eval.goals import evaluate_goals
from interprior.report import Column, format_table

# the goal types a steering user gives, in the order the table prints them
TABLE_GOALS: tuple[str, ...] = ("snapshot", "trajectory", "contact", "object", "object_path", "hand")


def evaluate_goal_table(model, cfg, clips, objects_dir, goal_types: tuple[str, ...] = TABLE_GOALS,
                        latents: tuple[bool, ...] = (False, True), **options) -> tuple[list[dict], dict]:
    """One row per (goal type, latent): success with the goal and with the zero goal, the gap in points, falls,
    and per-skill success when `options` carry `skills`. `latents`: False = ε = 0, True = one sampled ε per
    episode. `options` go to `evaluate_goals` (max_frames, rollouts, seed, runtime, skills)."""
    rows = []
    for goal_type in goal_types:
        for sample in latents:
            _, s = evaluate_goals(model, cfg, clips, objects_dir, goal_type, sample=sample, **options)
            rows.append({"goal": goal_type, "latent": "sampled" if sample else "mean (ε = 0)",
                         "episodes": s["episodes"], "unscored": s["unscored_episodes"], "success_rate": s["success_rate"],
                         "baseline_success_rate": s["baseline_success_rate"],
                         "gap_points": 100.0 * (s["success_rate"] - s["baseline_success_rate"]),
                         "fall_rate": s["fall_rate"], "baseline_fall_rate": s["baseline_fall_rate"],
                         **({"per_skill": s["per_skill"]} if "per_skill" in s else {})})
    episodes = sum(r["episodes"] for r in rows)
    falls = sum(r["fall_rate"] * r["episodes"] for r in rows)
    summary = {"goal": "table", "goal_types": list(goal_types), "episodes": episodes,
               "fall_rate": falls / episodes if episodes else float("nan"),
               "smallest_gap_points": min((r["gap_points"] for r in rows), default=float("nan"))}
    return rows, summary


def _percent(value) -> str:
    return "-" if value is None or value != value else f"{100 * value:.0f}%"


def format_goal_summary(rows: list[dict], summary: dict) -> str:
    """The table, then the falls over all goal episodes and, where rows carry them, success per skill."""
    columns = [Column("goal", "goal", width=12, align="<"), Column("latent", "latent", width=12, align="<"),
               Column("episodes", "episodes", "d"), Column("unscored", "not scored", "d", 10),
               Column("success_rate", "with goal", _percent, 9),
               Column("baseline_success_rate", "zero goal", _percent, 9),
               Column("gap_points", "gap (points)", "+.0f", 12), Column("fall_rate", "falls", _percent, 6)]
    lines = format_table(rows, columns, rule=True)
    lines.append(f"falls over all {summary['episodes']} goal episodes: {_percent(summary['fall_rate'])}; smallest "
                 f"gap {summary['smallest_gap_points']:+.0f} points")
    mean = [r for r in rows if not r["latent"].startswith("sampled") and r.get("per_skill")]
    if mean:  # success per skill and goal type, with the prior's mean latent
        skills = sorted({k for r in mean for k in r["per_skill"]})
        table = [{"skill": k, **{r["goal"]: r["per_skill"].get(k) for r in mean}} for k in skills]
        pair = lambda v: "-" if v is None else (f"{_percent(v['success_rate'])} / "
                                                f"{_percent(v['baseline_success_rate'])}")
        lines += ["", "per skill, ε = 0 (with goal / zero goal):"]
        lines += format_table(table, [Column("skill", "skill", width=10, align="<")]
                              + [Column(r["goal"], r["goal"], pair, 11) for r in mean])
    return "\n".join(lines)
