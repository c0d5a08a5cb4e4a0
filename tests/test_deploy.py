"""Deploying a prior without interprior (`interprior deploy`, examples/deploy_loop.py): the exported ONNX graph
gives the in-process PD targets on the same states (SMPL-X, the toy body, the G1 where fetched), the standalone loop
follows `Steering` in closed loop, runs under other integrators and timesteps without importing interprior or
torch, and bad input is reported clearly."""

import dataclasses
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
from toy_body import g1_clips, toy_clips

pytestmark = pytest.mark.slow  # exports (ONNX tracing, seconds each) and closed-loop runs
ROOT = Path(__file__).resolve().parents[1]
LOOP = ROOT / "examples" / "deploy_loop.py"
CHECK_STEPS = 3  # control steps per goal phase of the export's check (4 phases, each state twice)


def _prior(name, synth_data, tmp_path_factory, clips):
    """A tiny expert + tiny Stage II prior on `clips` of body `name` (as test_toy_body trains them)."""
    from prior_fixtures import TINY

    from interprior.data.intermimic import save_clip
    from interprior.models.prior import PriorModelConfig
    from interprior.train.distill import DistillConfig, PriorDistiller
    from interprior.train.distill import cpu_preset as prior_preset
    from interprior.train.expert import (
        DataSelection,
        ExpertConfig,
        ExpertTrainer,
        cpu_preset,
    )

    root = tmp_path_factory.mktemp(f"deploy_{name}")
    (root / "clips").mkdir()
    for clip in clips:
        save_clip(clip, root / "clips" / f"{clip.name}.pt")
    before = torch.get_num_threads()
    cfg = cpu_preset(ExpertConfig())
    cfg.data = DataSelection(data=str(root / "clips"), objects=str(synth_data.objects_dir), object_name="box")
    cfg.env = dataclasses.replace(cfg.env, num_envs=4, variant=name, psi_slots=1)
    cfg.ppo.horizon, cfg.ppo.minibatch_size, cfg.ppo.epochs = 8, 16, 1
    cfg.model.hidden, cfg.total_samples, cfg.torch_threads = (32, 32), 32, 1
    ExpertTrainer(cfg, root / "expert").train(bench=False)
    prior = prior_preset(DistillConfig())  # delta actions
    prior.expert, prior.data = str(root / "expert"), cfg.data
    prior.env = dataclasses.replace(cfg.env, episode_length=4)
    prior.model = PriorModelConfig(**TINY)
    prior.optim.horizon, prior.optim.epochs, prior.optim.minibatches = 6, 1, 2
    prior.total_samples, prior.torch_threads = 24, 1
    PriorDistiller(prior, root / "prior").train()
    torch.set_num_threads(before)
    return root / "prior"


def _export(prior, tmp_path_factory, name):
    from interprior.deploy.export import export_deploy

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp(f"export_{name}") / "deploy"
        return prior, out, export_deploy(prior, out, check_steps=CHECK_STEPS)
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def toy_export(synth_data, tmp_path_factory):
    prior = _prior("toy", synth_data, tmp_path_factory, toy_clips(synth_data.objects_dir))
    return _export(prior, tmp_path_factory, "toy")


@pytest.fixture(scope="module")
def smplx_export(tiny_prior_run, tmp_path_factory):
    return _export(tiny_prior_run, tmp_path_factory, "smplx")


@pytest.fixture(scope="module")
def g1_export(synth_data, tmp_path_factory):
    from interprior.assets.g1 import g1_fetched

    if not g1_fetched():
        pytest.skip("the Unitree G1 is not fetched: run `interprior assets fetch g1`")
    prior = _prior("g1", synth_data, tmp_path_factory, g1_clips(synth_data.objects_dir))
    return _export(prior, tmp_path_factory, "g1")


@pytest.fixture(params=["smplx", "toy", "g1"])
def exported(request):
    return request.param, request.getfixturevalue(f"{request.param}_export")


