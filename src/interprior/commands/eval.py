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
    p.add_argument("--checkpoint", required=True, help="run directory (latest checkpoint), a checkpoint file, or an exported expert (train export)")
    p.add_argument("--data", default=None, help="clips to evaluate (default: the run's training selection)")
    p.add_argument("--objects", default=None, help="objects folder (default: the run's)")
    p.add_argument("--rollouts", type=int, default=1, help="rollouts per clip; the best counts (default 1)")
    p.add_argument("--no-baseline", action="store_true", help="skip the PD-replay baseline")
    p.add_argument("--video", default=None, help="directory for one MP4 per clip")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.set_defaults(func=run_tracking)


def load_expert(checkpoint: str):
    """(config, model, state) from a run directory, a checkpoint file inside one, or an exported file."""
    from interprior.train.export import load_expert as load

    return load(checkpoint)


def run_tracking(args) -> int:
    from dataclasses import replace

    from interprior.eval.tracking import compare_with_baseline, format_table, write_videos

    cfg, model, state = load_expert(args.checkpoint)
    selection = cfg.data if args.data is None else replace(cfg.data, data=args.data, clips=(), shortest=0)
    if args.objects:
        selection = replace(selection, objects=args.objects)
    clips = selection.load()
    rows, summary, env, tracks = compare_with_baseline(model, clips, selection.objects, cfg.env,
                                                       rollouts=args.rollouts, baseline=not args.no_baseline,
                                                       record=args.video is not None)
    summary["checkpoint_samples"] = state.get("samples")
    if args.video:
        for out in write_videos(args.video, clips, env, tracks):
            print(f"video: {out}", file=sys.stderr)
    if args.json:
        print(json.dumps({"summary": summary, "clips": rows}, indent=2))
        return 0
    print(format_table(rows, summary))
    return 0
