"""Steering without a browser: the `Steering` object (goals in the world frame, stepping, state), goal
validation, JSON-lines goal scripts with malformed lines, the `interprior steer --headless` command (video,
recorded clips) and reproducibility. One tiny prior is distilled from the bundled expert in a few seconds."""

import json
import math
from pathlib import Path

import pytest
import torch

from interprior.cli import main
from interprior.data.intermimic import load_clip
from interprior.data.validate import validate_clip
from interprior.envs.goal import CallerGoal, GoalEnv
from interprior.envs.tracking import TrackingConfig, TrackingEnv
from interprior.errors import InterpriorError, RenderingUnavailable
from interprior.mdp.goal_masks import MaskSampling
from interprior.mdp.goals import GoalLayout
from interprior.steer.script import parse_script, play
from interprior.steer.steering import Steering



pytestmark = pytest.mark.usefixtures("one_torch_thread")  # many small kernels: threads only add overhead


@pytest.fixture(scope="module")
def prior_run(tiny_prior_run) -> Path:
    """The shared tiny Stage II run (conftest `tiny_prior_run`)."""
    return tiny_prior_run


@pytest.fixture(scope="module")
def steering(prior_run) -> Steering:
    return Steering(prior_run)


def _finite(state) -> bool:
    values = [*state.pelvis, *state.left_hand, *state.right_hand, *state.object, state.object_yaw, state.time]
    return all(math.isfinite(v) for v in values)


def test_steering_sets_goals_steps_and_reads_state(steering):
    start = steering.reset()
    assert start.steps == 0 and start.time == 0.0 and start.object_name == "box" and start.goal is None
    assert _finite(start) and start.pelvis[2] > 0.6 and not start.fallen
    target = [start.object[0] + 0.5, start.object[1], 0.6]
    goal = steering.set_goal(object_position=target, object_yaw=0.5, left_hand=[0.3, 0.2, 1.0],
                             contacts={"L_Wrist": True}, seconds=1.0)
    assert goal.object_position == tuple(target) and goal.contacts == {"L_Wrist": True}
    bits, sl = steering.obs.goal.bits[0, -1], steering.layout.bit_slices
    assert bool(bits[sl["obj_pos"]].all()) and bool(bits[sl["obj_rot"]].all())  # the goal reaches the prior
    assert not steering.obs.goal.bits[0, :-1].any()  # previews: nothing from the clip
    state = steering.step(6)
    assert state.steps == 6 and state.time == pytest.approx(6 / 30) and _finite(state) and not state.diverged
    assert state.goal_seconds_left == pytest.approx(1.0 - 6 / 30, abs=1e-6)
    assert state.object_error == pytest.approx(math.dist(state.object, target))
    assert state.goal_error >= state.object_error and isinstance(state.contacts, tuple)
    json.dumps(state.to_dict())  # plain values, ready to stream
    steering.clear_goal()
    cleared = steering.step()
    assert cleared.goal is None and cleared.goal_error is None and cleared.goal_seconds_left == 0.0
    assert not steering.obs.goal.bits.any()  # the zero goal
    assert steering.reset().steps == 0
    with pytest.raises(InterpriorError, match="unknown object 'chair'"):
        steering.reset("chair")
    with pytest.raises(InterpriorError, match="n must be an integer"):
        steering.step(0)


def test_a_pelvis_heading_goal_turns_the_pelvis_target_only(steering):
    start = steering.reset()
    assert steering.names.heading and math.isfinite(start.pelvis_heading)
    goal = steering.set_goal(pelvis_heading=start.pelvis_heading + 1.0, seconds=1.0)
    assert goal.pelvis_heading == pytest.approx(start.pelvis_heading + 1.0) and goal.object_position is None
    bits, sl = steering.obs.goal.bits[0, -1], steering.layout.bit_slices
    pelvis = steering.layout.bodies.index(0)
    assert bool(bits[sl["body_rot"]][pelvis]) and int(bits.sum()) == 1  # the pelvis rotation, nothing else
    target = steering.goal_env.caller_target.body_rot[0, 0].double()  # the pelvis (body 0)
    w, x, y, z = target.tolist()
    yaw = math.atan2(2 * (x * y + w * z), 1 - 2 * (y * y + z * z))
    assert math.remainder(yaw - goal.pelvis_heading, 2 * math.pi) == pytest.approx(0.0, abs=1e-5)
    assert steering.step(3).goal_error is None  # no position target: no goal error


def test_a_diverged_simulation_restarts_the_episode(steering):
    steering.reset()
    steering.set_goal(object_position=[1.0, 0.0, 0.5])
    steering.step(3)
    sim = steering.env.sim
    qpos, qvel = sim.backend.qpos().clone(), sim.backend.qvel().clone()
    sim.backend.reset(torch.tensor([0]), qpos, torch.full_like(qvel, 1e12))  # an absurd push: MuJoCo blows up
    before = steering.divergences
    state = steering.step(3)
    assert state.diverged and steering.divergences == before + 1 and _finite(state)
    assert state.steps == 2 and state.goal is None  # restarted at the start, goal cleared, still stepping
    assert not steering.step().diverged


