"""Validator findings on synthetic defects and on the real sample releases; `data inspect` end to end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from interprior import schema
from interprior.commands import data as data_command
from interprior.data.intermimic import clip_from_tensor, list_clips, save_clip
from interprior.data.validate import Finding, validate_clip, validate_file

INDEX_FINGERS = ["L_Index1", "L_Index2", "L_Index3", "R_Index1", "R_Index2", "R_Index3"]


def synthetic_clip(frames: int = 12):
    """A chain-consistent clip: rigid pose (identity rotations) translating along x."""
    data = torch.zeros(frames, schema.FILE_COLUMNS)
    t = torch.arange(frames, dtype=torch.float32)
    root = torch.stack([0.01 * t, torch.zeros_like(t), torch.full_like(t, 0.9)], dim=1)
    offsets = torch.linspace(-0.5, 0.5, schema.NUM_BODIES * 3).reshape(schema.NUM_BODIES, 3)
    offsets[0] = 0.0
    offsets[list(schema.FEET), 2] = -0.85
    identity = torch.tensor([0.0, 0.0, 0.0, 1.0])
    data[:, schema.COL_ROOT_POS] = root
    data[:, schema.COL_ROOT_ROT] = identity
    data[:, schema.COL_BODY_POS] = (root[:, None, :] + offsets).reshape(frames, -1)
    data[:, schema.COL_BODY_ROT] = identity.repeat(schema.NUM_BODIES)
    data[:, schema.COL_OBJ_ROT] = identity
    return clip_from_tensor(data, Path("sub1_box_000.pt"))


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


# --- synthetic defects ----------------------------------------------------------------------------------------


def test_clean_clip_has_no_findings():
    assert validate_clip(synthetic_clip()) == []


def test_moving_leaf_body_is_named_with_its_deviation():
    clip = synthetic_clip()
    toe = schema.BODY_INDEX["L_Toe"]
    clip.body_pos[::2, toe, 0] += 0.05  # 5 cm jumps on alternate frames
    findings = validate_clip(clip)
    assert codes(findings) == ["kinematic_chain"]
    assert findings[0].severity == "warning" and findings[0].bodies == ["L_Toe"]
    assert "L_Toe" in findings[0].message and "cm" in findings[0].message
    assert validate_clip(clip, tolerance=0.1) == []  # under a 10 cm tolerance it is fine


def test_bad_contact_labels_and_object_flag():
    clip = synthetic_clip()
    clip.contact[3, schema.BODY_INDEX["R_Wrist"]] = 0.5
    clip.obj_contact[4] = 2.0
    findings = {f.code: f for f in validate_clip(clip)}
    assert findings["contact_labels"].severity == "error" and findings["contact_labels"].bodies == ["R_Wrist"]
    assert "first frame 3" in findings["contact_labels"].message
    assert findings["obj_contact"].severity == "error" and "first frame 4" in findings["obj_contact"].message


def test_root_disagreeing_with_pelvis():
    clip = synthetic_clip()
    clip.root_pos[:, 2] += 0.02
    clip.root_rot[:] = torch.tensor([0.0, 1.0, 0.0, 0.0])  # 180 degrees about x
    assert set(codes(validate_clip(clip))) == {"root_pos", "root_rot"}


def test_non_unit_quaternions_in_memory():
    clip = synthetic_clip()
    clip.body_rot[2, schema.BODY_INDEX["Head"]] *= 2.0
    clip.obj_rot[5] *= 0.5
    findings = {f.code: f for f in validate_clip(clip)}
    assert findings["body_quat_norm"].bodies == ["Head"] and findings["body_quat_norm"].severity == "error"
    assert "obj_quat_norm" in findings
    assert "kinematic_chain" not in findings  # not meaningful with broken rotations


def test_feet_below_floor_is_info():
    clip = synthetic_clip()
    clip.body_pos[5, schema.BODY_INDEX["R_Toe"], 2] = -0.08
    findings = validate_clip(clip, tolerance=1.0)
    assert [(f.severity, f.code, f.bodies) for f in findings] == [("info", "feet_below_floor", ["R_Toe"])]


def test_load_notes_are_info():
    clip = synthetic_clip()
    clip.notes.append("dropped 1 leading zero frame")
    assert [(f.severity, f.code) for f in validate_clip(clip)] == [("info", "load_note")]


def test_validate_file_turns_load_errors_into_findings(tmp_path):
    clip, findings = validate_file(tmp_path / "missing.pt")
    assert clip is None
    assert [(f.severity, f.code) for f in findings] == [("error", "load")]
    assert "missing.pt" in findings[0].message and "not found" in findings[0].message


# --- real releases ---------------------------------------------------------------------------------------------


def test_omomo_new_has_no_chain_warnings(sample_dir):
    files = list_clips(sample_dir / "OMOMO_new")
    assert len(files) == 27
    for path in files:
        clip, findings = validate_file(path)
        assert clip is not None
        assert [f for f in findings if f.severity != "info"] == [], path.name


def test_omomo_first_release_names_exactly_the_index_fingers(sample_dir):
    # In the first release the finger positions are shifted by one finger (the index slots hold other joints);
    # with a fixed hand pose only the index bodies contradict the rotations.
    files = list_clips(sample_dir / "OMOMO")
    assert len(files) == 27
    for path in files:
        _, findings = validate_file(path)
        assert codes(findings) == ["kinematic_chain"], path.name
        assert findings[0].bodies == INDEX_FINGERS, path.name


def test_omomo_retarget_reports_the_dropped_frame_only(sample_dir):
    for path in list_clips(sample_dir / "OMOMO_retarget"):
        _, findings = validate_file(path)
        assert [(f.severity, f.code) for f in findings] == [("info", "load_note")], path.name
        assert "dropped 1 leading zero frame" in findings[0].message


# --- data inspect ------------------------------------------------------------------------------------------------


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="interprior")
    data_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_inspect_json_on_generated_folder(capsys, synth_data):
    status = run_cli(["data", "inspect", str(synth_data.clips_dir), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0
    assert (report["num_files"], report["num_loaded"], report["num_failed"]) == (6, 6, 0)
    assert report["finding_counts"] == {"error": 0, "warning": 0, "info": 0}  # clean, chain-consistent clips
    by_name = {c["name"]: c for c in report["clips"]}
    assert sorted(by_name) == sorted(synth_data.names())
    for row in synth_data.rows:
        clip = by_name[row["clip"]]
        assert (clip["subject"], clip["object"], clip["frames"], clip["fps"]) == ("sub0", row["object"], row["frames"],
                                                                                30.0)
        assert 0.0 < clip["contact"]["object_in_contact"] < 1.0  # held for part of the clip
    assert report["total_frames"] == sum(r["frames"] for r in synth_data.rows)


def test_inspect_json_on_sample_folder(capsys, sample_dir):
    status = run_cli(["data", "inspect", str(sample_dir / "OMOMO"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0
    assert (report["num_files"], report["num_loaded"], report["num_failed"]) == (27, 27, 0)
    assert report["finding_counts"] == {"error": 0, "warning": 27, "info": 0}
    first = report["clips"][0]
    assert (first["name"], first["subject"], first["object"]) == ("sub2_largetable_000", "sub2", "largetable")
    assert first["fps"] == 30.0
    assert first["frames"] == 153 and first["duration_s"] == pytest.approx(5.1)
    assert set(first["contact"]["groups"]) == {"left_hand", "right_hand", "feet", "other"}
    assert 0.0 <= first["contact"]["object_in_contact"] <= 1.0
    assert first["findings"][0]["bodies"] == INDEX_FINGERS
    assert report["total_frames"] == sum(c["frames"] for c in report["clips"])


def test_inspect_folder_with_a_broken_file(tmp_path, capsys):
    save_clip(synthetic_clip(), tmp_path / "sub1_box_000.pt")
    (tmp_path / "sub1_box_001.pt").write_bytes(b"not a torch file")
    status = run_cli(["data", "inspect", str(tmp_path)])
    text = capsys.readouterr().out
    assert status == 1
    assert "sub1_box_000" in text and "FAILED" in text and "sub1_box_001.pt" in text
    assert run_cli(["data", "inspect", str(tmp_path / "sub1_box_000.pt"), "--tolerance", "2"]) == 0
