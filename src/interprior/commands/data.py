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
