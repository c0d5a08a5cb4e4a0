"""`interprior deploy`: a Stage II prior as an ONNX graph + contract + scene that runs without interprior
(`interprior.deploy`), and the standalone loop that runs such a folder (`examples/deploy_loop.py`)."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

from interprior.deploy.export import EXAMPLE, export_deploy, read_contract
from interprior.errors import InterpriorError


def register(sub) -> None:
    p = sub.add_parser(
        "deploy",
        help="export a Stage II prior to ONNX + a contract + its scene, and run it without interprior",
        description="A deploy folder holds policy.onnx (MuJoCo-level state and a goal in, PD joint targets out), "
        "policy.json (the contract: inputs, joint order, addresses, PD gains, control rate, goal bits, contact and "
        "action rules) and scene.xml (+ assets/). examples/deploy_loop.py runs it with only mujoco, onnxruntime "
        "and numpy (README: Deploying a prior).",
    )
    dsub = p.add_subparsers(dest="deploy_command", metavar="ACTION", required=True)
    e = dsub.add_parser(
        "export", help="write the deploy folder of a prior, checked against the in-process policy",
        description="Exports the prior + decoder together with the body's kinematics, the observation and the goal "
        "encoding as one ONNX graph, writes the contract and the scene, and checks the graph with onnxruntime "
        "against the in-process steering path on the states of a short steered run (largest PD target "
        "difference at most 1e-4 rad, recorded in policy.json's check). Priors with residual actions (which read a "
        "reference clip) are refused.",
    )
    e.add_argument("--checkpoint", required=True, help="Stage II prior: run folder, checkpoint or exported prior")
    e.add_argument("--out", required=True, help="the deploy folder to write")
    e.add_argument("--object", default=None,
                   help="the object the policy is exported for (default: the run's only object)")
    e.add_argument("--force", action="store_true", help="overwrite an existing export in --out")
    e.add_argument("--json", action="store_true", help="print the summary as JSON")
    e.set_defaults(func=run_export)
    r = dsub.add_parser(
        "run", help="run a deploy folder on a goal script (examples/deploy_loop.py)",
        description="Runs examples/deploy_loop.py's main (the folder's copy outside a checkout) on FOLDER; every "
        "argument after FOLDER goes to it: --script goals.jsonl [--seconds S] [--integrator "
        "{implicitfast,implicit,euler,rk4}] [--timestep T] [--friction-scale F] [--seed N] [--threads N] "
        "(`interprior deploy run FOLDER --help` lists them).",
    )
    r.add_argument("folder", help="a deploy folder (interprior deploy export)")
    r.add_argument("loop_args", nargs=argparse.REMAINDER, help="arguments of the loop (--script ... )")
    r.set_defaults(func=run_loop)


def run_export(args) -> int:
    summary = export_deploy(args.checkpoint, args.out, object_name=args.object, force=args.force)
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    check = summary["check"]
    print(f"deploy: {summary['body']} prior for the {summary['object']} ({summary['action_mode']} actions) -> "
          f"{summary['out']}: {', '.join(summary['files'])}")
    print(f"check: onnxruntime vs in-process on {check['states']} states: max |PD target difference| "
          f"{check['max_abs_pd_target_difference']:.2g} rad (tolerance {check['tolerance']:g}); "
          f"{summary['seconds']:.1f} s")
    return 0


def loop_module(folder: Path):
    """The standalone loop, loaded by path (it stays a plain script): the checkout's example, else the folder's
    copy."""
    path = EXAMPLE if EXAMPLE.is_file() else folder / "deploy_loop.py"
    if not path.is_file():
        raise InterpriorError(f"the deploy loop is not here ({EXAMPLE}, {path}); run it from an interprior checkout "
                              "or re-export the folder there")
    spec = importlib.util.spec_from_file_location("interprior_deploy_loop", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_loop(args) -> int:
    folder = Path(args.folder)
    read_contract(folder)  # a clear error for a missing or incomplete folder
    try:
        return int(loop_module(folder).main([str(folder), *args.loop_args]) or 0)
    except SystemExit as done:  # the loop's own usage errors and messages
        if isinstance(done.code, str):
            raise InterpriorError(done.code.removeprefix("deploy_loop: ")) from None
        return int(done.code or 0)
