"""The body is data: a toy humanoid of 13 bodies and the Unitree G1 (single hinges about their own axes in
rotated frames; where fetched) run through the scene builder, the motion files, the env, every kernel, PPO and
the evaluator, with nothing below the body description naming an SMPL-X body (tests/toy_body.py makes the clips)."""

import json
import re
from pathlib import Path

import pytest
import torch

from toy_body import TOY, g1_clips, tiny_body_expert, tiny_body_prior, toy_clips, write_clips

SRC = Path(__file__).resolve().parents[1] / "src" / "interprior"


@pytest.fixture(scope="module")
def toy_data(synth_data, tmp_path_factory):
    """Toy clips written as motion files beside the synthetic set's objects."""
    clips = toy_clips(synth_data.objects_dir)
    return write_clips(clips, tmp_path_factory.mktemp("toy") / "clips"), synth_data.objects_dir, clips


@pytest.fixture(scope="module")
def g1_data(synth_data, tmp_path_factory):
    """G1 clips (standing, arms swinging) as motion files; skips where the G1 is not fetched."""
    from interprior.assets.g1 import g1_fetched

    if not g1_fetched():
        pytest.skip("the Unitree G1 is not fetched: run `interprior assets fetch g1`")
    clips = g1_clips(synth_data.objects_dir)
    return write_clips(clips, tmp_path_factory.mktemp("g1") / "clips"), synth_data.objects_dir, clips


@pytest.fixture(params=["toy", pytest.param("g1", marks=pytest.mark.slow)])
def body_data(request):
    """(body name, (clips folder, objects folder, clips)) for the toy body and the G1."""
    return request.param, request.getfixturevalue(f"{request.param}_data")


def test_the_toy_body_is_a_description():
    groups = TOY.resolved
    assert TOY.num_bodies == 13 and TOY.num_dofs == 36 and groups.num_bodies == 13
    assert groups.hands == ((TOY.body_index["hand_l"],), (TOY.body_index["hand_r"],))
    assert TOY.levels[0] == (1, 4, 7) and len(TOY.dof_names) == 36


def test_the_toy_scene_stands_under_pd():
    import mujoco

    from interprior.assets.scene import SceneConfig, build_scene

    scene = build_scene(SceneConfig(body=TOY))
    model = scene.model
    assert model.nu == 36 and model.body(1).name == "root"
    data = mujoco.MjData(model)
    data.qpos[2] = 0.92
    for _ in range(240):  # 2 s with PD targets at the zero pose
        data.ctrl[:] = 0.0
        mujoco.mj_step(model, data)
    assert 0.75 < data.qpos[2] < 1.0  # stands on its feet


def test_motion_files_round_trip(toy_data, tmp_path):
    from interprior.data.intermimic import load_clip
    from interprior.errors import DataFileError

    clips_dir, _, clips = toy_data
    loaded = load_clip(clips_dir / f"{clips[0].name}.pt")
    assert loaded.body == "toy" and loaded.object_name == "box"
    assert torch.allclose(loaded.body_rot, clips[0].body_rot) and torch.equal(loaded.contact, clips[0].contact)
    from interprior.data.validate import validate_file

    assert validate_file(clips_dir / f"{clips[0].name}.pt")[1] == []  # what `data inspect` reports: no findings
    broken = torch.load(clips_dir / f"{clips[0].name}.pt", weights_only=True)
    broken["body_pos"] = broken["body_pos"][:, :5]
    torch.save(broken, tmp_path / "bad.pt")
    with pytest.raises(DataFileError, match="bad.pt.*body_pos"):
        load_clip(tmp_path / "bad.pt")


def test_env_and_kernels_on_other_bodies(body_data, one_torch_thread):
    from interprior.envs.tracking import TrackingConfig, TrackingEnv
    from interprior.mdp.observations import observation_size

    from interprior.mdp.rewards import RewardWeights

    name, (_, objects, clips) = body_data
    stabilise = RewardWeights(feet_flat=1.0, upright=1.0, action_rate=0.1, joint_limits=1.0)  # the robot terms
    env = TrackingEnv(clips, objects, TrackingConfig(num_envs=4, variant=name, action_mode="residual",
                                                     init="start", init_noise_rot=0.0, perturb_prob=0.0,
                                                     reward=stabilise, inertia_range=(0.9, 1.1),
                                                     joint_perturb_speed=0.5))
    env.reset()
    bodies, hinges = {"toy": (13, 36), "g1": (30, 29)}[name]
    assert env.act_dim == hinges and env.obs_dim == observation_size(env.groups, (1, 16)) < 3198
    for _ in range(15):
        step = env.step(torch.zeros(4, env.act_dim))
    assert step.obs.shape == (4, env.obs_dim) and torch.isfinite(step.obs).all()
    assert step.state.body_pos.shape == (4, bodies, 3)
    assert {"rfeet_flat", "rupright", "raction_rate", "rjoint_limits"} <= set(step.terms)
    assert torch.all((step.reward > 0.2) & (step.reward <= 1))  # the replayed reference tracks well
    assert not step.terminated.any()


