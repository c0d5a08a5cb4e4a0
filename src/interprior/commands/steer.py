"""`interprior steer`: steer a Stage II prior with goals. Headless for now: a JSON-lines goal script played
reproducibly, with a video of the goals and InterMimic-format clips of the simulated motion."""

from __future__ import annotations

from pathlib import Path

from interprior.commands.args import non_negative_int, positive_float
from interprior.errors import DataFileError, InterpriorError
from interprior.eval.checkpoints import load_checkpoint_arg
from interprior.report import to_json
from interprior.steer.recording import clip_name
from interprior.steer.script import MAX_SCRIPT_SECONDS, GoalScript, ScriptResult, play, read_script
from interprior.steer.steering import Steering
from interprior.viz.video import check_outputs

PAGE_MISSING = ("the browser page is not available yet; play a goal script instead: interprior steer --checkpoint "
                "PRIOR --headless --script goals.jsonl [--video out.mp4] [--record DIR]")


def register(sub) -> None:
    p = sub.add_parser(
        "steer",
        help="steer a Stage II prior with goals (headless: a JSON-lines goal script)",
        description="Runs one simulated humanoid with a Stage II prior at 30 Hz, starting at the first frame of a "
        "clip of the object, and applies the goals of a JSON-lines script when the simulated time reaches each "
        "line's t: {\"t\": 0, \"object\": [x, y, z], \"object_yaw\": rad, \"left_hand\": [x, y, z], \"right_hand\": "
        "[x, y, z], \"contacts\": {\"L_Wrist\": true}, \"seconds\": 2}, {\"t\": 4, \"clear\": true}, {\"t\": 5, "
        "\"reset\": true}, {\"end\": 8}. Malformed lines are reported with their line number and skipped. "
        "Deterministic: the same seed gives the same result.",
    )
    p.add_argument("--checkpoint", required=True, help="Stage II prior: run directory or checkpoint file")
    p.add_argument("--objects", default=None, help="objects folder (default: the run's)")
    p.add_argument("--object", dest="objects_named", action="append", default=None, metavar="NAME",
                   help="object to start at (a clip of it from the run's data folder); repeat or comma-separate "
                   "for several (a script's reset line may name them); default: the run's first clip's object")
    p.add_argument("--script", default=None, help="JSON-lines goal script (see the README, 'Steering (headless)')")
    p.add_argument("--headless", action="store_true", help="play --script without the browser page")
    p.add_argument("--seconds", type=positive_float, default=None,
                   help="simulated seconds (default: the script's end line, else its last line's time + seconds)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the latent when --sample (default 0)")
    p.add_argument("--sample", action="store_true",
                   help="draw the prior's latent ε per episode from --seed instead of its mean (ε = 0)")
    p.add_argument("--video", default=None, help="MP4 of the run with the goal targets drawn")
    p.add_argument("--record", default=None, metavar="DIR",
                   help="write the simulated motion as InterMimic-format clips, one per episode "
                   "(DIR/<subject>_<object>_<NNN>.pt)")
    p.add_argument("--force", action="store_true", help="overwrite existing --video / --record files")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    if not args.headless:
        raise InterpriorError(PAGE_MISSING)
    if not args.script:
        raise InterpriorError("--headless needs --script FILE (a JSON-lines goal script)")
    if not Path(args.script).is_file():
        raise DataFileError(args.script, "no such goal script" if not Path(args.script).exists() else
                            "is not a file; give a JSON-lines goal script")
    if args.seconds is not None and args.seconds > MAX_SCRIPT_SECONDS:
        raise InterpriorError(f"--seconds must be at most {MAX_SCRIPT_SECONDS:g}, got {args.seconds:g}")
    if args.record and Path(args.record).exists() and not Path(args.record).is_dir():
        raise InterpriorError(f"--record: {args.record} is a file; give a folder for the clips")
    if args.video:  # before the run: its results are not lost to an existing file or missing GL at the end
        check_outputs([args.video], "--video", force=args.force)
        from interprior.viz.render import ensure_gl

        ensure_gl()
    prior = load_checkpoint_arg(args.checkpoint, kind="prior")
    names = [n for arg in args.objects_named or () for n in arg.split(",")] or None
    steering = Steering(prior, objects_dir=args.objects, object_names=names, seed=args.seed, sample=args.sample,
                        record=bool(args.video or args.record))
    script = read_script(args.script, steering.names)
    if args.record:
        check_outputs(_planned_clips(steering, script, args.seconds, args.record), "--record", force=args.force)
    result = play(steering, script, seconds=args.seconds)
    outputs = {}
    recording = steering.record()
    if args.record:
        outputs["clips"] = [str(p) for p in recording.write_clips(args.record, force=args.force)]
    if args.video:
        outputs["video"] = str(recording.write_video(args.video, steering.model))
    if args.json:
        print(to_json({"summary": result.summary(), "final": result.final.to_dict(), "outputs": outputs}))
    else:
        print(format_summary(result, steering.object_name, outputs))
    return 0


def _planned_clips(steering: Steering, script: GoalScript, seconds: float | None, folder: str) -> list[Path]:
    """The clip files a run of `script` writes when nothing diverges: one per episode (the start, each reset)."""
    end = script.duration() if seconds is None else seconds
    current, paths = steering.object_name, []
    resets = [line for line in script.lines if line.kind == "reset" and line.t <= end]
    for index, line in enumerate([None] + resets):
        current = current if line is None or line.object_name is None else line.object_name
        paths.append(Path(folder) / f"{clip_name(steering.subject, current, index)}.pt")
    return paths


def format_summary(result: ScriptResult, object_name: str, outputs: dict) -> str:
    s = result.summary()
    rate = f", {s['steps_per_s']:.0f} steps/s" if s["steps_per_s"] else ""
    lines = [(f"steer: {s['seconds']:.2f} s simulated ({s['steps']} control steps{rate}); script lines: "
              f"{s['lines_applied']} applied, {s['lines_skipped']} skipped, {s['lines_not_reached']} after the end")]
    obj = ", ".join(f"{v:.3f}" for v in s["final_object"])
    if s["last_object_goal"] is None:
        tail = "no object goal given"
    else:
        goal = ", ".join(f"{v:.3f}" for v in s["last_object_goal"])
        tail = f"last object goal [{goal}], error {s['object_error_cm']:.1f} cm"
    lines.append(f"object {object_name}: final [{obj}]; {tail}")
    lines.append(f"falls {s['falls']}{' (fallen at the end)' if s['fallen_at_end'] else ''}; "
                 f"diverged {s['divergences']}")
    if "video" in outputs:
        lines.append(f"video: {outputs['video']}")
    for clip in outputs.get("clips", ()):
        lines.append(f"clip: {clip}")
    if "clips" in outputs and not outputs["clips"]:
        lines.append("clips: none (no episode of 2 frames or more)")
    return "\n".join(lines)
