"""`interprior data ...`: tools for motion files (InterMimic format)."""

from __future__ import annotations

import argparse
from pathlib import Path

from interprior.commands.args import non_negative_int, positive_int
from interprior.data.contacts import label_files, summarize_agreement
from interprior.data.inspect import format_inspect, has_errors, inspect_path
from interprior.data.retarget.checks import FIGURES, RETARGET_LIMITS
from interprior.data.retarget.run import EMBODIMENTS, RetargetOptions, retarget_dir
from interprior.data.synth.dataset import SynthOptions, write_dataset
from interprior.data.synth.objects import ALL_OBJECTS, OBJECT_NAMES
from interprior.data.synth.quality import LIMITS, passes
from interprior.data.synth.recipe import load_recipe
from interprior.data.synth.skills import ALL_SKILLS, SKILLS
from interprior.errors import InterpriorError
from interprior.report import Column, format_table, to_json

INSPECT_DESCRIPTION = """\
Load InterMimic motion files (.pt, float32 [T, 591], 30 fps) and report, per clip: frames, duration, subject and
object (from the file name), contact statistics (fraction of frames with the object-contact flag; per body
group - left hand, right hand, feet, other - the fraction of +1 "in contact" and -1 "far away" labels) and
validation findings:

  error    the file cannot be loaded (missing, truncated, wrong shape, NaN/inf, zero or non-unit quaternions,
           all-zero frames inside the clip), or contact labels outside {-1, 0, 1} / object flag outside {0, 1}
  warning  body positions that contradict the file's own rotations (a bone offset to the parent that varies by
           more than --tolerance over the clip; the bodies and their worst deviation are named), root that is
           not body 0
  info     repairs made on load (leading/trailing all-zero frames dropped), feet below z = -0.05 m

Exit status: 0 when no file has an error finding, 1 when any does, 2 when PATH does not exist or holds no .pt
files.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="inspect and validate motion files",
        description="Tools for InterMimic-format motion files.",
    )
    commands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    inspect = commands.add_parser(
        "inspect",
        help="summarise and validate a motion file or a folder of them",
        description=INSPECT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inspect.add_argument("path", metavar="PATH", help="a .pt motion file, or a folder of .pt files (not recursive)")
    inspect.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    inspect.add_argument(
        "--tolerance", type=_positive_cm, default=1.0, metavar="CM",
        help="how far (cm) a body's offset to its parent may vary over a clip before it is reported (default 1)",
    )
    inspect.set_defaults(func=run_inspect)
    _register_contacts(commands)
    _register_synth(commands)
    _register_retarget(commands)


def run_inspect(args: argparse.Namespace) -> int:
    report = inspect_path(args.path, tolerance=args.tolerance / 100.0)
    print(to_json(report) if args.json else format_inspect(report))
    return 1 if has_errors(report) else 0


def _positive_cm(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 cm, got {text}")
    return value


CONTACTS_DESCRIPTION = """\
Infer reference contact labels from kinematics (InterMimic supplementary C.1) and write them into motion files.

For every clip, each body's collision geom (humanoid spec, capsules stretched to the clip's bones) is placed with
the clip's body rotations and its distance to the object's 1024 surface points is measured. The object flag
("interaction") holds when the nearest body is within 10 cm and (i) the object is airborne and not in free fall,
(ii) it moves on the ground in a way friction alone cannot explain, or (iii) a body is within 2 cm. Labels: +1
where a body is within (nearest distance + 1 cm) during interaction, -1 beyond 10 cm (plus a per-body allowance for
flesh; feet exempt while planted on the ground), else 0. Hands follow the SMPL-X segmentation of the released labels
(thumb = wrist label, the other 12 finger segments share one label). Details: interprior.data.contacts.

Clips without labels (all label columns and the object flag zero) are labelled; clips that have labels are
relabelled only with --force, and otherwise copied unchanged into --out (left alone with --in-place). For clips
that have labels the agreement of the inferred labels with the stored ones is printed per body group (fraction of
frames x bodies with equal labels; precision / recall of +1) and pooled over all clips.

