"""`interprior eval tracking`: InterMimic's full-reference tracking protocol for a trained expert."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def register(sub) -> None:
    ev = sub.add_parser("eval", help="evaluate trained policies", description="Evaluation protocols.")
    esub = ev.add_subparsers(dest="eval_command", metavar="PROTOCOL", required=True)
    p = esub.add_parser(
        "tracking",
        help="full-reference tracking: success, duration, E_h, E_o per clip, with the PD-replay baseline",
        description="Runs every clip from its first frame with deterministic actions (no noise, perturbations or "
        "randomization). Success = the clip's end reached without early termination; duration in frames; E_h = "
        "mean key-body position error (cm); E_o = mean object surface-point error (cm); best of --rollouts. The "
        "no-policy PD replay of each clip is shown alongside.",
    )
    p.add_argument("--checkpoint", required=True, help="run directory (latest checkpoint) or a checkpoint file")
    p.add_argument("--data", default=None, help="clips to evaluate (default: the run's training selection)")
    p.add_argument("--objects", default=None, help="objects folder (default: the run's)")
    p.add_argument("--rollouts", type=int, default=1, help="rollouts per clip; the best counts (default 1)")
    p.add_argument("--no-baseline", action="store_true", help="skip the PD-replay baseline")
    p.add_argument("--video", default=None, help="directory for one MP4 per clip")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.set_defaults(func=run_tracking)


def load_expert(checkpoint: str):
    """(config, model, state) from a run directory or a checkpoint file inside one."""
    from interprior.models.actor_critic import ActorCritic
    from interprior.train.checkpoint import RunDir, load_checkpoint
    from interprior.train.expert import ExpertConfig

    path = Path(checkpoint)
    run = RunDir(path if path.is_dir() else path.parent.parent)
    cfg = run.load_config(ExpertConfig)
    ckpt = run.latest() if path.is_dir() else path
    if ckpt is None:
        from interprior.errors import DataFileError

        raise DataFileError(path, "run directory has no checkpoint yet")
    state = load_checkpoint(ckpt)
    model = ActorCritic(state["obs_dim"], state["act_dim"], hidden=cfg.model.hidden,
                        critic_hidden=cfg.model.critic_hidden, log_std=cfg.model.log_std)
    model.load_state_dict(state["model"])
    model.eval()
    return cfg, model, state


def run_tracking(args) -> int:
    from dataclasses import replace

    from interprior.eval.tracking import evaluate_tracking
    from interprior.replay import physics_replay

    cfg, model, state = load_expert(args.checkpoint)
    selection = cfg.data if args.data is None else replace(cfg.data, data=args.data, clips=(), shortest=0)
    if args.objects:
        selection = replace(selection, objects=args.objects)
    clips = selection.load()
    env_cfg = replace(cfg.env, backend="cpu", device=None)
    results, env, tracks = evaluate_tracking(model, clips, selection.objects, env_cfg, rollouts=args.rollouts,
                                             record=args.video is not None)
    rows = []
    for clip, res in zip(clips, results):
        row = res.as_dict()
        if not args.no_baseline:
            base, _, _ = physics_replay(clip, selection.objects, variant=env.variant)
            row["baseline_duration"] = base.frames_before_fall
            row["baseline_e_h_cm"], row["baseline_e_o_cm"] = base.e_h_cm, base.e_o_cm
        rows.append(row)
    if args.video:
        from interprior.viz.render import write_video

        for clip in clips:
            out = Path(args.video) / f"{clip.name}.mp4"
            out.parent.mkdir(parents=True, exist_ok=True)
            import numpy as np

            qpos = np.stack(tracks[clip.name])
            write_video(out, env.scene.model, qpos, markers=[(clip.body_pos[: len(qpos)].double().numpy(),
                                                              (0.1, 0.9, 0.2, 0.55), 0.025)], fps=clip.fps)
            print(f"video: {out}", file=sys.stderr)
    summary = {
        "clips": len(rows), "success_rate": sum(r["success"] for r in rows) / len(rows),
        "mean_duration": sum(r["duration"] for r in rows) / len(rows),
        "mean_e_h_cm": sum(r["e_h_cm"] for r in rows) / len(rows),
        "mean_e_o_cm": sum(r["e_o_cm"] for r in rows) / len(rows),
        "checkpoint_samples": state.get("samples"),
    }
    if not args.no_baseline:
        summary["baseline_mean_duration"] = sum(r["baseline_duration"] for r in rows) / len(rows)
        summary["baseline_mean_e_h_cm"] = sum(r["baseline_e_h_cm"] for r in rows) / len(rows)
        summary["baseline_mean_e_o_cm"] = sum(r["baseline_e_o_cm"] or 0 for r in rows) / len(rows)
    if args.json:
        print(json.dumps({"summary": summary, "clips": rows}, indent=2))
        return 0
    head = f"{'clip':26s} {'frames':>6s} {'ok':>3s} {'dur':>5s} {'E_h':>6s} {'E_o':>6s}"
    print(head + ("" if args.no_baseline else f"  | {'PD dur':>6s} {'E_h':>6s} {'E_o':>6s}"))
    for r in rows:
        line = (f"{r['clip']:26s} {r['frames']:6d} {'yes' if r['success'] else 'no':>3s} {r['duration']:5d} "
                f"{r['e_h_cm']:6.1f} {r['e_o_cm']:6.1f}")
        if not args.no_baseline:
            line += f"  | {r['baseline_duration']:6d} {r['baseline_e_h_cm']:6.1f} {r['baseline_e_o_cm'] or 0:6.1f}"
        print(line)
    s = summary
    print(f"success {100 * s['success_rate']:.1f}%, duration {s['mean_duration']:.1f}, E_h {s['mean_e_h_cm']:.1f} cm, "
          f"E_o {s['mean_e_o_cm']:.1f} cm" + ("" if args.no_baseline else
          f"; PD replay: duration {s['baseline_mean_duration']:.1f}, E_h {s['baseline_mean_e_h_cm']:.1f} cm, "
          f"E_o {s['baseline_mean_e_o_cm']:.1f} cm"))
    return 0
