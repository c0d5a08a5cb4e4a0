"""`interprior deploy export`: a Stage II prior as a folder a robot (or another simulator) runs without interprior:

    DIR/policy.onnx     one graph: MuJoCo-level state + goal -> PD targets (`interprior.deploy.graph`)
    DIR/policy.json     the contract: inputs, outputs, joint order, addresses, PD gains, rates, rules
                        (`interprior.deploy.contract`), and the check below
    DIR/scene.xml       the scene the prior was trained in (humanoid, the object, floor) with a `start` keyframe;
    DIR/assets/         its mesh files (scene.xml names them relative to itself: the folder can be moved)
    DIR/deploy_loop.py  the standalone loop (a copy of examples/deploy_loop.py, where this is a checkout)

The export is checked with onnxruntime against the in-process path (`interprior.deploy.check.compare`): the PD
targets of both on the states of a short steered run must agree within `TOLERANCE`.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import warnings
from pathlib import Path

import mujoco
import numpy as np
import torch

from interprior.assets.kinematics import KinematicTree
from interprior.deploy.check import compare, graph_inputs, session_runner
from interprior.deploy.contract import FORMAT, contract, start_keyframe
from interprior.deploy.graph import INPUT_NAMES, OUTPUT_NAMES, ActionRule, BodyInfo, DeployGraph, check_action_mode
from interprior.errors import DataFileError, InterpriorError
from interprior.files import atomic_path, atomic_write_text
from interprior.models.prior_onnx import onnxruntime_problem
from interprior.steer.steering import Steering
from interprior.train.distill import student_env_config
from interprior.train.runs import Run, load_run

TOLERANCE = 1e-4  # largest |PD target difference| (rad) between the exported graph and the in-process path
FILES = ("policy.onnx", "policy.json", "scene.xml")
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "deploy_loop.py"  # in a checkout


def action_rule(steering: Steering) -> ActionRule:
    env = steering.env
    return ActionRule(env.cfg.action_mode, float(env.cfg.residual_scale), tuple(env.sim.action_offset.tolist()),
                      tuple(env.sim.action_scale.tolist()))


def build_graph(steering: Steering) -> DeployGraph:
    """The graph of the steering's prior, body, scene and object."""
    env = steering.env
    body = env.body
    info = BodyInfo(env.groups, steering.layout, tuple(body.dof_index), body.num_full_dofs, env.dt)
    tree = KinematicTree.from_model(env.scene.model, body=body)
    return DeployGraph(steering.policy.model, tree, env.sim.object_points, info, action_rule(steering)).eval()


def deploy_steering(run: Run, object_name: str | None = None) -> Steering:
    """The in-process steering the export reproduces: the run's scene with one object (`object_name`, default the
    run's only one). Refuses priors whose actions need a reference clip."""
    check_action_mode(student_env_config(run.config).action_mode)
    steering = Steering(run, object_names=[object_name] if object_name else None)
    objects = steering.env.object_names
    if len(objects) != 1:
        raise InterpriorError(f"the run's clips use {len(objects)} objects ({', '.join(objects)}); a deployed policy "
                              "is made for one: choose it with --object NAME")
    return steering


def check_out(out: str | Path, force: bool) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InterpriorError(f"--out {out}: is a file; give a folder")
    found = [f for f in FILES if (out / f).exists()]
    if found and not force:
        raise InterpriorError(f"--out {out}: already holds an export ({', '.join(found)}); pass --force to overwrite")
    return out


