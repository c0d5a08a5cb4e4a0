"""`interprior demo`: the built-in default job - no downloads, no licensed data, a few minutes on 2 CPU cores.

Generates synthetic human-object clips the bundled expert never saw (same recipe as its training data, another
seed), runs the bundled expert on them in physics, prints per-clip tracking metrics next to the no-policy PD
replay, and writes a video. The expert was trained by `interprior train expert` with the committed recipes
`configs/demo_expert.json` and `configs/demo_expert_finetune.json` (see the README).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from interprior.commands.args import positive_int
from interprior.data.intermimic import load_clip
from interprior.data.synth.dataset import SynthOptions, clip_skills, write_dataset
from interprior.errors import InterpriorError
from interprior.eval.checkpoints import load_checkpoint_arg
from interprior.eval.goals import evaluate_goals, format_goal_table
from interprior.eval.tracking import compare_with_baseline, format_table, write_videos
from interprior.report import to_json

BUNDLED_EXPERT = "assets/data/demo_expert.pt"
BUNDLED_PRIOR = "assets/data/demo_prior.pt"  # shipped once a steering prior is trained (README model card)
DEMO_GOALS = ("object", "object_path")  # "put the box there", "move it along this path"
HELD_OUT_SEED_OFFSET = 1000  # demo clips: the training seed + this, never seen in training


def bundled_expert_path() -> Path:
    from importlib.resources import files

    return Path(str(files("interprior").joinpath(BUNDLED_EXPERT)))


def bundled_prior_path() -> Path | None:
    """The bundled Stage II prior, None while the package ships none."""
    from importlib.resources import files

    path = Path(str(files("interprior").joinpath(BUNDLED_PRIOR)))
    return path if path.is_file() else None


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="built-in demo: the bundled expert moves a box in physics on new synthetic clips (no downloads)",
        description="Generates synthetic clips (the humanoid grasping a box with both hands, lifting it, holding it and "
        "putting it down) with a seed "
        "the bundled expert never saw, runs the expert on them in physics (deterministic actions, no noise), prints "
        "success, duration, E_h and E_o per clip next to the PD replay of the same clips without a policy, and "
        "writes a video of the expert on the first clip. Everything is written under --out.",
    )
    p.add_argument("--out", default="interprior_demo", help="output folder (default ./interprior_demo)")
    p.add_argument("--clips", type=positive_int, default=3, help="number of held-out synthetic clips (default 3)")
    p.add_argument("--checkpoint", default=None, help="expert to run instead of the bundled one")
    p.add_argument("--prior", default=None,
                   help="Stage II prior (run or exported file) whose sparse-goal following the demo shows first "
                        "(default: the bundled prior, where the package ships one)")
    p.add_argument("--no-video", action="store_true", help="skip the video")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.clips < 1:
        raise InterpriorError(f"--clips must be at least 1, got {args.clips}")
    start = time.perf_counter()
    out = Path(args.out)
    checkpoint = Path(args.checkpoint) if args.checkpoint else bundled_expert_path()
    run = load_checkpoint_arg(checkpoint, kind="expert")
    cfg, model, state = run.config, run.model, run.state
    recipe = state.get("notes", {}).get("synth", {})
    seed = int(recipe.get("seed", 0)) + HELD_OUT_SEED_OFFSET
    data = out / "synthetic"
    # force: an earlier demo's set is replaced (only the files its synth.json lists), so the folder holds exactly
    # this run's clips; a folder holding anything else is refused
    opts = SynthOptions(out=data, clips=args.clips, seed=seed, skills=tuple(recipe.get("skills", ("pickup",))),
                        objects=tuple(recipe.get("objects", ("box",))), force=True)
    result = write_dataset(opts)
    clips = [load_clip(data / "clips" / f"{row['clip']}.pt") for row in result.rows]  # read back, as users' data is
    log = sys.stderr if args.json else sys.stdout
    print(f"{len(clips)} synthetic clips (seed {seed}, never seen in training) in {data}; expert "
          f"{checkpoint.name} trained on {state.get('samples') or 0:,} samples", file=log)
    goal_results = _prior_goals(args, clips, data / "objects", log)
    rows, summary, env, tracks = compare_with_baseline(model, clips, data / "objects", cfg.env,
                                                       record=not args.no_video)
    result = {"clips": rows, "summary": summary, "data": str(data), "checkpoint": str(checkpoint),
              "goals": goal_results}
    if not args.no_video:
        result["video"] = [str(p) for p in write_videos(out, clips[:1], env, tracks)]
    result["seconds"] = round(time.perf_counter() - start, 1)
    if args.json:
        print(to_json(result))
        return 0
    print(format_table(rows, summary))
    video = f"; video of the expert (green dots: the reference): {result['video'][0]}" if "video" in result else ""
    print(f"done in {result['seconds']} s{video}")
    return 0


def _prior_goals(args, clips, objects, log) -> dict:
    """The prior following object-only goals (a snapshot, a path) on the demo clips, next to the same prior with
    the zero goal; {} without a prior. Tables go to `log` (stdout, or stderr with --json)."""
    source = args.prior or bundled_prior_path()
    if source is None:
        return {}
    prior = load_checkpoint_arg(source, kind="prior")
    results = {}
    for goal in DEMO_GOALS:
        rows, summary = evaluate_goals(prior.model, prior.config, clips, objects, goal, max_frames=150,
                                       skills=clip_skills(str(Path(objects).parent / "clips")))
        results[goal] = {"episodes": rows, "summary": summary}
        print(format_goal_table(rows, summary) + "\n", file=log)
    return results