def _loop_module():
    spec = importlib.util.spec_from_file_location("deploy_loop_under_test", LOOP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_graph_gives_the_in_process_targets(exported, one_torch_thread):
    """onnxruntime on the written policy.onnx vs the steering path (its policy on its goal env's observation, then
    the env's action rule) on the same states: goals of every component, no goal, the get-up token, random
    contact flags. And the contract matches the standalone scene.xml."""
    from interprior.deploy.check import compare, session_runner
    from interprior.deploy.export import deploy_steering, session
    from interprior.train.runs import load_run

    name, (prior, out, summary) = exported
    contract = json.loads((out / "policy.json").read_text())
    assert summary["check"]["max_abs_pd_target_difference"] < 1e-4 and summary["check"]["states"] == 8 * CHECK_STEPS
    assert contract["check"] == summary["check"] and contract["action"]["mode"] == "delta"
    steering = deploy_steering(load_run(prior, kind="prior"))
    again = compare(steering, session_runner(session(out / "policy.onnx")), steps=2, seed=7)
    assert again["max_abs_pd_target_difference"] < 1e-4 and again["max_abs_action_difference"] < 1e-4
    # the contract, read against the standalone scene
    model = mujoco.MjModel.from_xml_path(str(out / "scene.xml"))
    joints = contract["joints"]
    d = contract["sizes"]["D"]
    assert len(joints["names"]) == d == {"smplx": 63, "toy": 36, "g1": 29}[name]
    assert [model.joint(n).qposadr[0] for n in joints["names"]] == joints["qpos_adr"] == contract["humanoid"][
        "qpos_adr"][7:]
    assert [model.actuator(i).name for i in joints["ctrl_adr"]] == joints["names"]
    assert min(joints["kp"]) > 0 and min(joints["kd"]) > 0 and contract["control"]["rate_hz"] == pytest.approx(30)
    assert model.body(contract["object"]["body"]).id > contract["sizes"]["B"]
    files = [f for f in re.findall(r'file="([^"]+)"', (out / "scene.xml").read_text())]
    assert files and all(f.startswith("assets/") and (out / f).is_file() for f in files)  # the folder moves whole
    assert max(contract["goal"]["bits"]["contacts"].values()) == contract["sizes"]["G"] - 1


def test_the_loop_follows_steering(toy_export, one_torch_thread):
    """examples/deploy_loop.py (imported here) and `Steering` play the same goal script from the same start: the
    loop's goal mapping (hands, object pose, pelvis heading, contacts, clear), contact rule and PD writes keep both
    simulations together."""
    from interprior.steer.script import parse_script
    from interprior.steer.steering import Steering

    prior, out, _ = toy_export
    loop_module = _loop_module()
    loop = loop_module.load(out, loop_module.parse_args([str(out), "--script", "unused"]))
    steering = Steering(prior)
    lines = ['{"t": 0.0, "object": [1.0, 0.2, 0.4], "object_yaw": 0.3, "pelvis_heading": 0.4, "seconds": 0.5}',
             ('{"t": 0.3, "left_hand": [0.5, 0.3, 0.9], "right_hand": [0.5, -0.3, 0.9], '
              '"contacts": {"hand_r": true, "foot_l": false}}'),
             '{"t": 0.7, "clear": true}']
    events = [loop_module.parse_line(line, loop.c["goal"]) for line in lines]
    script = parse_script("\n".join(lines), steering.names)
    assert not script.errors
    hum = loop.q
    worst = 0.0
    for step in range(27):
        for (t, kind, payload), line in zip(events, script.lines):
            if abs(t - step * loop.dt) < 1e-9:
                loop.set_goal(payload) if kind == "goal" else loop.clear()
                steering.apply_goal(line.goal) if line.kind == "goal" else steering.clear_goal()
        loop.step()
        steering.step(1)
        qpos = steering.qpos()
        ours = np.concatenate([qpos[:7], qpos[steering.env.scene.layout.dof_qpos_adr]])
        worst = max(worst, float(np.abs(loop.data.qpos[hum] - ours).max()))
        assert np.array_equal(loop.contact > 0.5, steering.obs.state.object_contact[0].numpy())
    assert worst < 1e-5 and loop.divergences == 0


def _run_loop(folder, script, *options):
    out = subprocess.run([sys.executable, str(LOOP), str(folder), "--script", str(script), "--assert-standalone",
                          *options], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout), out.stderr


def test_the_standalone_loop_runs_without_interprior(toy_export, tmp_path):
    """A 1 s script with a malformed line, a reset and a late line: reported with their line numbers, the loop goes
    on; the default integrator and RK4 at another timestep; interprior and torch are never imported."""
    _, out, _ = toy_export
    script = tmp_path / "goals.jsonl"
    script.write_text('{"t": 0, "object": [1.0, 0.1, 0.4], "right_hand": [0.5, -0.3, 0.9], "seconds": 1.0}\n'
                      '{"t": 0.5, "right_hand": [0.5, -0.3, 9.0]}\n'
                      'not json\n{"t": 0.2, "reset": true}\n{"t": 0.5, "subtask": "get_up"}\n{"t": 5, "clear": true}\n'
                      '{"end": 1.0}\n')
    summary, err = _run_loop(out, script)
    assert summary["steps"] == 30 and summary["standalone"] and summary["lines_applied"] == 2
    assert summary["lines_skipped"] == 3 and summary["lines_not_reached"] == 1 and summary["divergences"] == 0
    for line in (2, 3, 4, 6):
        assert f"goals.jsonl:{line}:" in err
    assert summary["last_object_goal"] == [1.0, 0.1, 0.4] and summary["object_error_cm"] >= 0
    assert summary["steps_per_s"] > 0 and summary["substeps"] == 4
    rk4, _ = _run_loop(out, script, "--integrator", "rk4", "--timestep", "0.0005", "--friction-scale", "0.8",
                       "--seed", "1")
    assert rk4["integrator"] == "rk4" and rk4["substeps"] == 67 and rk4["standalone"]
    assert rk4["divergences"] == 0 and rk4["steps"] == 30 and rk4["eps"] == "seed 1"


def test_the_g1_loop_runs_rk4(g1_export, tmp_path):
    """The G1 (armature, a robot's gains) under RK4 at 5 ms, a step the SMPL-X and toy bodies' PD cannot take
    explicitly."""
    _, out, _ = g1_export
    contract = json.loads((out / "policy.json").read_text())
    hand = contract["goal"]["hands"]["right"]
    script = tmp_path / "g1.jsonl"
    script.write_text(json.dumps({"t": 0, "object": [0.9, 0.0, 0.3], "contacts": {hand: False}}) + "\n"
                      '{"end": 1.0}\n')
    summary, _ = _run_loop(out, script, "--integrator", "rk4", "--timestep", "0.005")
    assert summary["substeps"] == 7 and summary["divergences"] == 0 and summary["standalone"]


def test_bad_input_is_reported(toy_export, tiny_prior_run, tmp_path, capsys):
    from interprior.cli import main

    _, out, _ = toy_export
    script = tmp_path / "g.jsonl"
    script.write_text('{"t": 0, "object": [1.0, 0.0, 0.4]}\n{"end": 0.2}\n')
    assert main(["deploy", "run", str(tmp_path / "missing"), "--script", str(script)]) == 2
    assert "no such deploy folder" in capsys.readouterr().err
    assert main(["deploy", "run", str(out), "--script", str(script)]) == 0  # the CLI runs the example's main
    assert json.loads(capsys.readouterr().out)["steps"] == 6
    assert main(["deploy", "export", "--checkpoint", str(tiny_prior_run), "--out", str(out)]) == 2
    assert "pass --force" in capsys.readouterr().err
    residual = tmp_path / "residual_prior"  # the same prior, as if trained in its residual expert's action space
    shutil.copytree(tiny_prior_run, residual)
    config = json.loads((residual / "config.json").read_text())
    config["student_actions"] = "expert"
    (residual / "config.json").write_text(json.dumps(config))
    assert main(["deploy", "export", "--checkpoint", str(residual), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "'residual'" in err and "cannot be deployed" in err and not (tmp_path / "r" / "policy.onnx").exists()
