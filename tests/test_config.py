"""interprior.config: typed (de)serialisation of the config dataclasses, overlays, --set, and the one path a training
config takes (defaults → preset → --config overlays → flags → --set)."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest

from interprior.cli import build_parser, main
from interprior.config import (ConfigMismatch, apply_overrides, config_to_dict, dict_to_config, diff_overlay,
                               overlay, overlay_file)
from interprior.errors import InterpriorError

ROOT = Path(__file__).resolve().parents[1]
OLD_FULL = Path(__file__).resolve().parent / "fixtures" / "configs_full"  # configs/*.json before they became overlays


def _expert(preset: str = "cpu"):
    from interprior.train.expert import ExpertConfig, cpu_preset

    return cpu_preset(ExpertConfig()) if preset == "cpu" else ExpertConfig()


def _cli_error(capsys, tmp_path, *extra) -> str:
    out = tmp_path / "z"
    code = main(["train", "expert", "--data", str(tmp_path / "x"), "--objects", str(tmp_path / "y"),
                 "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert not out.exists()  # refused before any folder is written
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "no such file" not in err  # ... and before the data is looked at
    return err.strip()


# --- the two --set examples -----------------------------------------------------------------------------------------
def test_set_float_for_int_field_is_one_line_error(capsys, tmp_path):
    err = _cli_error(capsys, tmp_path, "--set", "ppo.epochs=4.5")
    assert err == "interprior train: error: --set ppo.epochs=4.5: ppo.epochs is an int, got 4.5"


def test_set_comma_list_names_the_json_form(capsys, tmp_path):
    err = _cli_error(capsys, tmp_path, "--set", "model.hidden=256,256")
    assert err == ('interprior train: error: --set model.hidden=256,256: model.hidden is a list of ints, '
                   'got "256,256"; write it as JSON: [256,256]')
    cfg = apply_overrides(_expert(), ["model.hidden=[256,256]"])
    assert cfg.model.hidden == (256, 256)


def test_prior_set_is_checked_before_the_expert_is_loaded(capsys, tmp_path):
    code = main(["train", "prior", "--expert", str(tmp_path / "missing"), "--out", str(tmp_path / "z"),
                 "--set", "optim.epochs=2.5"])
    err = capsys.readouterr().err
    assert code == 2 and "optim.epochs is an int, got 2.5" in err and not (tmp_path / "z").exists()


# --- type checks ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("item, message", [
    ("ppo.epochs=true", "ppo.epochs is an int, got true"),  # bool is not an int (though True is one in Python)
    ("env.randomize_dynamics=1", "env.randomize_dynamics is true or false, got 1"),
    ("ppo.actor_lr=true", "ppo.actor_lr is a number, got true"),
    ("ppo.actor_lr=NaN", "ppo.actor_lr is a finite number, got NaN"),
    ("ppo.actor_lr=Infinity", "ppo.actor_lr is a finite number, got Infinity"),
    ("ppo.epochs=-Infinity", "ppo.epochs is an int, got -Infinity"),
    ("ppo.desired_kl=NaN", "ppo.desired_kl is a finite number or null, got NaN"),
    ("ppo.epochs=[4]", "ppo.epochs is an int, got [4]"),  # a list for a scalar
    ('ppo.epochs={"a": 1}', 'ppo.epochs is an int, got {"a": 1}'),
    ("env.variant=[1]", "env.variant is a string, got [1]"),
    ("env.variant=null", "env.variant is a string, got null"),
    ("torch_threads=1.5", "torch_threads is an int or null, got 1.5"),
    ("model.hidden=[256,2.5]", "model.hidden is a list of ints, got [256, 2.5]"),
    ("model.hidden=256", "model.hidden is a list of ints, got 256"),
    ("model.critic_hidden=64,64",
     'model.critic_hidden is a list of ints or null, got "64,64"; write it as JSON: [64,64]'),
    ("env.friction_range=[1]", "env.friction_range is a list of 2 numbers, got [1]"),
    ("env.friction_range=[1,2,3]", "env.friction_range is a list of 2 numbers, got [1, 2, 3]"),
    ('data.subjects=[1]', "data.subjects is a list of strings, got [1]"),
    ("env.reward=3", "env.reward is a section (RewardWeights) with fields like env.reward.p, got 3"),
    ("env=[]", "env is a section (TrackingConfig) with fields like env.num_envs, got []"),
    ("ppo.epochs.x=1", "ppo.epochs is an int, not a section with field 'x'"),
    ("ppo.nope=1", "no config field ppo.nope in section ppo (PPOConfig)"),
    ("nope=1", "no config field nope in ExpertConfig"),
    ('env.reward={"q": 1}', "no config field env.reward.q in section env.reward (RewardWeights)"),
    ("ppo.epochs", "expected KEY=VALUE"),
])
def test_set_type_errors(item, message):
    with pytest.raises(ConfigMismatch) as info:
        apply_overrides(_expert(), [item])
    assert isinstance(info.value, InterpriorError)
    assert str(info.value) == f"--set {item}: {message}" or (message == "expected KEY=VALUE"
                                                              and message in str(info.value))


def test_set_accepted_values():
    cfg = apply_overrides(_expert(), [
        "ppo.actor_lr=1",  # an int for a float field becomes a float
        "total_samples=2e7",  # an integral float for an int field (sample counts are written 2e7)
        "env.friction_range=[1, 2]", "model.critic_hidden=[64]", "ppo.desired_kl=null", "torch_threads=2",
        "env.variant=full", 'env.init="start"', "env.device=0",  # a number for a string field is its text
        "init=null", "data.subjects=[\"sub2\"]", "env.randomize_dynamics=false",
        'env.reward={"p": 20}',  # a section as a JSON object: only the fields it names
    ])
    assert cfg.ppo.actor_lr == 1.0 and isinstance(cfg.ppo.actor_lr, float)
    assert cfg.total_samples == 20_000_000 and isinstance(cfg.total_samples, int)
    assert cfg.env.friction_range == (1.0, 2.0) and all(isinstance(x, float) for x in cfg.env.friction_range)
    assert cfg.model.critic_hidden == (64,) and cfg.ppo.desired_kl is None and cfg.torch_threads == 2
    assert cfg.env.variant == "full" and cfg.env.init == "start" and cfg.env.device == "0" and cfg.init is None
    assert cfg.data.subjects == ("sub2",) and cfg.env.randomize_dynamics is False
    assert cfg.env.reward.p == 20.0 and cfg.env.reward.r == _expert().env.reward.r


def test_path_fields_and_local_classes():
    @dataclasses.dataclass
    class Inner:
        n: int = 1

    @dataclasses.dataclass
    class Local:
        out: Path = Path("a")
        inner: Inner = dataclasses.field(default_factory=Inner)
        maybe: str | None = None

    cfg = dict_to_config(Local, {"out": "/x/y", "inner": {"n": 3}, "maybe": "s"})
    assert cfg == Local(out=Path("/x/y"), inner=Inner(n=3), maybe="s")
    assert dict_to_config(Local, config_to_dict(cfg)) == cfg
    with pytest.raises(ConfigMismatch, match=r"^out is a path \(string\), got 3$"):
        dict_to_config(Local, {"out": 3})
    with pytest.raises(ConfigMismatch, match=r"^inner\.n is an int, got 1\.5$"):
        dict_to_config(Local, {"inner": {"n": 1.5}})


def test_distill_config_fields_are_checked():
    from interprior.train.distill import DistillConfig

    cfg = apply_overrides(DistillConfig(), ["optim.lr_decay_samples=[1, 2e6]", "goals.preview_offsets=[1,2]",
                                            "masks.snapshot_frames=[10, 20]", "model.token_hidden=[64]"])
    assert cfg.optim.lr_decay_samples == (1, 2_000_000) and cfg.goals.preview_offsets == (1, 2)
    for item, message in [("loss.kl_ramp_samples=[1.5, 2]", "loss.kl_ramp_samples is a list of 2 ints"),
                          ("goals.bodies=[true]", "goals.bodies is a list of ints"),
                          ("student_actions=1.5e0", None), ("prior_rollout_prob=NaN", "a finite number"),
                          ("goals.preview_offsets=[]", "goals: GoalLayout needs bodies and preview offsets")]:
        if message is None:  # a number for a string field is its text
            assert apply_overrides(DistillConfig(), [item]).student_actions == "1.5e0"
            continue
        with pytest.raises(ConfigMismatch, match=message.replace("[", r"\[")):
            apply_overrides(DistillConfig(), [item])


# --- overlays and round trips ---------------------------------------------------------------------------------------
def test_overlay_changes_only_the_named_keys():
    base = _expert()
    cfg = overlay(base, {"_preset": "cpu", "_about": "notes are ignored", "ppo": {"epochs": 2},
                         "env": {"reward": {"op": 50}}, "init": "runs/x"})
    assert cfg.ppo.epochs == 2 and cfg.env.reward.op == 50.0 and cfg.init == "runs/x"
    assert diff_overlay(base, cfg) == {"ppo": {"epochs": 2}, "env": {"reward": {"op": 50.0}}, "init": "runs/x"}
    assert overlay(base, {}) == base and base.ppo.epochs == 4  # the base is not changed
    with pytest.raises(ConfigMismatch, match=r"^ppo\.epochs is an int, got 4\.5$"):
        overlay(base, {"ppo": {"epochs": 4.5}})
    with pytest.raises(ConfigMismatch, match=r"^env\.reward is a section \(RewardWeights\)"):
        overlay(base, {"env": {"reward": 1}})
    with pytest.raises(ConfigMismatch, match=r"^no config field ppo\.nope in section ppo"):
        overlay(base, {"ppo": {"nope": 1}})
    with pytest.raises(ConfigMismatch, match=r"^no config field ppo\._x in section ppo"):  # notes only at the top
        overlay(base, {"ppo": {"_x": 1}})


def test_config_overlay_errors_name_the_file(capsys, tmp_path):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"ppo": {"epochs": 4.5}}))
    err = _cli_error(capsys, tmp_path, "--config", str(path))
    assert err.endswith(f"--config {path}: ppo.epochs is an int, got 4.5")
    path.write_text(json.dumps({"model": {"hidden": "256,256"}}))
    assert "write it as JSON: [256,256]" in _cli_error(capsys, tmp_path, "--config", str(path))
    path.write_text("[1, 2]")
    assert "expected a JSON object" in _cli_error(capsys, tmp_path, "--config", str(path))
    path.write_text(json.dumps({"_preset": "gpu"}))
    assert "_preset is one of cpu, paper" in _cli_error(capsys, tmp_path, "--config", str(path))
    assert main(["train", "expert", "--data", "x", "--objects", "y", "--out", str(tmp_path / "z"),
                 "--config", str(tmp_path / "none.json")]) == 2
    assert "none.json: No such file" in capsys.readouterr().err


@pytest.mark.parametrize("preset", ["cpu", "paper"])
def test_round_trip(preset):
    from interprior.train.distill import DistillConfig, cpu_preset

    cfg = _expert(preset)
    assert dict_to_config(type(cfg), json.loads(json.dumps(config_to_dict(cfg)))) == cfg
    prior = DistillConfig()
    if preset == "cpu":
        cpu_preset(prior)
    assert dict_to_config(DistillConfig, json.loads(json.dumps(config_to_dict(prior)))) == prior
    assert overlay(DistillConfig(), config_to_dict(prior)) == prior  # a full dump is an overlay too


def test_old_full_dumps_still_load():
    from interprior.train.expert import ExpertConfig

    for path in sorted(OLD_FULL.glob("*.json")):
        full = json.loads(path.read_text())
        cfg = dict_to_config(ExpertConfig, full)
        assert cfg.data.holdout == 0  # a field added after the dump: its default
        for preset in ("cpu", "paper"):  # as an overlay, whatever it lies on
            assert overlay_file(_expert(preset), path) == cfg


def test_bundled_expert_config_loads():
    from interprior.commands.demo import bundled_expert_path
    from interprior.train.export import load_expert

    cfg, _, _ = load_expert(bundled_expert_path())
    assert cfg.model.hidden == (256, 256, 128) and cfg.env.reward.op == 50.0
    # the bundled expert was trained with the fine-tuning recipe
    from interprior.commands.train import expert_defaults

    recipe = overlay_file(expert_defaults("cpu"), ROOT / "configs" / "demo_expert_finetune.json")
    assert recipe == cfg


@pytest.mark.parametrize("name", ["demo_expert", "demo_expert_finetune"])
def test_recipe_equals_its_old_full_config(name, tmp_path):
    from interprior.commands.train import build_config, expert_defaults
    from interprior.train.expert import ExpertConfig

    recipe = ROOT / "configs" / f"{name}.json"
    text = json.loads(recipe.read_text())
    assert text["_preset"] == "cpu" and len(json.dumps(text)) < 1000  # a short overlay
    old = dict_to_config(ExpertConfig, json.loads((OLD_FULL / f"{name}.json").read_text()))
    assert overlay_file(expert_defaults(text["_preset"]), recipe) == old
    # the README's command line gives the same config with the recipe as with the old full dump
    readme = [ln for ln in (ROOT / "README.md").read_text().splitlines() if f"--config configs/{name}.json" in ln]
    assert len(readme) == 1
    argv = readme[0].split()[1:]
    new_cfg = build_config(build_parser().parse_args([a if a != f"configs/{name}.json" else str(recipe)
                                                      for a in argv]))
    old_cfg = build_config(build_parser().parse_args([a if a != f"configs/{name}.json" else
                                                      str(OLD_FULL / f"{name}.json") for a in argv]))
    assert new_cfg == old_cfg and new_cfg.total_samples != old.total_samples  # --samples applied after the recipe


def test_every_committed_recipe_loads():
    from interprior.commands.train import expert_defaults
    from interprior.train.distill import DistillConfig, cpu_preset

    prior_defaults = {"cpu": lambda: cpu_preset(DistillConfig()), "paper": DistillConfig}
    stages = set()
    for path in sorted((ROOT / "configs").glob("*.json")):
        notes = {k: v for k, v in json.loads(path.read_text()).items() if k.startswith("_")}
        assert notes.get("_preset") in ("cpu", "paper"), path
        stage = notes.get("_stage", "expert")  # a recipe of another stage says which
        assert stage in ("expert", "prior"), path
        stages.add(stage)
        defaults = expert_defaults(notes["_preset"]) if stage == "expert" else prior_defaults[notes["_preset"]]()
        overlay_file(defaults, path)
    assert stages == {"expert", "prior"}


# --- the whole path and the run directory ---------------------------------------------------------------------------
def _args(tmp_path, *extra):
    return build_parser().parse_args(["train", "expert", "--data", "D", "--objects", "O", "--out",
                                      str(tmp_path / "run"), *extra])


def test_order_preset_overlay_flags_set(tmp_path):
    from interprior.commands.train import build_config_and_notes

    a = tmp_path / "a.json"
    a.write_text(json.dumps({"_preset": "paper", "ppo": {"epochs": 2, "horizon": 7}, "env": {"num_envs": 9},
                             "data": {"shortest": 3, "data": "ignored"}}))
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"ppo": {"epochs": 3}}))
    cfg, notes = build_config_and_notes(_args(tmp_path, "--config", str(a), "--config", str(b), "--envs", "5",
                                              "--set", "ppo.horizon=8"))
    paper = _expert("paper")
    assert cfg.model.hidden == paper.model.hidden  # the preset the overlay states
    assert cfg.ppo.epochs == 3 and cfg.ppo.horizon == 8 and cfg.env.num_envs == 5
    assert cfg.data.data == str(Path("D").resolve()) and cfg.data.shortest == 3  # flags replace only what they name
    assert notes == {"_preset": "paper", "_overlays": [str(a), str(b)], "_set": ["ppo.horizon=8"]}
    cfg, notes = build_config_and_notes(_args(tmp_path, "--config", str(a), "--preset", "cpu", "--shortest", "0"))
    assert cfg.model.hidden == (256, 256, 128) and cfg.data.shortest == 0 and notes["_preset"] == "cpu"
    c = tmp_path / "c.json"
    c.write_text(json.dumps({"_preset": "cpu"}))
    with pytest.raises(ConfigMismatch, match="different presets"):
        build_config_and_notes(_args(tmp_path, "--config", str(a), "--config", str(c)))


def test_config_json_records_its_recipe_and_resumes(tmp_path):
    from interprior.commands.train import build_config_and_notes
    from interprior.train.rundir import RESUMABLE_KEYS, RunDir
    from interprior.train.expert import ExpertConfig

    recipe = ROOT / "configs" / "demo_expert.json"
    cfg, notes = build_config_and_notes(_args(tmp_path, "--config", str(recipe), "--set", "ppo.epochs=2"))
    run = RunDir(tmp_path / "run")
    run.write_config(cfg, ignore=RESUMABLE_KEYS)
    run.record_notes(notes)
    saved = json.loads(run.config_path.read_text())
    assert saved["_preset"] == "cpu" and saved["_overlays"] == [str(recipe)] and saved["_set"] == ["ppo.epochs=2"]
    assert run.load_config(ExpertConfig) == cfg
    # the same command again: not refused, and the notes of the command that made the run stay
    again, _ = build_config_and_notes(_args(tmp_path, "--config", str(recipe), "--set", "ppo.epochs=2",
                                            "--samples", "3e7"))
    run.write_config(again, ignore=RESUMABLE_KEYS)
    run.record_notes({"_preset": "cpu", "_overlays": ["other"], "_set": []})
    assert json.loads(run.config_path.read_text())["_overlays"] == [str(recipe)]
    # the run's own config.json as the overlay: the same config, also not refused
    same, _ = build_config_and_notes(_args(tmp_path, "--config", str(run.config_path)))
    assert same == again
    run.write_config(same, ignore=RESUMABLE_KEYS)
    changed = apply_overrides(cfg, ["ppo.epochs=3"])
    with pytest.raises(ConfigMismatch, match=r"ppo\.epochs: 2 -> 3"):
        run.write_config(changed, ignore=RESUMABLE_KEYS)
    run.write_config(changed, restart=True)  # a new run: new notes
    assert not any(k.startswith("_") and k != "_run" for k in json.loads(run.config_path.read_text()))
    run.record_notes({"_preset": "cpu"})
    assert json.loads(run.config_path.read_text())["_preset"] == "cpu"


def test_run_config_json_written_before_notes_resumes(tmp_path):
    """A run directory from before this change (no notes, a field missing) resumes and then gains notes."""
    from interprior.train.rundir import RESUMABLE_KEYS, RunDir
    from interprior.train.expert import ExpertConfig

    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    (run.config_path).write_text((OLD_FULL / "demo_expert.json").read_text())  # no data.holdout, no notes
    cfg = dict_to_config(ExpertConfig, json.loads(run.config_path.read_text()))
    run.write_config(cfg, ignore=RESUMABLE_KEYS)
    run.record_notes({"_preset": "cpu", "_overlays": [], "_set": []})
    assert run.load_config(ExpertConfig) == cfg
    assert json.loads(run.config_path.read_text())["_preset"] == "cpu"


def test_cli_train_writes_notes_and_resumes(synth_data, tmp_path, capsys):
    """End to end: two tiny runs of the same command; the second resumes (not refused)."""
    name = synth_data.names("box")[0]
    argv = ["train", "expert", "--data", str(synth_data.clips_dir), "--objects", str(synth_data.objects_dir),
            "--object", "box", "--clips", name, "--out", str(tmp_path / "run"), "--envs", "2", "--samples", "4",
            "--config", str(ROOT / "configs" / "demo_expert.json"),
            "--set", "model.hidden=[16]", "--set", "ppo.horizon=2", "--set", "ppo.minibatch_size=4",
            "--set", "ppo.epochs=1", "--set", "env.psi_slots=1"]
    assert main(argv) == 0, capsys.readouterr().err
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["_preset"] == "cpu" and saved["_set"][0] == "model.hidden=[16]" and saved["model"]["hidden"] == [16]
    assert main(argv[:argv.index("--samples") + 1] + ["8"] + argv[argv.index("--samples") + 2:]) == 0, \
        capsys.readouterr().err
    assert main(argv + ["--set", "ppo.epochs=2"]) == 2
    assert "ppo.epochs: 1 -> 2" in capsys.readouterr().err


# --- layering -------------------------------------------------------------------------------------------------------
def test_config_module_imports_only_the_standard_library():
    import sys

    tree = ast.parse((ROOT / "src" / "interprior" / "config.py").read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    allowed = set(sys.stdlib_module_names) | {"__future__", "interprior.errors"}
    assert names <= allowed, names - allowed
    errors = ast.parse((ROOT / "src" / "interprior" / "errors.py").read_text())  # itself standard library only
    assert all(n.module in sys.stdlib_module_names | {"__future__"}
               for n in ast.walk(errors) if isinstance(n, ast.ImportFrom))


def test_checkpoint_module_reexports_the_old_names():
    from interprior import config
    from interprior.train import checkpoint

    for name in ("ConfigMismatch", "config_to_dict", "dict_to_config", "apply_overrides", "config_diff"):
        assert getattr(checkpoint, name) is getattr(config, name)


def test_a_recipe_of_another_stage_is_refused_by_name(tmp_path):
    from interprior.cli import build_parser
    from interprior.commands.train import choose_preset
    from interprior.config import ConfigMismatch

    root = Path(__file__).resolve().parents[1] / "configs"
    args = build_parser().parse_args(["train", "expert", "--data", "d", "--objects", "o", "--out", str(tmp_path / "r"),
                                      "--config", str(root / "steer_prior.json")])
    with pytest.raises(ConfigMismatch, match=r"steer_prior.json is a recipe for `train prior`.*not `train expert`"):
        choose_preset(args, "cpu")
    assert choose_preset(args, "paper", stage="prior")[0] == "cpu"  # its own stage: the preset it states
