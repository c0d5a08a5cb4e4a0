"""A run folder a user can trust: each test reproduces one way a run used to lose work or answer wrongly (the
reliability issue's defects 2-8, 12-14); the signal and kill cases are in test_fault_injection.py."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from interprior.cli import main
from interprior.files import atomic_write_text, file_mode
from interprior.train.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]


def _expert_argv(synth_data, out, *extra, data=None, samples="4"):
    return ["train", "expert", "--data", str(data or synth_data.clips_dir), "--objects", str(synth_data.objects_dir),
            "--object", "box", "--clips", synth_data.names("box")[0], "--out", str(out), "--envs", "2",
            "--samples", samples, "--config", str(ROOT / "configs" / "demo_expert.json"),
            "--set", "model.hidden=[16]", "--set", "ppo.horizon=2", "--set", "ppo.minibatch_size=4",
            "--set", "ppo.epochs=1", "--set", "env.psi_slots=1", "--set", "torch_threads=1", *extra]


@pytest.fixture(scope="module")
def expert_run(synth_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("expert") / "run"
    assert main(_expert_argv(synth_data, run)) == 0
    return run


def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))} \
        if folder.exists() else {}


# --- defect 2: --restart removes only the run's own files --------------------------------------------------------
def test_restart_removes_only_what_the_run_wrote(synth_data, tmp_path):
    run = tmp_path / "run"
    assert main(_expert_argv(synth_data, run)) == 0
    own_events = sorted((run / "tb").glob("events.out.tfevents.*"))
    assert own_events and all(p.name.endswith(".interprior") for p in own_events)
    mine = [run / "checkpoints" / "mine.pt", run / "tb" / "notes.txt", run / "notes.md",
            run / "tb" / "events.out.tfevents.123.host"]  # an event file some other tool wrote
    for p in mine:
        p.write_text("the user's")
    assert main(_expert_argv(synth_data, run, "--set", "ppo.epochs=2", "--restart")) == 0
    assert all(p.read_text() == "the user's" for p in mine)
    assert not any(p.exists() for p in own_events)
    assert json.loads((run / "config.json").read_text())["ppo"]["epochs"] == 2


def test_a_foreign_config_json_is_never_replaced(synth_data, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"my": "settings"}')
    for extra in ([], ["--restart"]):
        assert main(_expert_argv(synth_data, out, *extra)) == 2
        assert "not an interprior run config" in capsys.readouterr().err
        assert (out / "config.json").read_text() == '{"my": "settings"}' and not (out / "checkpoints").exists()


# --- defect 3: zero, negative and non-finite numbers are errors, before anything is written ----------------------
@pytest.mark.parametrize("flag, value", [("--samples", "0"), ("--hours", "0"), ("--envs", "0"), ("--samples", "-1"),
                                         ("--hours", "-1"), ("--shortest", "-1"), ("--envs", "-4"),
                                         ("--samples", "nan"), ("--hours", "inf"), ("--hold-out", "-2"),
                                         ("--seed", "-1")])
def test_numeric_options_are_range_checked(synth_data, tmp_path, capsys, flag, value):
    out = tmp_path / "run"
    argv = _expert_argv(synth_data, out)
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    assert main(argv) == 2
    assert f"argument {flag}: expected" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("content, message", [("[1,2,3]", "expected a JSON object"),
                                              ('{"ppo": 5}', "ppo is a section"),
                                              ('{"ppo": {"epochs": 0}}', "ppo.epochs must be > 0")])
def test_bad_config_files_are_one_line_errors(synth_data, tmp_path, capsys, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    out = tmp_path / "run"
    assert main(_expert_argv(synth_data, out, "--config", str(bad))) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("item, message", [("env.num_envs=-4", "env.num_envs must be > 0"),
                                           ("ppo.gamma=1.5", "ppo.gamma must be within [0, 1]"),
                                           ("total_samples=0", "total_samples must be > 0"),
                                           ("model.hidden=[16,0]", "model.hidden must be > 0 (each entry)"),
                                           ("env.seed=-3", "env.seed must be >= 0")])
def test_set_values_are_range_checked(synth_data, tmp_path, capsys, item, message):
    out = tmp_path / "run"
    assert main(_expert_argv(synth_data, out, "--set", item)) == 2
    assert message in capsys.readouterr().err and not out.exists()


# --- defect 4: one run per folder ---------------------------------------------------------------------------------
def test_a_second_run_in_the_same_folder_is_refused(synth_data, tmp_path, capsys):
    out = tmp_path / "run"
    holder = RunDir(out)
    holder.lock()  # as a running `train` holds it
    try:
        assert main(_expert_argv(synth_data, out)) == 2
        assert "is in use" in capsys.readouterr().err and not (out / "config.json").exists()
    finally:
        holder.unlock()
    assert main(_expert_argv(synth_data, out)) == 0  # free again once the first ends


# --- defect 6: data paths are stored absolute; the folder may be spelled any way ------------------------------------
def test_relative_paths_are_stored_absolute_and_resume_from_anywhere(synth_data, tmp_path, monkeypatch):
    data = tmp_path / "d" / "clips"
    shutil.copytree(synth_data.clips_dir, data)
    monkeypatch.chdir(tmp_path)
    argv = _expert_argv(synth_data, "run", data="d/clips")
    assert main(argv) == 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["data"]["data"] == str(data.resolve())
    monkeypatch.chdir(ROOT)  # elsewhere, the same run spelled absolute with a trailing slash: resumed, not refused
    again = _expert_argv(synth_data, f"{tmp_path / 'run'}/", data=f"{data}/", samples="8")
    assert main(again) == 0


# --- defect 7: a clip, or a run of the other kind, where a checkpoint is expected -----------------------------------
@pytest.mark.parametrize("command", [
    ["eval", "tracking", "--checkpoint", "{clip}"],
    ["eval", "goals", "--checkpoint", "{clip}", "--goal", "snapshot"],
    ["eval", "curve", "{clip}"],
    ["train", "export", "--checkpoint", "{clip}", "--out", "{tmp}/x.pt"],
    ["train", "export-prior", "--checkpoint", "{clip}", "--out", "{tmp}/x.onnx"],
    ["train", "prior", "--expert", "{clip}", "--out", "{tmp}/p"],
])
def test_a_clip_given_as_checkpoint_is_named(synth_data, tmp_path, capsys, command):
    clip = synth_data.path(synth_data.names("box")[0])
    argv = [a.format(clip=clip, tmp=tmp_path) for a in command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(clip) in err and ("motion clip" in err or "not a training run" in err), err
    assert "Traceback" not in err and "AttributeError" not in err


def test_a_clip_given_as_init_is_named(synth_data, tmp_path, capsys):
    clip = synth_data.path(synth_data.names("box")[0])
    assert main(_expert_argv(synth_data, tmp_path / "run", "--init", str(clip))) == 2
    err = capsys.readouterr().err
    assert "--init" in err and "motion clip" in err and not (tmp_path / "run").exists()


def test_an_expert_run_where_a_prior_is_needed_says_so(expert_run, capsys):
    assert main(["eval", "goals", "--checkpoint", str(expert_run), "--goal", "snapshot"]) == 2
    err = capsys.readouterr().err
    assert "this is an expert run; a prior is needed here" in err and "DistillConfig" not in err


# --- defect 8: a resume trains on what the run trained on -----------------------------------------------------------
def _prior_argv(synth_data, expert, out, data, samples):
    return ["train", "prior", "--expert", str(expert), "--data", str(data), "--objects", str(synth_data.objects_dir),
            "--out", str(out), "--envs", "2", "--samples", samples, "--set", "torch_threads=1",
            "--set", "model.width=32", "--set", "model.layers=1", "--set", "model.ff_width=32",
            "--set", "model.token_hidden=[32]", "--set", "model.encoder_hidden=[32]",
            "--set", "model.decoder_hidden=[32]", "--set", "optim.horizon=2", "--set", "optim.epochs=1",
            "--set", "optim.minibatches=1"]


def test_a_prior_does_not_resume_silently_on_a_changed_teacher_or_clip_set(synth_data, tmp_path, capsys):
    data = tmp_path / "clips"
    data.mkdir()
    first, second = synth_data.names("box")[:2]
    shutil.copy(synth_data.path(first), data)
    expert = tmp_path / "expert"
    assert main(_expert_argv(synth_data, expert, data=data)) == 0
    argv = _prior_argv(synth_data, expert, tmp_path / "prior", data, "4")
    assert main(argv) == 0
    assert main(_expert_argv(synth_data, expert, data=data, samples="8")) == 0  # the teacher trains on
    grown = argv[:argv.index("--samples") + 1] + ["8"] + argv[argv.index("--samples") + 2:]
    capsys.readouterr()
    assert main(grown) == 2
    assert "has trained on since the last checkpoint (then 4 samples, now 8)" in capsys.readouterr().err
    assert main(grown + ["--accept-changes"]) == 0
    shutil.copy(synth_data.path(second), data)  # a clip added between resumes
    more = grown[:grown.index("--samples") + 1] + ["12"] + grown[grown.index("--samples") + 2:]
    capsys.readouterr()
    assert main(more) == 2
    assert f"added: {second}" in capsys.readouterr().err


# --- defect 9: outputs follow the umask ------------------------------------------------------------------------------
def test_run_outputs_follow_the_umask(synth_data, tmp_path):
    old = os.umask(0o002)
    try:
        assert file_mode() == 0o664
        run = tmp_path / "run"
        assert main(_expert_argv(synth_data, run)) == 0
        for p in [run / "config.json", *(run / "checkpoints").glob("step_*.pt"), run / "checkpoints" / "latest.txt"]:
            assert p.stat().st_mode & 0o777 == 0o664, p
        os.umask(0o022)
        target = tmp_path / "x.json"
        target.write_text("{}")
        os.chmod(target, 0o644)
        atomic_write_text(target, "{}\n")  # overwriting keeps the umask's mode, not 0600
        assert target.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)


# --- defect 12: a failed start leaves the folder as it was ------------------------------------------------------------
def test_a_failed_start_writes_nothing(synth_data, tmp_path, capsys):
    data = tmp_path / "clips"
    shutil.copytree(synth_data.clips_dir, data)
    (data / f"{synth_data.names('box')[0]}.pt").write_bytes(b"not a clip")
    fresh, existing = tmp_path / "fresh", tmp_path / "existing"
    existing.mkdir()
    before = _tree(existing)
    for out in (fresh, existing):
        assert main(_expert_argv(synth_data, out, data=data)) == 2
    capsys.readouterr()
    assert not fresh.exists() and _tree(existing) == before
    # and the corrected command is not refused
    assert main(_expert_argv(synth_data, existing)) == 0


# --- defect 13: corrupt checkpoints -----------------------------------------------------------------------------------
def test_no_intact_checkpoint_is_an_error_with_a_hint(synth_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_expert_argv(synth_data, run)) == 0
    for p in (run / "checkpoints").glob("step_*.pt"):
        p.write_bytes(p.read_bytes()[:100])
    assert main(_expert_argv(synth_data, run, samples="8")) == 2
    err = capsys.readouterr().err
    assert "no intact checkpoint" in err and "--restart" in err


def test_reading_a_run_falls_back_to_an_intact_checkpoint(tmp_path, capsys):
    run = RunDir(tmp_path / "r")
    run.root.mkdir()
    atomic_write_text(run.config_path, json.dumps({"_run": "interprior", "data": {}, "env": {}}))
    run.save(1, {"samples": 10})
    run.save(2, {"samples": 20})
    run.path_for(2).write_bytes(b"trunc")
    state, path = run.latest_intact()
    assert state["samples"] == 10 and path == run.path_for(1)
    assert "resuming" not in capsys.readouterr().err  # reading (eval) sets nothing aside
    assert run.path_for(2).is_file()


# --- defect 14: messages that name the right thing ---------------------------------------------------------------------
def test_prior_without_data_says_the_path_came_from_the_expert(synth_data, tmp_path, capsys):
    data = tmp_path / "gone"
    shutil.copytree(synth_data.clips_dir, data)
    expert = tmp_path / "expert"
    assert main(_expert_argv(synth_data, expert, data=data)) == 0
    shutil.rmtree(data)
    argv = _prior_argv(synth_data, expert, tmp_path / "prior", data, "4")
    i = argv.index("--data")
    del argv[i:i + 2]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--data not given, and the expert's data" in err and str(data) in err
    assert not (tmp_path / "prior").exists()


def test_checkpoints_are_only_dicts(tmp_path):
    from interprior.errors import DataFileError
    from interprior.train.checkpoint import load_checkpoint

    torch.save(torch.zeros(3), tmp_path / "t.pt")
    with pytest.raises(DataFileError, match="motion clip"):
        load_checkpoint(tmp_path / "t.pt")


def test_signals_ignored_at_start_stay_ignored():
    """`nohup` ignores SIGHUP so that a run outlives its terminal: the checkpoint-and-stop handler leaves it so,
    and installs itself where the signal has its default action."""
    import signal

    from interprior.train.stopping import stop_on_signals

    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_IGN, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        with stop_on_signals():
            assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_IGN, signal.SIG_DFL)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, before)


def test_a_resume_may_change_the_clip_weighting_and_records_it(synth_data, tmp_path, capsys):
    """The clip sampling emphasis is a training schedule: a resumed run may change it (the change is kept in
    config.json's "_changes"); any other change to what is learned is still refused."""
    run = tmp_path / "run"
    assert main(_expert_argv(synth_data, run)) == 0
    assert main(_expert_argv(synth_data, run, "--set", "env.clip_weighting=0.5", samples="8")) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["env"]["clip_weighting"] == 0.5
    assert saved["_changes"] == ["env.clip_weighting: 0.0 -> 0.5"]
    assert main(_expert_argv(synth_data, run, "--set", "env.clip_weighting=0.5", "--set", "ppo.epochs=2",
                             samples="12")) != 0
    assert "ppo.epochs" in capsys.readouterr().err