The object is the second-to-last '_' part of the file name, its mesh <objects>/<name>/<name>.obj. Files are written
atomically. Leading/trailing all-zero frames (a repaired defect of some files) are not written back.

Exit status: 0 when every clip was processed, 1 when some clip failed (its error is printed), 2 when PATH or the
output folder cannot be used.
"""


def _register_contacts(commands) -> None:
    contacts = commands.add_parser(
        "contacts",
        help="infer reference contact labels from kinematics and write them into motion files",
        description=CONTACTS_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    contacts.add_argument("path", metavar="PATH", help="a .pt motion file, or a folder of .pt files (not recursive)")
    contacts.add_argument("--objects", required=True, metavar="DIR",
                          help="objects folder holding <name>/<name>.obj meshes")
    where = contacts.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", metavar="DIR", help="folder to write the clips to (must not be the input folder)")
    where.add_argument("--in-place", action="store_true", help="overwrite the input files (atomic writes)")
    contacts.add_argument("--force", action="store_true",
                          help="relabel clips that already have labels (default: only clips without labels)")
    contacts.add_argument("--json", action="store_true", help="print the per-clip report as JSON")
    contacts.set_defaults(func=run_contacts)


def run_contacts(args: argparse.Namespace) -> int:
    rows = []
    for row in label_files(args.path, args.objects, out_dir=args.out, in_place=args.in_place, force=args.force):
        rows.append(row)
        if not args.json:
            print(_contacts_line(row), flush=True)
    summary = summarize_agreement(rows)
    if args.json:
        print(to_json({"clips": rows, "agreement": summary}))
    elif summary:
        print("agreement with stored labels, all clips pooled:")
        for group, values in summary.items():
            if group == "object_flag":
                print(f"  {'object flag':12s} {values['agreement']:.1%} of {values['count']} frames")
            else:
                print(f"  {group:12s} {values['agreement']:.1%}  +1 precision {_pct(values['precision'])}"
                      f"  recall {_pct(values['recall'])}")
    return 1 if any(r["action"] == "error" for r in rows) else 0


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{x:.1%}"


def _contacts_line(row: dict) -> str:
    if row["action"] == "error":
        return f"{row['clip']}: error: {row['error']}"
    line = f"{row['clip']}: {row['frames']} frames, {row['action']}"
    if "agreement" in row:
        a = row["agreement"]
        parts = " ".join(f"{k} {v['agreement']:.1%}" for k, v in a.items())
        line += f"; agreement {parts}, object flag {row['object_flag_agreement']:.1%}"
    return line


SYNTH_DESCRIPTION = """\
Generate synthetic human-object interaction clips of the default humanoid in the InterMimic file format, with the
objects' meshes, from a seed (no downloads):

  DIR/clips/sub0_<object>_<NNN>.pt     motion files (float32 [T, 591], 30 fps, 4-15 s), contact labels included
  DIR/objects/<object>/<object>.obj    meshes (vertex-mean centred; density in <object>.json)
  DIR/synth.json                       what each clip shows (skill, object, defects) and, with --check, its quality

DIR must be new or empty, or hold an earlier synthetic set: that one is replaced with --force (only the files its
synth.json lists are removed); a folder holding other files is refused.

