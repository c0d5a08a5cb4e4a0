"""`interprior data retarget`: human clips (the synthetic set's) retargeted to the Unitree G1 (skipped where the G1
is not fetched: `interprior assets fetch g1`)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from interprior import schema
from interprior.assets.g1 import g1_fetched

pytestmark = pytest.mark.skipif(not g1_fetched(),
                                reason="the Unitree G1 is not fetched: run `interprior assets fetch g1`")

CLIPS = ("sub0_smallbox_001", "sub0_bigbox_002", "sub0_cylinder_003")  # pickup (lifted), carry, push


@pytest.fixture(scope="module")
def source(synth_data, tmp_path_factory):
    """Three synthetic clips (pickup, carry, push) and the set's objects, as a data set folder."""
    root = tmp_path_factory.mktemp("retarget_source")
    (root / "clips").mkdir()
    for name in CLIPS:
        shutil.copy(synth_data.path(name), root / "clips")
    shutil.copytree(synth_data.objects_dir, root / "objects")
    return root


@pytest.fixture(scope="module")
def retargeted(source, tmp_path_factory):
    from interprior.data.retarget.run import RetargetOptions, retarget_dir

    out = tmp_path_factory.mktemp("retarget_out") / "g1"
    return out, retarget_dir(RetargetOptions(source=source, out=out, check=True))


def test_retargeted_clips_meet_the_limits(retargeted):
    from interprior.data.retarget.checks import RETARGET_LIMITS

    _, result = retargeted
    assert [r["clip"] for r in result.rows] == sorted(CLIPS) and result.over_limits == []
    for row in result.rows:
        figures = row["figures"]
        assert all(figures[key] <= limit for key, limit in RETARGET_LIMITS.items()), (row["clip"], figures)
        assert figures["contact_frames"] > 20  # the hand gap was measured on real contact phases
        assert 0.75 < row["scale"] < 0.9 and row["validation"]["error"] == 0
    lowered = {r["clip"]: r["object_lowered_cm"] for r in result.rows}
    assert result.summary["validation_errors"] == 0 and lowered[CLIPS[0]] > 5 and lowered[CLIPS[2]] == 0


def test_output_is_g1_motion_files(retargeted, source):
    from interprior.data.intermimic import load_clip
    from interprior.data.retarget.robot import g1_robot
    from interprior.data.validate import validate_file

    out, _ = retargeted
    robot = g1_robot()
    for name in CLIPS:
        clip, findings = validate_file(out / "clips" / f"{name}.pt")
        assert clip.body == "g1" and clip.body_pos.shape == (clip.num_frames, 30, 3)
        assert not [f for f in findings if f.severity == "error"], findings
        human = load_clip(source / "clips" / f"{name}.pt")
        assert clip.num_frames == human.num_frames and torch.equal(clip.obj_contact, human.obj_contact)
        assert torch.allclose(clip.obj_pos[:, :2], human.obj_pos[:, :2]) and torch.equal(clip.obj_rot, human.obj_rot)
        assert (clip.obj_pos[:, 2] <= human.obj_pos[:, 2] + 1e-6).all()  # lifted heights scaled, resting kept
        hands = (schema.LEFT_HAND, schema.RIGHT_HAND)
        for g1_hand, hand in zip(robot.hand_bodies, hands, strict=True):  # the G1's hand: any of the whole hand's
            assert torch.equal(clip.contact[:, g1_hand] > 0, human.contact[:, list(hand)].amax(1) > 0)
    assert (out / "objects" / "box" / "box.obj").is_file()
    manifest = json.loads((out / "retarget.json").read_text())
    assert manifest["complete"] and manifest["source"] == str(source) and manifest["options"]["embodiment"] == "g1"
    assert [r["clip"] for r in manifest["rows"]] == sorted(CLIPS) and manifest["over_limits"] == []


def test_the_tracking_env_reads_them(retargeted, one_torch_thread):
    from interprior.data.intermimic import load_clip
    from interprior.envs.tracking import TrackingConfig, TrackingEnv

    out, _ = retargeted
    clips = [load_clip(out / "clips" / f"{CLIPS[0]}.pt")]
    env = TrackingEnv(clips, out / "objects", TrackingConfig(num_envs=2, variant="g1", init="start"))
    env.reset()
    for _ in range(3):
        step = env.step(torch.zeros(2, env.act_dim))
    assert env.act_dim == 29 and torch.isfinite(step.obs).all()


def test_cli_check_prints_the_figures(source, tmp_path, capsys):
    from interprior.cli import main

    single = tmp_path / "one"
    (single / "clips").mkdir(parents=True)
    shutil.copy(source / "clips" / f"{CLIPS[2]}.pt", single / "clips")
    (single / "objects").symlink_to(source / "objects")
    assert main(["data", "retarget", "--embodiment", "g1", str(single), "--out", str(tmp_path / "g1"), "--check"]) == 0
    out = capsys.readouterr().out
    assert "foot_slide_cm" in out and "hand_gap_cm" in out and "(2)" in out and "over the limits" not in out
    assert (tmp_path / "g1" / "clips" / f"{CLIPS[2]}.pt").is_file()
    assert (tmp_path / "g1" / "objects" / "cylinder" / "cylinder.obj").is_file()  # a copy, not the link


def test_bad_inputs_are_one_line_errors(source, retargeted, tmp_path, capsys, monkeypatch):
    from interprior.cli import main

    def error(*args: str) -> str:
        assert main(["data", "retarget", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        return err

    out = str(tmp_path / "g1")
    assert "DIR" in error("--embodiment", "g1", str(tmp_path / "nope"), "--out", out)
    (tmp_path / "empty").mkdir()
    assert "no .pt motion files" in error("--embodiment", "g1", str(tmp_path / "empty"), "--out", out)
    assert "--embodiment" in error("--embodiment", "h1", str(source), "--out", out)
    assert "--out" in error("--embodiment", "g1", str(source), "--out", str(retargeted[0]))  # exists, no --force
    monkeypatch.setenv("INTERPRIOR_ASSETS", str(tmp_path / "no_assets"))
    assert "interprior assets fetch g1" in error("--embodiment", "g1", str(source), "--out", out)
    assert not (tmp_path / "g1").exists()


def test_hold_over_spans_and_label_map():
    from interprior.data.retarget.robot import g1_robot, map_contact_labels
    from interprior.data.retarget.spans import hold_over_spans

    values = np.arange(10.0)[:, None]
    mask = np.array([0, 1, 1, 1, 0, 0, 0, 1, 1, 0], dtype=bool)
    held = hold_over_spans(values, mask)[:, 0]
    assert np.allclose(held[1:4], 2.0) and np.allclose(held[7:9], 7.5)  # constant over each span
    assert np.allclose(held[[0, 4, 5, 6, 9]], [1.0, 3.375, 4.75, 6.125, 8.5])  # the changes blend in between
    robot = g1_robot()
    labels = -torch.ones(2, 52)
    labels[0, 40] = 1.0  # a right middle finger touches: the G1's right hand does
    labels[1, 3] = 0.0  # the left ankle unknown, its toe far: the left foot is unknown
    g1 = map_contact_labels(labels, robot)
    right = robot.hand_bodies[1]
    assert g1[0, right] == 1 and (np.delete(g1[0].numpy(), right) == -1).all()
    assert g1[1, robot.foot_bodies[0]] == 0 and g1[1, 0] == -1
