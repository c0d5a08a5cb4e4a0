"""`interprior eval protocol`: Snap, Traj, Cont, Chain, RInit and Fail of one or more priors on the same clips and
seeds, side by side (markdown table, JSON, SVG bar chart). The protocol is `interprior.eval.protocol`."""

from __future__ import annotations

import sys

import torch

from interprior.commands.args import non_negative_int, positive_int
from interprior.eval.checkpoints import load_checkpoint_arg
from interprior.eval.protocol import (
    CHAIN_GAP,
    CHAIN_TARGETS,
    RINIT_FRAMES,
    evaluate_protocol,
    format_protocol_table,
    protocol_svg,
)
from interprior.files import atomic_write_text
from interprior.report import to_json
from interprior.viz.video import check_outputs


def register_protocol(esub, selection, load_clips) -> None:
    p = esub.add_parser(
        "protocol",
        help="the goal protocol (Snap, Traj, Cont, Chain, RInit, Fail) of one or more priors, side by side",
        description=f"Runs every checkpoint on the same clips and seeds: Snap/Traj/Cont as `eval goals`; Chain: "
        f"{CHAIN_TARGETS} snapshot goals {CHAIN_GAP} frames apart in one episode, each reached in turn; RInit: noisy "
        f"pushed and fallen starts, then an object snapshot goal {RINIT_FRAMES} frames ahead; Fail: the share of "
        "standing-start episodes that fall. Prints a markdown table (--json: JSON), --svg writes a bar chart.",
    )
    p.add_argument("--checkpoint", action="append", required=True,
                   help="a Stage II (or later) prior: run directory, checkpoint or exported file (repeatable)")
    p.add_argument("--data", default=None, help="clips to evaluate (default: the first checkpoint's clips)")
    p.add_argument("--objects", default=None, help="objects folder (default: the first checkpoint's)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of goals, noise and pushes (default 0)")
    p.add_argument("--max-frames", type=positive_int, default=150, help="Snap/Traj/Cont horizon (default 150)")
    p.add_argument("--svg", default=None, metavar="FILE", help="also write a bar chart of the table")
    p.add_argument("--force", action="store_true", help="overwrite --svg if it exists")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=lambda args: run_protocol(args, selection, load_clips))


def run_protocol(args, selection, load_clips) -> int:
    if args.svg:
        check_outputs([args.svg], "--svg", force=args.force)  # before the work, not after it
    torch.set_num_threads(1)
    runs = [load_checkpoint_arg(c, kind="prior") for c in args.checkpoint]
    chosen = selection(runs[0].config, args)
    clips = load_clips(chosen, args)
    rows = []
    for name, run in zip(args.checkpoint, runs):
        print(f"{name}: {len(clips)} clips ...", file=sys.stderr)
        rows.append({"checkpoint": name, "samples": run.state.get("samples"),
                     **evaluate_protocol(run.model, run.config, clips, chosen.objects, seed=args.seed,
                                         max_frames=args.max_frames)})
    if args.svg:
        atomic_write_text(args.svg, protocol_svg(rows))
    print(to_json({"rows": rows, "clips": [c.name for c in clips]}) if args.json else format_protocol_table(rows))
    return 0