def test_goal_env_on_the_toy_body(toy_data, one_torch_thread):
    """Goal layouts are functions of the body: the toy's goal env builds goals, self observations and caller goals
    named by its own bodies; the SMPL-X layout is the default one."""
    from interprior.assets.bodies import embodiment
    from interprior.envs.goal import CallerGoal, GoalEnv
    from interprior.envs.tracking import TrackingConfig, TrackingEnv
    from interprior.mdp.goal_masks import MaskSampling
    from interprior.mdp.goals import GoalLayout
    from interprior.mdp.self_observation import self_observation_size

    assert GoalLayout.for_body(embodiment("body_only").resolved) == GoalLayout()
    _, objects, clips = toy_data
    env = TrackingEnv(clips, objects, TrackingConfig(num_envs=3, variant="toy", action_mode="delta"))
    layout = GoalLayout.for_body(env.groups)
    assert layout.num_bodies == 13 and layout.hands == (10, 12)
    genv = GoalEnv(env, layout, MaskSampling(), generator=torch.Generator().manual_seed(0))
    obs = genv.start()
    assert obs.state_obs.shape == (3, self_observation_size(env.groups))
    hand = CallerGoal(seconds=1.0, body_positions={"hand_r": torch.tensor([[0.5, -0.4, 1.0]])})
    genv.set_caller_goal(torch.tensor([0]), hand)
    for _ in range(4):
        step = genv.step(torch.zeros(3, env.act_dim))
    goal = step.observation.goal
    assert torch.isfinite(step.observation.state_obs).all() and torch.isfinite(goal.full).all()
    assert goal.bits[0].sum() == 1  # one component given: the right hand's position, on the snapshot token


def test_smplx_clips_are_refused_by_the_toy_body(synth_data):
    from interprior.envs.tracking import TrackingConfig, TrackingEnv
    from interprior.errors import InterpriorError

    with pytest.raises(InterpriorError, match="52 bodies.*'toy'.*13"):
        TrackingEnv(synth_data.clips("box", shortest=1), synth_data.objects_dir, TrackingConfig(num_envs=2,
                                                                                               variant="toy"))


def test_other_bodies_train_and_evaluate(body_data, tmp_path, capsys, one_torch_thread):
    from interprior.cli import main

    name, (clips_dir, objects, _) = body_data
    trainer = tiny_body_expert(name, clips_dir, objects, tmp_path / "run", train=False)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train(bench=False)
    assert trainer.iteration == 3 and all(torch.isfinite(torch.tensor(h["reward"])) for h in trainer.history)
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    capsys.readouterr()
    assert main(["eval", "tracking", "--checkpoint", str(tmp_path / "run"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["clips"]) == 2 and all(row["duration"] >= 1 for row in out["clips"])
    # Stage II on the same body: the goal layout is the body's own, and `eval goals` runs the prior
    distiller = tiny_body_prior(trainer, tmp_path / "prior")
    assert distiller.cfg.goals.num_bodies == {"toy": 13, "g1": 30}[name]
    capsys.readouterr()
    assert main(["eval", "goals", "--checkpoint", str(tmp_path / "prior"), "--goal", "object", "--json",
                 "--min-move", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["episodes"] > 0
    # steering the body with its prior: a goal script, and the recorded clip is a motion file of that body
    from interprior.data.validate import validate_file
    from interprior.steer.script import parse_script, play
    from interprior.steer.steering import Steering

    steering = Steering(tmp_path / "prior", objects, record=True)
    hand = steering.hand_names[1]
    script = parse_script('{"t": 0, "object": [0.6, 0.0, 0.3], "right_hand": [0.5, -0.3, 0.9]}\n{"end": 1.0}',
                          steering.names)
    result = play(steering, script)
    assert result.steps == 30 and not script.errors and hand in steering.env.body.body_names
    written = steering.stop_recording().write_clips(tmp_path / "takes")
    assert written and validate_file(written[0])[0].body == name


def test_no_smplx_body_name_below_the_body_description():
    from interprior import schema

    for folder in ("mdp", "envs", "sim", "algos", "models"):
        for path in (SRC / folder).glob("*.py"):
            text = path.read_text()
            named = [n for n in schema.BODY_NAMES if re.search(rf'"{n}"', text)]
            assert not named, f"{path.name} names SMPL-X bodies {named}"
