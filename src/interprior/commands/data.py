"""`interprior data ...`: tools for motion files (InterMimic format)."""

from __future__ import annotations

import argparse
import json

from interprior.data.inspect import format_inspect, has_errors, inspect_path

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


def run_inspect(args: argparse.Namespace) -> int:
    report = inspect_path(args.path, tolerance=args.tolerance / 100.0)
    print(json.dumps(report, indent=2) if args.json else format_inspect(report))
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
    from interprior.data.contacts import label_files, summarize_agreement

    rows = []
    for row in label_files(args.path, args.objects, out_dir=args.out, in_place=args.in_place, force=args.force):
        rows.append(row)
        if not args.json:
            print(_contacts_line(row), flush=True)
    summary = summarize_agreement(rows)
    if args.json:
        print(json.dumps({"clips": rows, "agreement": summary}, indent=2))
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
