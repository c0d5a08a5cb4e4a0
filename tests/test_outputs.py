"""Output files and user-facing messages: evaluation covers every object given; outputs are never replaced without
--force; every output file gets the mode the umask gives a new file; errors about foreign files are clear one-line
messages that name the file."""

from __future__ import annotations

import json
import os
import stat
from argparse import Namespace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import interprior.commands.demo as demo_command
import interprior.commands.eval as eval_command
from interprior.assets.objects import load_object
from interprior.assets.text import printable
from interprior.cli import main
from interprior.commands.demo import bundled_expert_path
from interprior.commands.eval import _load_clips, _selection
from interprior.data.intermimic import load_clip, save_clip
from interprior.data.selection import DataSelection
from interprior.data.synth.outdir import manifest_files
from interprior.errors import DataFileError, InterpriorError
from interprior.mdp.goals import GoalLayout
from interprior.models.prior import MaskedGoalPrior, PriorModelConfig
from interprior.models.prior_onnx import export_onnx
from interprior.train.export import export_expert
from interprior.viz.video import VideoWriter

SHORT = 12  # frames of the clips evaluated here: seconds, not minutes, on 2 cores


@pytest.fixture
def umask():
    """Set the process umask for one test (restored after it)."""
    saved = os.umask(0o022)
    yield os.umask
    os.umask(saved)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _short_clips(synth_data, folder, names):
    """Copies of the named synthetic clips cut to SHORT frames, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        save_clip(load_clip(synth_data.path(name)).slice(0, SHORT), folder / f"{name}.pt")
    return folder


# --- 1. evaluation with --data covers every object ------------------------------------------------------------------
def test_eval_tracking_data_folder_evaluates_every_object(synth_data, tmp_path, capsys):
    names = ["sub0_box_000", "sub0_cylinder_003", "sub0_stool_004"]
    data = _short_clips(synth_data, tmp_path / "clips", names)
    assert main(["eval", "tracking", "--checkpoint", str(bundled_expert_path()), "--data", str(data),
                 "--objects", str(synth_data.objects_dir), "--no-baseline", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert sorted(r["clip"] for r in res["clips"]) == names
    assert res["summary"]["clips"] == 3 and set(res["summary"]["per_object"]) == {"box", "cylinder", "stool"}


def test_eval_tracking_with_skill_experts_acts_each_clip_with_its_skill_expert(synth_data, tmp_path, capsys):
    """`--skill-expert SKILL=EXPERT`: the clips of that skill (the manifest beside the clips) are acted on by that
    expert, every other clip by --checkpoint, as distillation labels them; a skill no clip has is refused."""
    names = ["sub0_box_000", "sub0_smallbox_001"]  # reach, pickup
    data = _short_clips(synth_data, tmp_path / "set" / "clips", names)
    rows = [r for r in synth_data.rows if r["clip"] in names]
    (tmp_path / "set" / "synth.json").write_text(json.dumps({"rows": rows}))
    state = torch.load(bundled_expert_path(), weights_only=False)
    state["model"] = {k: v * 1.5 if v.is_floating_point() else v for k, v in state["model"].items()}
    other = tmp_path / "reach_expert.pt"
    torch.save(state, other)

    def per_clip(*extra):
        assert main(["eval", "tracking", "--checkpoint", str(bundled_expert_path()), "--data", str(data),
                     "--objects", str(synth_data.objects_dir), "--no-baseline", "--json", *extra]) == 0
        return {r["clip"]: (r["duration"], r["e_h_cm"]) for r in json.loads(capsys.readouterr().out)["clips"]}

    alone, same = per_clip(), per_clip("--skill-expert", f"reach={bundled_expert_path()}")
    assert same == alone
    mixed = per_clip("--skill-expert", f"reach={other}")
    assert mixed["sub0_smallbox_001"] == alone["sub0_smallbox_001"]
    assert mixed["sub0_box_000"] != alone["sub0_box_000"]
    assert main(["eval", "tracking", "--checkpoint", str(bundled_expert_path()), "--data", str(data), "--objects",
                 str(synth_data.objects_dir), "--no-baseline", "--skill-expert", f"jump={other}"]) == 2
    assert "jump" in capsys.readouterr().err


def test_eval_goals_data_selection_keeps_every_object_and_names_the_left_out(synth_data, tmp_path, capsys):
    data = _short_clips(synth_data, tmp_path / "clips", ["sub0_box_000", "sub0_cylinder_003"])
    save_clip(load_clip(data / "sub0_box_000.pt"), data / "sub1_box_000.pt")  # another subject's clip
    run_cfg = SimpleNamespace(data=DataSelection(data="elsewhere", object_name="box", subjects=("sub0",),
                                                 clips=("sub0_box_000",), holdout=1))
    args = Namespace(data=str(data), objects=None)
    clips = _load_clips(_selection(run_cfg, args), args)
    assert sorted(c.name for c in clips) == ["sub0_box_000", "sub0_cylinder_003"]
    err = capsys.readouterr().err
    assert "sub1_box_000" in err and "left out" in err and "subject" in err


# --- 2a. exports: no silent overwrite, a folder is named as the output argument -------------------------------------
def test_export_expert_refuses_existing_file_and_folders(tmp_path, umask):
    out = tmp_path / "expert.pt"
    out.write_text("earlier export")
    with pytest.raises(InterpriorError, match=r"expert\.pt.*pass --force to overwrite"):
        export_expert(bundled_expert_path(), out)
    assert out.read_text() == "earlier export"
    for folder in (str(tmp_path) + "/", tmp_path, str(tmp_path / "new") + "/"):
        with pytest.raises(InterpriorError, match="--out") as err:
            export_expert(bundled_expert_path(), folder)
        assert str(folder).rstrip("/") in str(err.value) and ".tmp" not in str(err.value)
    umask(0o002)
    export_expert(bundled_expert_path(), out, force=True)
    assert _mode(out) == 0o664 and torch.load(out, weights_only=True)["format"]


def test_export_onnx_names_a_folder_and_follows_the_umask(tmp_path, umask):
    pytest.importorskip("onnx")
    tiny = PriorModelConfig(latent_dim=4, width=16, heads=2, layers=1, ff_width=32, token_hidden=(16,),
                            encoder_hidden=(16,), decoder_hidden=(16,))
    model = MaskedGoalPrior(20, 5, GoalLayout(), tiny).eval()
    for folder in (str(tmp_path / "sub") + "/", tmp_path):
        with pytest.raises(InterpriorError, match="is a folder") as err:
            export_onnx(model, folder)
        assert str(folder).rstrip("/") in str(err.value)
    out = tmp_path / "prior.onnx"
    out.write_bytes(b"old")
    os.chmod(out, 0o644)
    with pytest.raises(InterpriorError, match="--force"):
        export_onnx(model, out, force=False)
    umask(0o002)
    export_onnx(model, out)
    assert _mode(out) == 0o664 and out.stat().st_size > 1000


# --- 2b / 3. data synth: an earlier set is replaced only with --force, never a foreign file; umask modes ------------
def test_data_synth_replaces_only_its_own_earlier_set(tmp_path, capsys, umask):
    out = tmp_path / "set"
    umask(0o002)
    assert main(["data", "synth", "--out", str(out), "--clips", "2", "--objects", "box,cylinder"]) == 0
    for path in (out / "clips" / "sub0_box_000.pt", out / "synth.json", out / "objects" / "box" / "box.obj",
                 out / "objects" / "box" / "box.json"):
        assert _mode(path) == 0o664, path
    capsys.readouterr()
    assert main(["data", "synth", "--out", str(out), "--clips", "1", "--objects", "box"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--force" in err and str(out) in err and len(err.splitlines()) == 1
    umask(0o022)
    assert main(["data", "synth", "--out", str(out), "--clips", "1", "--objects", "box", "--force"]) == 0
    assert sorted(p.name for p in (out / "clips").iterdir()) == ["sub0_box_000.pt"]
    assert not (out / "objects" / "cylinder" / "cylinder.obj").exists()
    assert _mode(out / "clips" / "sub0_box_000.pt") == 0o644 and _mode(out / "synth.json") == 0o644
    manifest = json.loads((out / "synth.json").read_text())
    assert [r["clip"] for r in manifest["rows"]] == ["sub0_box_000"]
    # a file the manifest does not list is the user's: refused even with --force, and left alone
    mine = out / "clips" / "mine.pt"
    mine.write_text("user data")
    capsys.readouterr()
    assert main(["data", "synth", "--out", str(out), "--clips", "1", "--objects", "box", "--force"]) == 2
    assert "mine.pt" in capsys.readouterr().err and mine.read_text() == "user data"
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    assert main(["data", "synth", "--out", str(other), "--clips", "1", "--force"]) == 2
    assert "notes.txt" in capsys.readouterr().err and (other / "notes.txt").exists()


def test_manifest_names_never_leave_the_folder(tmp_path):
    manifest = {"rows": [{"clip": "../../victim"}, {"clip": "ok"}], "planned": ["/etc/passwd"],
                "objects": {"..": {}, "box": {}}}
    files = manifest_files(tmp_path, manifest)
    assert all(tmp_path in p.parents for p in files)
    assert tmp_path / "clips" / "ok.pt" in files and tmp_path / "objects" / "box" / "box.obj" in files
    assert len(files) == 4  # synth.json, ok.pt, box.obj, box.json


# --- 2c. demo: its data folder holds exactly the current set --------------------------------------------------------
def test_demo_data_folder_holds_only_the_current_clips(tmp_path, capsys, monkeypatch):
    seen = []

    def fake_compare(model, clips, objects_dir, env_cfg, record=False):
        seen.append(sorted(c.name for c in clips))
        rows = [{"clip": c.name, "object": c.object_name} for c in clips]
        return rows, {"clips": len(rows)}, None, None

    monkeypatch.setattr(demo_command, "compare_with_baseline", fake_compare)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--clips", "2", "--no-video", "--json"]) == 0
    assert main(["demo", "--out", str(out), "--clips", "1", "--no-video", "--json"]) == 0
    assert len(seen[0]) == 2 and len(seen[1]) == 1
    assert sorted(p.stem for p in (out / "synthetic" / "clips").glob("*.pt")) == seen[1]


# --- 2d. --video over an existing file fails before any evaluation --------------------------------------------------
def test_eval_video_over_existing_file_fails_before_evaluating(synth_data, tmp_path, capsys, monkeypatch):
    class Reached(Exception):
        pass

    def reached(*args, **kwargs):
        raise Reached

    monkeypatch.setattr(eval_command, "compare_with_baseline", reached)
    data = _short_clips(synth_data, tmp_path / "clips", ["sub0_box_000"])
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "sub0_box_000.mp4").write_bytes(b"an earlier video")
    base = ["eval", "tracking", "--checkpoint", str(bundled_expert_path()), "--data", str(data), "--objects",
            str(synth_data.objects_dir), "--video", str(videos)]
    assert main(base) == 2
    err = capsys.readouterr().err.strip()
    assert "sub0_box_000.mp4" in err and "--force" in err and len(err.splitlines()) == 1
    with pytest.raises(Reached):  # with --force the evaluation runs
        main([*base, "--force"])
    assert main([*base[:-1], str(videos / "sub0_box_000.mp4")]) == 2  # a file where a folder is needed
    assert "--video" in capsys.readouterr().err


# --- 3. permissions of clips and videos -----------------------------------------------------------------------------
def test_clip_and_video_files_follow_the_umask(synth_data, tmp_path, umask):
    clip = load_clip(synth_data.path("sub0_box_000")).slice(0, 4)
    frames = np.zeros((16, 16, 3), np.uint8)
    for mask, mode in ((0o022, 0o644), (0o002, 0o664)):
        umask(mask)
        path = tmp_path / "clip.pt"
        save_clip(clip, path)  # the second time over a 0644 file: the umask's mode, not the old one
        assert _mode(path) == mode
        if mask == 0o022:
            continue
        pytest.importorskip("av")
        video = tmp_path / "v.mp4"
        video.write_bytes(b"")
        os.chmod(video, 0o644)
        with VideoWriter(video, fps=10) as writer:
            writer.write(frames)
        assert _mode(video) == mode and video.stat().st_size > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


# --- 4. messages about foreign files --------------------------------------------------------------------------------
def test_binary_mesh_is_named_as_not_a_text_obj(tmp_path, capsys):
    (tmp_path / "box").mkdir()
    mesh = tmp_path / "box" / "box.obj"
    mesh.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DataFileError, match="not a text OBJ mesh") as err:
        load_object(tmp_path, "box")
    assert err.value.path == mesh and "charset" not in str(err.value)
    assert main(["bench", "sim", "--envs", "1", "--steps", "1", "--objects", str(tmp_path), "--object", "box"]) == 2
    out = capsys.readouterr().err.strip()
    assert "box.obj" in out and "not a text OBJ mesh" in out and len(out.splitlines()) == 1


def test_bench_prior_text_checkpoint_names_the_file(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("not a checkpoint\n")
    assert main(["bench", "prior", "--checkpoint", str(text), "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "t.txt" in err and "not a run directory or checkpoint" in err and "config.json" not in err


def test_numpy_file_error_has_no_terminal_escapes(tmp_path, capsys):
    path = tmp_path / "sub0_box_000.pt"
    with open(path, "wb") as f:
        np.savez(f, **{"\x1b[31mred\x1b[0m\x07": np.zeros(3)})
    with pytest.raises(DataFileError) as err:
        load_clip(path)
    assert "\x1b" not in str(err.value) and "\x07" not in str(err.value) and "red" in str(err.value)
    assert main(["replay", str(path)]) == 2
    out = capsys.readouterr().err
    assert "\x1b" not in out and "sub0_box_000.pt" in out and len(out.strip().splitlines()) == 1
    assert printable("a\x1b]0;title\x07b\x1b[2Jc\r\nd\x00") == "abc d\\x00"