@pytest.mark.parametrize("kwargs, message", [
    (dict(object_position=[0.0, float("nan"), 0.5]), "object must be finite"),
    (dict(object_position=[1.0, 2.0]), "must be 3 numbers"),
    (dict(object_position="1,2,3"), "must be a list of numbers"),
    (dict(object_position=[25.0, 0.0, 0.5]), "within 20 m"),
    (dict(left_hand=[0.0, 0.0, -2.0]), "left_hand height"),
    (dict(right_hand=[0.0, True, 1.0]), "right_hand must be a number"),
    (dict(object_yaw=float("inf")), "object_yaw must be finite"),
    (dict(object_yaw=9.0), "object_yaw must be within"),
    (dict(object_position=[1.0, 0.0, 0.5], seconds=0.0), r"seconds must be within \(0, 30\]"),
    (dict(object_position=[1.0, 0.0, 0.5], seconds=31.0), "seconds must be within"),
    (dict(object_position=[1.0, 0.0, 0.5], seconds="2"), "seconds must be a number"),
    (dict(contacts={"Nose": True}), "'Nose' is not a contact body"),
    (dict(contacts={"L_Wrist": 1}), "must be true or false"),
    (dict(contacts=["L_Wrist"]), "contacts must map body names"),
    (dict(), "give at least one of"),
    (dict(pelvis_heading=7.0), "pelvis_heading must be within"),
    (dict(pelvis_heading=[1.0]), "pelvis_heading must be a number"),
])
def test_goals_are_validated(steering, kwargs, message):
    steering.reset()
    kept = steering.set_goal(object_position=[1.0, 0.0, 0.5])
    with pytest.raises(InterpriorError, match=message):
        steering.set_goal(**kwargs)
    assert steering.goal == kept  # a rejected goal leaves the goal as it was


BAD_SCRIPT = """\
# steer the box, with mistakes
{"t": 0, "object": [0.9, 0.0, 0.6], "seconds": 1.0}
{"t": 0.2, "object": [1, 2]}
not json at all
[1, 2, 3]
{"t": 0.3, "objct": [0, 0, 1]}
{"t": NaN, "clear": true}
{"t": 0.4, "object": [0.5, NaN, 0.5]}
{"t": 0.5, "contacts": {"Nose": true}}
{"t": 0.5, "reset": "chair"}
{"t": 0.6, "clear": "yes"}
{"t": -1, "clear": true}
{"t": 0.7, "clear": true, "reset": true}

{"t": 0.8, "left_hand": [0.4, 0.2, 1.0], "right_hand": [0.4, -0.2, 1.0], "contacts": {"L_Wrist": true}}
{"t": 0.9, "reset": true}
{"t": 5.0, "clear": true}
{"end": 1.2}
{"end": 3}
"""


def test_script_skips_malformed_lines_with_line_numbers_and_keeps_stepping(steering):
    steering.reset()
    script = parse_script(BAD_SCRIPT, steering.names, source="goals.jsonl")
    bad = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 19]
    assert [int(e.split(":")[1]) for e in script.errors] == bad
    assert all(e.startswith("goals.jsonl:") and e.endswith("line skipped") for e in script.errors)
    text = "\n".join(script.errors)
    for problem in ("must be 3 numbers", "not JSON", "must be a JSON object", "unknown key 'objct'",
                    "t must be within", "must be finite", "not a contact body", "unknown object 'chair'",
                    "clear must be true", "a line is one of", "end given twice"):
        assert problem in text, problem
    assert [s.line for s in script.lines] == [2, 15, 16, 17] and script.end == 1.2
    messages = []
    result = play(steering, script, report=messages.append)
    assert messages[:len(bad)] == script.errors  # reported first, then the run went on
    assert "goals.jsonl:17: at t = 5 s, after the end" in messages[-1]
    assert result.steps == 36 and result.applied == 3 and result.skipped == len(bad) and result.not_reached == 1
    assert result.final.steps == 36 - 27  # the reset at 0.9 s restarted the episode; the script clock ran on
    assert result.last_object_goal == (0.9, 0.0, 0.6) and math.isfinite(result.object_error)
    assert _finite(result.final) and result.final.goal is None


def test_script_subtask_lines_set_the_token(steering):
    steering.reset()
    text = '{"t": 0, "subtask": "get_up"}\n{"t": 0.2, "subtask": null}\n{"t": 0.1, "subtask": "fly"}\n{"end": 0.3}\n'
    script = parse_script(text, steering.names)
    assert [s.subtask for s in script.lines] == ["get_up", None] and "subtask must be one of" in script.errors[0]
    seen = []
    steering.set_subtask = lambda name, real=steering.set_subtask: (seen.append(name), real(name))
    play(steering, script, report=lambda m: None)
    assert seen == ["get_up", None] and steering.subtask is None


