import json
import subprocess
import sys
from pathlib import Path

import pytest

from interprior.cli import build_parser, main


def _subcommand_paths(parser, prefix=()):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,)
                yield from _subcommand_paths(sub, prefix + (name,))


def test_every_subcommand_has_help(capsys):
    paths = list(_subcommand_paths(build_parser()))
    assert ("bench", "sim") in paths and ("data", "inspect") in paths and ("replay",) in paths
    for path in paths:
        assert main([*path, "--help"]) == 0
        assert "usage: interprior" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "interprior.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "replay" in out.stdout


def test_bench_sim_json(capsys):
    assert main(["bench", "sim", "--envs", "4", "--steps", "3", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["envs"] == 4 and res["batched_env_steps_per_s"] > 0 and res["ratio"] > 0


def test_missing_clip_is_one_line_error(capsys, tmp_path):
    assert main(["replay", str(tmp_path / "nope.pt")]) == 2
    err = capsys.readouterr().err
    assert "nope.pt" in err and "Traceback" not in err


def test_replay_missing_object_mesh_names_file(capsys, tmp_path, synth_data):
    clip = synth_data.path("sub0_cylinder_003")
    assert main(["replay", str(clip), "--objects", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cylinder" in err and "Traceback" not in err


@pytest.mark.slow
def test_demo_runs_the_bundled_expert_without_shared(tmp_path, capsys):
    """The default job end to end, without its video (rendering a whole clip in software GL takes minutes here;
    the evaluation video is checked on a short clip in test_tracking_env.py)."""
    assert main(["demo", "--out", str(tmp_path / "demo"), "--clips", "1", "--json", "--no-video"]) == 0
    res = json.loads(capsys.readouterr().out)
    row = res["clips"][0]
    assert row["clip"] == "sub0_box_000" and row["frames"] > 100
    assert row["duration"] > 0 and row["pd_duration"] > 0 and row["baseline_duration"] > 0
    assert (tmp_path / "demo" / "synthetic" / "clips" / "sub0_box_000.pt").is_file()
    assert "video" not in res and not list((tmp_path / "demo").glob("*.mp4"))


def test_demo_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--clips", "0"]) == 2
    assert "--clips" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path / "d"), "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "none.pt" in capsys.readouterr().err


def test_unwritable_output_is_one_line_error(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["demo", "--out", str(blocker / "sub"), "--no-video", "--clips", "1"]) == 2
    err = capsys.readouterr().err
    assert "file" in err and "Traceback" not in err


def test_train_expert_config_file_and_overrides(tmp_path, capsys):
    from interprior.commands.train import build_config
    from interprior.train.checkpoint import config_to_dict
    from interprior.train.expert import ExpertConfig, cpu_preset

    recipe = cpu_preset(ExpertConfig())
    recipe.ppo.epochs = 3
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(config_to_dict(recipe)))
    base = ["train", "expert", "--data", "D", "--objects", "O", "--out", str(tmp_path / "run")]
    cfg = build_config(build_parser().parse_args([*base, "--config", str(path), "--set", "ppo.horizon=8"]))
    assert cfg.ppo.epochs == 3 and cfg.ppo.horizon == 8 and cfg.env.variant == "body_only"
    assert cfg.data.data == str(Path("D").resolve())
    path.write_text("{not json")
    assert main([*base, "--config", str(path)]) == 2
    assert "recipe.json" in capsys.readouterr().err
    assert main([*base, "--set", "ppo.nope=1"]) == 2
    assert "ppo.nope" in capsys.readouterr().err
