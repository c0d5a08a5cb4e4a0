"""`interprior eval tracking | goals | curve`: InterMimic's full-reference tracking protocol for a trained expert,
goal following of a Stage II prior, and a run's learning curve."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import torch

from interprior.commands.args import non_negative_float, non_negative_int, positive_int
from interprior.commands.eval_protocol import register_protocol
from interprior.data.synth.dataset import clip_skills
from interprior.errors import InterpriorError
from interprior.eval.checkpoints import load_checkpoint_arg
from interprior.eval.curve import (bucket_means, chain_histories, curve_svg, format_curve, load_history, nice_width,
                                   series_names)
from interprior.eval.goal_table import TABLE_GOALS, evaluate_goal_table, format_goal_summary
from interprior.eval.goals import (
    FullGoalTracker,
    evaluate_diversity,
    evaluate_goals,
    format_diversity_table,
    format_goal_table,
)
from interprior.eval.tracking import compare_with_baseline, format_table, write_videos
from interprior.files import atomic_write_text
from interprior.mdp.goal_masks import EVAL_GOAL_TYPES
from interprior.mdp.goal_success import MIN_SNAPSHOT_MOVE
from interprior.models.prior_onnx import onnxruntime_problem
from interprior.report import to_json
from interprior.train.checkpoint import apply_overrides
from interprior.train.distill import student_env_config
from interprior.train.teacher import Teacher, TeacherPolicy
from interprior.viz.video import check_outputs


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
    p.add_argument("--checkpoint", required=True,
                   help="expert run directory (latest checkpoint), a checkpoint file, or an exported expert (train "
                   "export); or a Stage II prior run, tracked through the prior with every goal bit on")
    p.add_argument("--data", default=None, help="clips to evaluate: every clip of the folder (or the file), of every "
                   "object (default: the run's training selection)")
    p.add_argument("--objects", default=None, help="objects folder (default: the run's)")
    p.add_argument("--held-out", action="store_true",
                   help="evaluate the clips the run held out of training (train expert --hold-out) instead")
    p.add_argument("--rollouts", type=positive_int, default=1, help="rollouts per clip; the best counts (default 1)")
    p.add_argument("--no-baseline", action="store_true", help="skip the PD-replay baseline")
    p.add_argument("--sample", action="store_true",
                   help="a Stage II prior: sampled latents (ε drawn per episode) instead of the prior's mean (ε = 0)")
    p.add_argument("--video", default=None, help="directory for one MP4 per clip (<clip>.mp4)")
    p.add_argument("--force", action="store_true", help="overwrite existing --video files (checked before any "
                   "evaluation; without --force an existing file is an error)")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.add_argument("--skill-expert", action="append", default=[], metavar="SKILL=EXPERT",
                   help="an expert for the clips of one skill (by the data set's synth.json or retarget.json), "
                   "--checkpoint for the others: the teacher that `train prior --skill-expert` distils, evaluated "
                   "as one policy; repeatable")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="change the run's config for this evaluation, e.g. --set env.termination.hand_contact_frames=10")
    p.set_defaults(func=run_tracking)

    _register_goals(esub)
    _register_curve(esub)
    register_protocol(esub, _selection, _load_clips)


def run_tracking(args) -> int:
    if args.video and Path(args.video).is_file():
        raise InterpriorError(f"--video {args.video}: is a file; give a folder for one MP4 per clip")
    run = load_checkpoint_arg(args.checkpoint)
    cfg, state = apply_overrides(run.config, args.overrides), run.state
    if run.kind == "prior":  # a Stage II prior: tracked with every goal bit on, under the same rules
        model, env_cfg = FullGoalTracker(run.model, cfg, deterministic=not args.sample), student_env_config(cfg)
    else:
        if args.sample:
            raise InterpriorError("--sample is for a Stage II prior; an expert always acts with its mean action")
        model, env_cfg = run.model, cfg.env
    selection = _selection(cfg, args)
    if args.skill_expert:
        if run.kind == "prior":
            raise InterpriorError("--skill-expert is for an expert --checkpoint; a prior acts alone")
        model = TeacherPolicy(Teacher(args.checkpoint, args.skill_expert), selection.data)
    if args.held_out and not selection.holdout:
        raise InterpriorError(f"--held-out: {args.checkpoint} held no clips out of training (or --data replaced "
                              "its selection)")
    clips = _load_clips(selection, args, held_out=args.held_out)
    if args.video:  # before the evaluation: its results are not lost to an existing file at the end
        check_outputs([Path(args.video) / f"{c.name}.mp4" for c in clips], "--video", force=args.force)
    rows, summary, env, tracks = compare_with_baseline(model, clips, selection.objects, env_cfg,
                                                       rollouts=args.rollouts, baseline=not args.no_baseline,
                                                       record=args.video is not None,
                                                       skills=clip_skills(selection.data))
    if args.video:
        for out in write_videos(args.video, clips, env, tracks):
            print(f"video: {out}", file=sys.stderr)
    return _report(args, state, summary, "clips", rows, format_table)


def _selection(cfg, args):
    """The run's data selection, or `--data` (all its clips, of every object; the run's subject) and `--objects`
    instead."""
    selection = cfg.data
    if args.data is not None:
        selection = replace(cfg.data, data=args.data, object_name="all", clips=(), shortest=0, holdout=0)
    return replace(selection, objects=args.objects) if args.objects else selection


def _load_clips(selection, args, held_out: bool = False) -> list:
    """The selection's clips; with `--data`, the folder's clips left out (another subject) are named on stderr."""
    clips, left_out = selection.select(held_out=held_out)
    if args.data is not None and left_out:
        listed = ", ".join(f"{name} ({why})" for name, why in left_out.items())
        print(f"{args.data}: {len(left_out)} clip(s) left out: {listed}", file=sys.stderr)
    return clips


def _report(args, state, summary, key, rows, table) -> int:
    """Print the results: JSON with --json, else the table."""
    summary["checkpoint_samples"] = state.get("samples")
    if args.json:
        print(to_json({"summary": summary, key: rows}))
    else:
        print(table(rows, summary))
    return 0


# --- Stage II: goal following -----------------------------------------------------------------------------------------
def _register_goals(esub) -> None:
    p = esub.add_parser(
        "goals",
        help="goal following of a Stage II prior (snapshot, trajectory, contact, composed, full) vs the zero goal",
        description="Runs the prior + decoder (no encoder) on every clip from its first frame with goals of one "
        "type drawn with a fixed seed, and the same policy with the zero goal as the baseline. Success rules "
        "(thresholds in interprior.eval.goals and the README): snapshot = given positions within 15 cm and "
        "rotations within 0.5 rad at the target time (where the given parts have moved farthest from the start within "
        "the training's snapshot range; targets moving less than --min-move are not scored), trajectory = given positions within 25 cm at "
        "every step, contact = given contacts matched on >= 80% of steps, full = mean key-body and object errors "
        "<= 50 cm at every step; never fallen.",
    )
    p.add_argument("--checkpoint", required=True, help="Stage II run directory or checkpoint file")
    p.add_argument("--goal", choices=(*EVAL_GOAL_TYPES, "table"), required=True,
                   help="goal type (object: the object's pose as a snapshot; object_path: along a path; hand: wrist "
                   "positions), or table: " + ", ".join(TABLE_GOALS) + ", each with ε = 0 and sampled, one summary "
                   "table")
    p.add_argument("--data", default=None, help="clips to evaluate: every clip of the folder (or the file), of every "
                   "object (default: the run's training selection)")
    p.add_argument("--objects", default=None, help="objects folder (default: the run's)")
    p.add_argument("--rollouts", type=positive_int, default=1, help="episodes per clip, each with other goal draws")
    p.add_argument("--max-frames", type=positive_int, default=300, help="episode horizon in frames (default 300)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the goal draws (default 0)")
    p.add_argument("--sample", action="store_true", help="draw one latent noise per episode (default: ε = 0)")
    p.add_argument("--runtime", choices=("torch", "onnx"), default="torch",
                   help="run the prior + decoder in PyTorch or, exported, in onnxruntime (default torch)")
    p.add_argument("--latents", type=non_negative_int, default=0, metavar="K",
                   help="generativity instead: one fixed goal per clip, run with K sampled latents and with ε = 0; "
                   "prints their mean pairwise trajectory distance and goal success")
    p.add_argument("--min-move", type=non_negative_float, default=MIN_SNAPSHOT_MOVE, metavar="M",
                   help="snapshot, object and hand goals: score only targets whose given parts move at least M metres "
                   f"from the start (default {MIN_SNAPSHOT_MOVE}; a target where things already are is met by "
                   "standing still)")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.set_defaults(func=run_goals)


def run_goals(args) -> int:
    if args.rollouts < 1 or args.max_frames < 2:
        raise InterpriorError("--rollouts must be >= 1 and --max-frames >= 2")
    if args.runtime == "onnx":
        if onnxruntime_problem():
            raise InterpriorError(f"--runtime onnx: {onnxruntime_problem()}")
    if args.latents == 1 or args.latents < 0:
        raise InterpriorError(f"--latents must be 0 (off) or >= 2 to compare runs, got {args.latents}")
    if args.goal == "table" and (args.latents or args.sample):
        raise InterpriorError("--goal table runs every goal type with ε = 0 and sampled itself: drop "
                              + ("--latents" if args.latents else "--sample"))
    torch.set_num_threads(1)  # a few envs, many small kernels per step: more threads only add overhead
    run = load_checkpoint_arg(args.checkpoint, kind="prior")
    cfg, model, state = run.config, run.model, run.state
    selection = _selection(cfg, args)
    clips = _load_clips(selection, args)
    if args.goal == "table":
        rows, summary = evaluate_goal_table(model, cfg, clips, selection.objects, max_frames=args.max_frames,
                                            rollouts=args.rollouts, seed=args.seed, runtime=args.runtime,
                                            skills=clip_skills(selection.data), min_move=args.min_move)
        return _report(args, state, summary, "rows", rows, format_goal_summary)
    if args.latents:
        rows, summary = evaluate_diversity(model, cfg, clips, selection.objects, args.goal, latents=args.latents,
                                           max_frames=args.max_frames, seed=args.seed, runtime=args.runtime,
                                           min_move=args.min_move)
        table = format_diversity_table
    else:
        rows, summary = evaluate_goals(model, cfg, clips, selection.objects, args.goal, max_frames=args.max_frames,
                                       rollouts=args.rollouts, seed=args.seed, sample=args.sample,
                                       runtime=args.runtime, skills=clip_skills(selection.data),
                                       min_move=args.min_move)
        table = format_goal_table
    return _report(args, state, summary, "episodes", rows, table)


# --- learning curves ---------------------------------------------------------------------------------------------------
def _register_curve(esub) -> None:
    p = esub.add_parser(
        "curve",
        help="a run's learning curve: episode length, reward or losses against samples (table, JSON, SVG)",
        description="Reads the history stored in a run's latest checkpoint (or in the checkpoint file given) and "
        "prints its scalars averaged over sample buckets: an expert's reward and episode length, a prior's losses "
        "and episode length. --svg draws every scalar against samples, one panel each, at five times the table's "
        "resolution.",
    )
    p.add_argument("run", nargs="+", help="run directory (expert or prior), a checkpoint file inside one, or an "
                   "exported model (it keeps its history); several: one run continued by the next (--init), drawn "
                   "as one curve, each one's samples counted on from where the one before ended")
    p.add_argument("--every", type=non_negative_float, default=0, metavar="SAMPLES",
                   help="bucket width in samples, e.g. 5e5 (default: a round width giving about 10 rows)")
    p.add_argument("--svg", default=None, metavar="FILE", help="also write the curves as an SVG image")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=run_curve)


def run_curve(args) -> int:
    if args.every < 0 or (0 < args.every < 1):
        raise InterpriorError(f"--every is a bucket width in samples (>= 1), got {args.every:g}")
    history = chain_histories([load_history(r) for r in args.run])
    width = int(args.every) or nice_width(max(int(p["samples"]) for p in history))
    rows, names = bucket_means(history, width), series_names(history)
    if args.svg:
        out = Path(args.svg)
        fine = max(1, width // 5)  # the plot shows 5 points per table row
        svg = curve_svg(bucket_means(history, fine), names, title=f"{' + '.join(args.run)}: means per {fine:,} samples")
        atomic_write_text(out, svg)
        print(f"svg: {out}", file=sys.stderr)
    if args.json:
        print(to_json({"run": " + ".join(args.run), "bucket_samples": width, "rows": rows}))
        return 0
    print(f"{' + '.join(args.run)}: means per {width:,} samples")
    print(format_curve(rows, names))
    return 0