def write_scene(steering: Steering, out: Path) -> Path:
    """scene.xml (+ assets/): the compiled scene's XML with a `start` keyframe (the steering's start state) and its
    mesh files copied beside it. Checked to load on its own into the same model sizes."""
    scene = steering.env.scene
    steering.reset()
    keyframe = start_keyframe(steering.qpos(), steering.env.sim.backend.qvel()[0].double().numpy())
    assets, copied = out / "assets", {}
    if assets.exists():
        shutil.rmtree(assets)
    assets.mkdir(parents=True)

    def local(match: re.Match) -> str:
        source = Path(match.group(1))
        if source not in copied:
            name = source.name if source.name not in {p.name for p in copied.values()} else \
                f"{len(copied):03d}_{source.name}"
            copied[source] = assets / name
            shutil.copyfile(source, copied[source])
        return f'file="assets/{copied[source].name}"'

    xml = re.sub(r'file="([^"]+)"', local, scene.xml)
    xml = xml.replace("</mujoco>", keyframe + "</mujoco>")
    path = atomic_write_text(out / "scene.xml", xml)
    loaded, model = mujoco.MjModel.from_xml_path(str(path)), scene.model
    sizes = lambda m: (m.nq, m.nv, m.nu, m.nbody, m.ngeom, m.nsensor)  # noqa: E731
    if sizes(loaded) != sizes(model):
        raise InterpriorError(f"{path}: the written scene does not compile to the trained one")
    return path


def write_onnx(graph: DeployGraph, example: dict, path: Path, opset: int = 17) -> Path:
    inputs = tuple(torch.from_numpy(np.concatenate([example[n]] * 2)) for n in INPUT_NAMES)  # batch 2: dynamic
    try:
        with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
            torch.onnx.export(graph, inputs, str(tmp), input_names=list(INPUT_NAMES),
                              output_names=list(OUTPUT_NAMES), opset_version=opset, dynamo=False,
                              dynamic_axes={n: {0: "batch"} for n in (*INPUT_NAMES, *OUTPUT_NAMES)})
    except OSError as e:
        raise InterpriorError(f"--out {path.parent}: cannot write ({e.strerror or e})") from None
    return path


def session(path: Path, threads: int = 1):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = int(threads)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def export_deploy(checkpoint: str | Path, out: str | Path, object_name: str | None = None, force: bool = False,
                  check_steps: int = 6) -> dict:
    """Write the deploy folder `out` for the prior at `checkpoint` (see the module docstring). -> a summary."""
    started = time.perf_counter()
    problem = onnxruntime_problem()
    if problem:
        raise InterpriorError(problem)
    out = check_out(out, force)
    run = load_run(checkpoint, kind="prior")
    steering = deploy_steering(run, object_name)
    graph = build_graph(steering)
    out.mkdir(parents=True, exist_ok=True)
    write_scene(steering, out)
    onnx_path = write_onnx(graph, graph_inputs(steering), out / "policy.onnx")
    check = compare(steering, session_runner(session(onnx_path)), steps=check_steps)
    check["tolerance"] = TOLERANCE
    if not check["max_abs_pd_target_difference"] <= TOLERANCE:
        onnx_path.unlink()
        raise InterpriorError(f"the exported graph's PD targets differ from the in-process policy's by "
                              f"{check['max_abs_pd_target_difference']:.3g} rad (> {TOLERANCE:g}); nothing exported")
    prior = {"checkpoint": str(Path(checkpoint).resolve()), "samples": run.state.get("samples"),
             "start_clip": steering.env.ref.clip_names[steering.start_clips[steering.object_name]]}
    atomic_write_text(out / "policy.json", json.dumps(contract(steering, action_rule(steering), prior, check),
                                                      indent=1) + "\n")
    if EXAMPLE.is_file():
        shutil.copyfile(EXAMPLE, out / "deploy_loop.py")
    return {"out": str(out), "format": FORMAT, "object": steering.object_name, "body": steering.env.body.name,
            "action_mode": steering.env.cfg.action_mode, "check": check,
            "files": sorted(p.name for p in out.iterdir()), "seconds": time.perf_counter() - started}


def read_contract(folder: str | Path) -> dict:
    """policy.json of a deploy folder; `DataFileError` naming what is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFileError(folder, "no such deploy folder (make one with `interprior deploy export`)")
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise DataFileError(folder, f"not a deploy folder: {', '.join(missing)} missing")
    return json.loads((folder / "policy.json").read_text())
