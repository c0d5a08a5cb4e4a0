"""`interprior steer`: steer a Stage II prior with goals. By default a local web page (viser; `interprior.steer.page`)
with a JSON-lines goal stream beside it, stepping in real time until Ctrl-C; `--headless --script` plays a JSON-lines
goal script reproducibly, with a video of the goals and InterMimic-format clips of the simulated motion."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from interprior.assets.bodies import BODY_NAMES
from interprior.commands.args import non_negative_int, positive_float
from interprior.errors import DataFileError, InterpriorError, RenderingUnavailable
from interprior.eval.checkpoints import load_checkpoint_arg
from interprior.report import to_json
from interprior.steer.live import LiveLoop, next_take
from interprior.steer.recording import clip_name
from interprior.steer.script import MAX_SCRIPT_SECONDS, GoalScript, ScriptResult, play, read_script
from interprior.steer.steering import Steering
from interprior.steer.stream import GoalStream, is_loopback
from interprior.train.stopping import stop_on_signals
from interprior.viz.video import check_outputs

NO_VISER = ("the browser page needs viser and mjviser: pip install 'interprior[steer]' (or play a goal script "
            "without it: interprior steer --checkpoint PRIOR --headless --script goals.jsonl)")
DEFAULT_RECORD_DIR = "steer_recordings"


def register(sub) -> None:
    p = sub.add_parser(
        "steer",
        help="steer a Stage II prior with goals: a live web page, or headless a JSON-lines goal script",
        description="Runs one simulated humanoid with a Stage II prior at 30 Hz, starting at the first frame of a "
        "clip of the object. By default it serves a web page (the URL is printed) where gizmos, toggles and keys "
        "set the goals, and a JSON-lines goal stream on a TCP port for other programs, stepping in real time "
        "until Ctrl-C. With --headless it applies the goals of a JSON-lines script when the simulated time "
        "reaches each line's t: {\"t\": 0, \"object\": [x, y, z], \"object_yaw\": rad, \"left_hand\": [x, y, z], "
        "\"right_hand\": [x, y, z], \"contacts\": {\"L_Wrist\": true}, \"pelvis_heading\": rad, \"seconds\": 2}, "
        "{\"t\": 4, \"clear\": true}, {\"t\": 5, "
        "\"reset\": true}, {\"end\": 8}. Malformed lines are reported with their line number and skipped. "
        "Deterministic: the same seed gives the same result.",
    )
    p.add_argument("--checkpoint", required=True, help="Stage II prior: run directory or checkpoint file")
    p.add_argument("--embodiment", default=None, choices=BODY_NAMES, metavar="BODY",
                   help=f"the body the prior must drive ({', '.join(BODY_NAMES)}); a prior of another body is "
                   "refused (default: the prior's own body)")
    p.add_argument("--objects", default=None, help="objects folder (default: the run's)")
    p.add_argument("--object", dest="objects_named", action="append", default=None, metavar="NAME",
                   help="object to start at (a clip of it from the run's data folder); repeat or comma-separate "
                   "for several (a script's reset line may name them); default: the run's first clip's object")
    p.add_argument("--script", default=None, help="JSON-lines goal script (see the README, 'Steering (headless)')")
    p.add_argument("--headless", action="store_true", help="play --script without the browser page")
    p.add_argument("--host", default="127.0.0.1",
                   help="page and goal stream: address to listen on (default 127.0.0.1, this machine only; any "
                   "other is warned about: there is no login)")
    p.add_argument("--port", type=_port, default=8080,
                   help="page: HTTP port (default 8080; taken: the next free one; 0: any free one)")
    p.add_argument("--stream-port", type=_port, default=8081,
                   help="goal stream: TCP port for JSON-lines goals (default 8081; 0: any free one)")
    p.add_argument("--seconds", type=positive_float, default=None,
                   help="headless: simulated seconds (default: the script's end line, else its last line's time + "
                   "seconds); page: serve this long, then stop (default: until Ctrl-C)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the latent when --sample (default 0)")
    p.add_argument("--sample", action="store_true",
                   help="draw the prior's latent ε per episode from --seed instead of its mean (ε = 0)")
    p.add_argument("--runtime", choices=("torch", "onnx"), default="torch",
                   help="run the prior + decoder in PyTorch or, exported, in onnxruntime (faster at batch 1; needs "
                   "the onnx extra)")
    p.add_argument("--video", default=None, help="MP4 of the run with the goal targets drawn")
    p.add_argument("--record", default=None, metavar="DIR",
                   help="write the simulated motion as InterMimic-format clips, one per episode "
                   "(headless: DIR/<subject>_<object>_<NNN>.pt; page: recording from the start, saved with an "
                   "MP4 in DIR/take_NNN at Stop and save or at the end; the page's Record button saves there too, "
                   f"default ./{DEFAULT_RECORD_DIR})")
    p.add_argument("--force", action="store_true", help="overwrite existing --video / --record files")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def _load_prior(args):
    """The --checkpoint prior, refused when --embodiment names another body than the one it drives."""
    prior = load_checkpoint_arg(args.checkpoint, kind="prior")
    body = prior.config.env.variant
    if args.embodiment is not None and args.embodiment != body:
        raise InterpriorError(f"--embodiment {args.embodiment}: {args.checkpoint} is a prior of the {body!r} body; "
                              f"give a prior trained on {args.embodiment!r} clips (README: 'The Unitree G1')")
    return prior


def _port(text: str) -> int:
    port = non_negative_int(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"expected a port within [0, 65535], got {text}")
    return port


def run(args) -> int:
    if not args.headless:
        return run_page(args)
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
    prior = _load_prior(args)
    names = [n for arg in args.objects_named or () for n in arg.split(",")] or None
    steering = Steering(prior, objects_dir=args.objects, object_names=names, seed=args.seed, sample=args.sample,
                        record=bool(args.video or args.record), runtime=args.runtime)
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


# --- the page ------------------------------------------------------------------------------------------------------
def run_page(args) -> int:
    """Serve the page and the goal stream until Ctrl-C (or --seconds)."""
    if args.script:
        raise InterpriorError("--script plays with --headless; the page takes its goals from you and the goal stream")
    if args.video:
        raise InterpriorError("--video is for --headless; on the page, Record (or --record DIR) saves an MP4 with "
                              "the clips")
    record_dir = Path(args.record or DEFAULT_RECORD_DIR)
    if record_dir.exists() and not record_dir.is_dir():
        raise InterpriorError(f"--record: {record_dir} is a file; give a folder for the recordings")
    try:
        from interprior.steer.page import SteerPage
    except ImportError as err:
        raise InterpriorError(f"{NO_VISER} ({err})") from None
    video = _video_available()
    prior = _load_prior(args)
    names = [n for arg in args.objects_named or () for n in arg.split(",")] or None
    steering = Steering(prior, objects_dir=args.objects, object_names=names, seed=args.seed, sample=args.sample,
                        runtime=args.runtime)
    loop = LiveLoop(steering)
    if not is_loopback(args.host):
        loop.event("warning", f"listening on {args.host}, not only on this machine: whoever reaches ports "
                   f"{args.port} and {args.stream_port} there can watch and steer the simulation (there is no "
                   "login); an SSH tunnel to 127.0.0.1 is safer (README, 'Steering in the browser')")
    try:
        stream = GoalStream(loop, args.host, args.stream_port)
    except OSError as err:
        raise InterpriorError(f"goal stream: cannot listen on {args.host}:{args.stream_port} "
                              f"({err.strerror or err}); choose another --stream-port (0: any free one)") from None
    page = SteerPage(loop, args.host, args.port, record_dir=record_dir, video=video)
    if args.record:
        loop.start_recording()
    loop.start()
    stream.start()
    page.start()
    print(f"steer: page at {page.url}\nsteer: goal stream at {stream.address} (JSON lines)\nsteer: Ctrl-C stops",
          flush=True)
    stop = None
    try:
        with stop_on_signals():  # Ctrl-C, SIGTERM, SIGHUP: the recording is saved first
            _serve(args.seconds)
    except KeyboardInterrupt as err:
        print("steer: stopping", file=sys.stderr, flush=True)
        stop = err
    finally:
        page.stop()
        stream.stop()
        if loop.frame.recording:
            loop.save_recording(next_take(record_dir), video=video)
        loop.stop(timeout=600.0)
    s = loop.frame.state
    print(f"steer: stopped at {s.time:.1f} s of the episode; falls {steering.falls}, restarts "
          f"{steering.divergences}", flush=True)
    if stop is not None:
        raise stop  # exit 128 + the signal, as for every command
    return 0


def _serve(seconds: float | None) -> None:
    end = None if seconds is None else time.monotonic() + seconds
    while end is None or time.monotonic() < end:
        time.sleep(0.2)


def _video_available() -> bool:
    """Whether recordings can include an MP4 (offscreen OpenGL); says why not on stderr."""
    try:
        from interprior.viz.render import ensure_gl

        ensure_gl()
    except (RenderingUnavailable, ImportError) as err:
        print(f"steer: warning: recordings will hold clips only, no MP4: {err}", file=sys.stderr)
        return False
    return True