def test_same_seed_same_result(prior_run):
    script = '{"t": 0, "object": [0.8, 0.1, 0.5], "left_hand": [0.4, 0.2, 0.9], "seconds": 0.5}\n{"end": 0.5}\n'
    finals = []
    for _ in range(2):
        steering = Steering(prior_run, seed=3, sample=True)
        finals.append(play(steering, parse_script(script, steering.names)).final.to_dict())
    assert finals[0] == finals[1]


def test_open_ended_goal_env_outlives_the_clip(synth_data):
    """`open_ended`: the clip's end and the episode length never end an episode; caller goals count down on the
    env's own clock."""
    cfg = TrackingConfig(num_envs=1, init="start", psi_slots=1, perturb_prob=0.0, randomize_dynamics=False,
                         init_noise_pos=0.0, init_noise_rot=0.0, episode_length=4, threads=1)
    env = TrackingEnv(synth_data.clips("box", shortest=1), synth_data.objects_dir, cfg)
    genv = GoalEnv(env, GoalLayout(), MaskSampling(), open_ended=True)
    genv.start()
    genv.set_caller_goal(torch.tensor([0]), CallerGoal(seconds=0.2, object_position=torch.tensor([1.0, 0.0, 0.5])))
    lefts = []
    for _ in range(10):
        step = genv.step(torch.zeros(1, env.act_dim))
        assert len(step.done_ids) == 0 and int(env.frame[0]) == int(env.start[0]) + 1
        lefts.append(float(genv.caller_time_left()[0]))
    assert lefts[0] == pytest.approx(0.2 - 1 / 30, abs=1e-6) and lefts[-1] == 0.0 and bool(genv.caller[0])
    assert int(genv.clock[0]) == 10
    genv.clear_caller_goal(torch.tensor([0]))
    assert float(genv.caller_time_left()[0]) == 0.0


def _rendering() -> str | None:
    """None where offscreen rendering works here, else why not."""
    try:
        import av  # noqa: F401

        from interprior.viz.render import ensure_gl

        ensure_gl()
    except (ImportError, RenderingUnavailable) as err:
        return str(err)
    return None


@pytest.mark.slow  # the whole command line end to end (tens of seconds)
def test_steer_command_writes_video_and_clips(prior_run, synth_data, tmp_path, capsys):
    script = tmp_path / "goals.jsonl"
    script.write_text('{"t": 0, "object": [0.9, 0.0, 0.6], "right_hand": [0.5, -0.2, 1.0], "seconds": 0.5}\n'
                      '{"t": 0.1, "object": "up"}\n{"t": 0.5, "reset": true}\n{"end": 0.8}\n')
    no_video = _rendering()
    video = tmp_path / "out.mp4"
    args = ["steer", "--checkpoint", str(prior_run), "--objects", str(synth_data.objects_dir), "--object", "box",
            "--script", str(script), "--headless", "--record", str(tmp_path / "rec"), "--json"]
    args += [] if no_video else ["--video", str(video)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert f"{script}:2: goal: object must be a list of numbers" in captured.err
    out = json.loads(captured.out)
    assert out["summary"]["steps"] == 24 and out["summary"]["lines_skipped"] == 1
    assert out["summary"]["last_object_goal"] == [0.9, 0.0, 0.6] and out["summary"]["object_error_cm"] >= 0
    clips = [Path(p) for p in out["outputs"]["clips"]]
    assert [p.name for p in clips] == ["sub0_box_000.pt", "sub0_box_001.pt"]
    clip = load_clip(clips[0])
    assert clip.num_frames == 16 and clip.object_name == "box" and clip.subject == "sub0"  # start + 15 steps
    assert not [f for f in validate_clip(clip) if f.severity == "error"]
    assert set(clip.contact.unique().tolist()) <= {-1.0, 0.0, 1.0} and (clip.contact == -1).any()
    assert torch.allclose(clip.root_pos, clip.body_pos[:, 0], atol=1e-5)
    if no_video:
        pytest.skip(f"video not checked: offscreen rendering unavailable ({no_video})")
    assert video.stat().st_size > 0 and out["outputs"]["video"] == str(video)
    # outputs are never replaced without --force, and that is checked before the run
    assert main(args) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0
    capsys.readouterr()


def test_steer_command_usage_errors(prior_run, capsys):
    """Without --headless the command serves the page (tests/test_steer_page.py); these mix the two modes up."""
    assert main(["steer", "--checkpoint", str(prior_run), "--video", "out.mp4"]) == 2
    assert "--video is for --headless" in capsys.readouterr().err
    assert main(["steer", "--checkpoint", str(prior_run), "--headless"]) == 2
    assert "--headless needs --script" in capsys.readouterr().err
    assert main(["steer", "--checkpoint", str(prior_run), "--port", "70000"]) == 2
    assert "expected a port within [0, 65535]" in capsys.readouterr().err