Skills (cycled over the clips, objects cycled independently, so any max(#skills, #objects) consecutive clips
cover all skills and objects). Default (4-8 s): reach (walk up, reach down, grasp with both hands, let go), pickup
(grasp, lift over >= 1 s, hold, put down), carry (pick up, carry 2-3 steps, put down), push (push it along the
floor over 2-3 steps). Steering skills (opt-in, 5-15 s): walk (walk 1-4 m up to the object from any heading,
stop near it), locomote (walk, turn and stop; the object untouched), touch (one hand or both on its top or side),
lift_hold (lift to waist-chest height, hold >= 1 s, put down), place (carry it 1-3 m in any direction, put it
down), push_along (push it 0.8-2.2 m along a straight or curved path). Objects: box (0.4 m cube, fixed),
smallbox, bigbox, cylinder, stool (default), heavybox, longbox (opt-in; sizes drawn from the seed). Placement,
direction and timing are drawn per clip; the same seed always gives the same clips, whatever --clips or
--workers.

--recipe FILE takes skills, objects, clip length range, seed and clip count from a committed recipe
(configs/data/steer.json: the steering set); --eval makes the recipe's evaluation set (its other seed) instead of
its training set; --skills, --objects, --seed and --clips given too override the recipe.

Motion: keyframed postures and footsteps, solved by whole-body inverse kinematics (mink) on the simulator's own
humanoid model: feet flat and planted, palms on the object's surfaces, centre of mass over the feet, joints within
natural ranges, slow and statically balanced. The object rests on the floor or moves rigidly with the hands.

--defects damages every clip like imperfect capture (the clean clip of the same seed is unchanged; the defects go
into the file name, e.g. sub0_box_000-floating.pt): floating (object 3-6 cm off hands/floor over part of the clip),
penetration (object 3-5 cm into the floor and 2-4 cm into a hand), jitter (noise on root, joints, object),
flat-hands (finger curl removed).

--check measures every clip (validator errors; feet below the floor; foot sliding while planted; distance of the
hands to the object surface during contact; object neither on the floor nor held; joint angles outside the
humanoid's ranges; ...) and prints the maxima over all clips with the acceptance limits, then per skill (with a
recipe: clips outside its length range count as a failure).

Exit status: 0 on success, 1 when --check finds a clean clip over a limit, 2 for unusable arguments.
"""


def _register_synth(commands) -> None:
    synth = commands.add_parser(
        "synth",
        help="generate synthetic human-object interaction clips and object meshes (no downloads)",
        description=SYNTH_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    synth.add_argument("--out", required=True, metavar="DIR", help="output folder (clips/, objects/, synth.json)")
    synth.add_argument("--clips", type=positive_int, default=None, metavar="N",
                       help="number of clips (default 20, or the recipe's)")
    synth.add_argument("--seed", type=non_negative_int, default=None, metavar="S",
                       help="random seed (default 0, or the recipe's)")
    synth.add_argument("--skills", default=None, metavar="LIST",
                       help=f"comma-separated skills (default: {','.join(SKILLS)}; also {','.join(ALL_SKILLS[len(SKILLS):])})")
    synth.add_argument("--objects", default=None, metavar="LIST",
                       help=f"comma-separated objects (default: {','.join(OBJECT_NAMES)}; also "
                            f"{','.join(ALL_OBJECTS[len(OBJECT_NAMES):])})")
    synth.add_argument("--recipe", default=None, metavar="FILE",
                       help="a data set recipe (JSON: skills, objects, seconds, seed, clips, eval), e.g. "
                            "configs/data/steer.json")
    synth.add_argument("--eval", action="store_true", help="with --recipe: make its evaluation set (its eval seed "
                                                           "and clip count)")
    synth.add_argument("--defects", default="", metavar="LIST",
                       help="comma-separated defects to inject: floating,penetration,jitter,flat-hands")
    synth.add_argument("--check", action="store_true", help="measure every clip and print the maxima")
    synth.add_argument("--workers", type=positive_int, default=1, metavar="W",
                       help="worker processes (default 1; each runs single-threaded)")
    synth.add_argument("--force", action="store_true",
                       help="replace an earlier synthetic set in DIR (only the files its synth.json lists are removed)")
    synth.add_argument("--json", action="store_true", help="print the result as JSON")
    synth.set_defaults(func=run_synth)


SKILL_COLUMNS = [Column("skill", "skill", align="<"), Column("clips", "clips", "d"),
                 Column("seconds", "seconds", lambda v: f"{v[0]:.1f}-{v[1]:.1f}"),
                 *[Column(key, header, lambda v: "-" if v is None else f"{v['max']:.2f}") for key, header in (
                     ("foot_below_floor_cm", "foot below"), ("foot_slide_cm", "foot slide"),
                     ("hand_gap_cm", "hand gap"), ("hand_penetration_cm", "hand pen."),
                     ("body_penetration_cm", "body pen."), ("object_float_cm", "obj. float"),
                     ("object_below_floor_cm", "obj. below"), ("grip_slip_cm", "grip slip"),
                     ("joint_range_excess_deg", "joint exc."))]]


def _print_check(summary: dict, clips: int, seconds) -> None:
    """The --check report: maxima over all clips with their limits, then per skill (cm; joints in degrees)."""
    print(f"maxima over {clips} clips (limit where one applies):")
    for key, value in summary.items():
        if key == "validation_errors":
            print(f"  {'validation errors':24s} {value}")
        elif key == "clips_outside_seconds":
            print(f"  {'clips outside ' + f'{seconds[0]:g}-{seconds[1]:g} s':24s} {value}")
        elif key != "per_skill":
            limit = f"(limit {LIMITS[key]:g})" if key in LIMITS else ""
            print(f"  {key:24s} {value['max']:8.3f} {limit:14s} {value['clip']}")
    rows = [{"skill": skill, **values} for skill, values in summary.get("per_skill", {}).items()]
    if rows:
        print("per skill (maxima; cm, joint excess in degrees):")
        for line in format_table(rows, SKILL_COLUMNS):
            print("  " + line)


def _split_list(text: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if text is None:
        return default
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _synth_options(args: argparse.Namespace) -> SynthOptions:
    """Options from the command line over the recipe's (when --recipe) over the defaults."""
    from pathlib import Path

    if args.eval and not args.recipe:
        raise InterpriorError("--eval: needs --recipe (the recipe names the evaluation set's seed and clips)")
    recipe = load_recipe(args.recipe, "eval" if args.eval else "train") if args.recipe else None
    base = recipe or {"skills": SKILLS, "objects": OBJECT_NAMES, "seconds": None, "seed": 0, "clips": 20}
    note = None if recipe is None else {k: recipe[k] for k in ("name", "path", "part")}
    return SynthOptions(out=Path(args.out), clips=args.clips if args.clips is not None else base["clips"],
                        seed=args.seed if args.seed is not None else base["seed"],
                        skills=_split_list(args.skills, base["skills"]),
                        objects=_split_list(args.objects, base["objects"]),
                        defects=_split_list(args.defects, ()), check=args.check, workers=args.workers,
                        force=args.force, seconds=base["seconds"], recipe=note)


def run_synth(args: argparse.Namespace) -> int:
    opts = _synth_options(args)

    def progress(row: dict) -> None:
        if not args.json:
            print(f"{row['clip']}: {row['skill']} {row['object']}, {row['frames']} frames ({row['seconds']:.1f} s)",
                  flush=True)

    result = write_dataset(opts, progress)
    failed = passes(result.summary) if args.check else []
    if args.check and result.summary.get("validation_errors"):
        failed.append("validation_errors")
    if args.check and result.summary.get("clips_outside_seconds"):
        failed.append("clips_outside_seconds")
    if args.json:
        print(to_json({"out": str(opts.out), "seconds": round(result.seconds, 1), "clips": result.rows,
                       "check": result.summary, "over_limits": failed}))
    else:
        print(f"{len(result.rows)} clips written to {opts.out / 'clips'} in {result.seconds:.1f} s "
              f"(objects in {opts.out / 'objects'}, manifest {opts.out / 'synth.json'})")
        if args.check:
            _print_check(result.summary, len(result.rows), opts.seconds)
            if failed:
                print("over the limits: " + ", ".join(failed) + (" (expected: defects were injected)"
                                                                   if opts.defects else ""))
    return 1 if failed and not opts.defects else 0


RETARGET_DESCRIPTION = """\
Retarget human clips (SMPL-X, InterMimic files: DIR/clips/*.pt, or DIR/*.pt, with the objects' meshes in
DIR/objects) to a robot, by whole-body inverse kinematics (mink) on its own model, frame by frame:

  DIR2/clips/<name>.pt   the robot's motion files (interprior-motion-1; `interprior data inspect` reads them)
  DIR2/objects/          a copy of DIR/objects (train with --data DIR2/clips --objects DIR2/objects)
  DIR2/retarget.json     the source, the options and per clip its figures (below)

The human is scaled by the robot's standing pelvis height over the human's, about the object's near side; the
object keeps its size, path and rotation (a lifted object's height above its resting height is scaled the same).
Planted feet stay flat and still, hands in the source's contact phases (object flag and the hand labelled +1)
touch the object's surface with the palm toward it, the centre of mass stays over the planted feet, and no joint
leaves its range. Contact labels: each robot body takes those of its nearest SMPL-X analogues.

--check prints per clip and over all clips (and per skill for a synthetic set): foot sliding while planted, hands'
distance to the object surface in contact phases, the object floating (neither on the floor nor held), joint
range excess, with their limits (and, without limits: feet below the floor, hand and body penetration).

Exit status: 0 on success, 1 when --check finds a figure over its limit, 2 for unusable arguments.
"""

RETARGET_COLUMNS = [
    Column("clip", "clip", align="<"),
    *[Column(key, header, lambda v: "-" if v is None else f"{v:.2f}") for key, header in (
        ("foot_slide_cm", "foot slide"), ("hand_gap_cm", "hand gap"), ("object_float_cm", "obj. float"),
        ("joint_range_excess_deg", "joint exc."), ("foot_below_floor_cm", "foot below"),
        ("hand_penetration_cm", "hand pen."), ("body_penetration_cm", "body pen."))]]


def _register_retarget(commands) -> None:
    retarget = commands.add_parser(
        "retarget", help="retarget human clips to a robot (the Unitree G1)", description=RETARGET_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    retarget.add_argument("source", metavar="DIR", help="a data set folder: clips/ (or .pt files) and objects/")
    retarget.add_argument("--embodiment", required=True, metavar="BODY",
                          help=f"the robot to retarget to ({', '.join(EMBODIMENTS)})")
    retarget.add_argument("--out", required=True, metavar="DIR2", help="output folder (new or empty)")
    retarget.add_argument("--check", action="store_true", help="print the figures per clip and overall")
    retarget.add_argument("--force", action="store_true", help="replace an earlier retarget output in DIR2")
    retarget.set_defaults(func=run_retarget)


def run_retarget(args: argparse.Namespace) -> int:
    opts = RetargetOptions(source=Path(args.source), out=Path(args.out), embodiment=args.embodiment,
                           check=args.check, force=args.force)

    def progress(row: dict) -> None:
        f = row["figures"]
        print(f"{row['clip']}: {row['frames']} frames, scale {row['scale']:.3f}, foot slide {f['foot_slide_cm']:.2f}"
              f" cm, hand gap {f['hand_gap_cm']:.2f} cm ({row['solve_seconds']:.1f} s)", flush=True)

    result = retarget_dir(opts, progress)
    print(f"{len(result.rows)} clips retargeted to {opts.embodiment} in {result.seconds:.1f} s: {opts.out / 'clips'}"
          f" (objects {opts.out / 'objects'}, manifest {opts.out / 'retarget.json'})")
    if not args.check:
        return 0
    print("per clip (cm; joint excess in degrees):")
    for line in format_table([{"clip": r["clip"], **r["figures"]} for r in result.rows], RETARGET_COLUMNS):
        print("  " + line)
    print(f"over {len(result.rows)} clips: max (limit)  mean  clip of the max")
    for key in FIGURES:
        value = result.summary[key]
        limit = f"({RETARGET_LIMITS[key]:g})" if key in RETARGET_LIMITS else ""
        print(f"  {key:24s} {value['max']:8.3f} {limit:7s} {value['mean']:8.3f}  {value['clip']}")
    print(f"  {'validation errors':24s} {result.summary['validation_errors']:8d}")
    skills = [{"clip": skill, **{k: v["max"] for k, v in values.items() if k in FIGURES}}
              for skill, values in result.summary.get("per_skill", {}).items()]
    if skills:
        print("per skill (maxima):")
        for line in format_table(skills, [Column("clip", "skill", align="<"), *RETARGET_COLUMNS[1:]]):
            print("  " + line)
    if result.over_limits:
        print("over the limits: " + ", ".join(result.over_limits))
    return 1 if result.over_limits else 0
