"""Synthetic HOI generator (`interprior data synth`, interprior.data.synth): clips pass the validator and the quality
limits, replay kinematically on the default humanoid, are reproducible, defects are measurable, bad input is one
line. They check the small data set (6 clips: every skill and every object) that tests/conftest.py makes once per
run for the whole suite (`synth_data`)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from interprior import schema
from interprior.cli import main
from interprior.data.intermimic import load_clip
from interprior.data.synth import DEFECTS, OBJECT_NAMES, SKILLS, apply_defects, make_objects, quality_report
from interprior.data.synth.defects import defect_rng
from interprior.data.synth.generate import ClipSpec, clip_specs, generate_clip
from interprior.data.synth.grasp import PUSH_PRESS
from interprior.data.synth.quality import LIMITS, passes
from interprior.data.validate import validate_clip

SEED = 0
COUNT = 6  # skills cycle mod 4 and objects mod 5: six clips cover every skill and every object


@pytest.fixture(scope="module")
def dataset(synth_data):
    """(folder, generator result: rows and summary, clip name -> clip) of the session's synthetic data set."""
    assert (synth_data.seed, len(synth_data.rows)) == (SEED, COUNT)
    clips = {row["clip"]: load_clip(row["file"]) for row in synth_data.rows}
    return synth_data.root, synth_data, clips


@pytest.fixture(scope="module")
def objects():
    return make_objects(SEED)


def test_layout_and_coverage(dataset):
    out, result, clips = dataset
    assert {r["skill"] for r in result.rows} == set(SKILLS)
    assert {r["object"] for r in result.rows} == set(OBJECT_NAMES)
    for name in OBJECT_NAMES:
        assert (out / "objects" / name / f"{name}.obj").is_file()
    manifest = json.loads((out / "synth.json").read_text())
    assert manifest["seed"] == SEED and len(manifest["rows"]) == COUNT
    for row in result.rows:
        clip = clips[row["clip"]]
        assert clip.subject == "sub0" and clip.object_name == row["object"]
        assert 4.0 <= clip.duration <= 8.0


def test_validator_finds_no_errors(dataset):
    _, _, clips = dataset
    for clip in clips.values():
        errors = [f for f in validate_clip(clip) if f.severity == "error"]
        assert not errors, (clip.name, errors)
        assert not [f for f in validate_clip(clip) if f.code == "kinematic_chain"]


def test_quality_limits(dataset, objects):
    """Feet above the floor and not sliding, hands on the surface in contact, object supported, joints in range
    (measured on the re-loaded files)."""
    _, result, clips = dataset
    for row in result.rows:
        report = quality_report(clips[row["clip"]], objects[row["object"]])
        assert not passes(report), (row["clip"], {k: report[k] for k in LIMITS})
        assert report["contact_frames"] > 0
        # the deepest planned palm: pushing palms press PUSH_PRESS into the face (holding palms 0.8 cm)
        assert report["hand_penetration_cm"] < 100 * PUSH_PRESS and report["grip_slip_cm"] < 1.0
    assert result.summary["validation_errors"] == 0


def test_starts_standing_still_with_arms_down(dataset):
    _, _, clips = dataset
    wrists = [schema.BODY_INDEX["L_Wrist"], schema.BODY_INDEX["R_Wrist"]]
    for clip in clips.values():
        start = clip.body_pos[:6]
        assert float((start - start[0]).norm(dim=-1).max()) < 0.01  # quiet
        assert float(start[0, wrists, 2].max()) < 1.0  # hands hang below the hips, not a T-pose
        assert float(clip.root_pos[0, 2]) > 0.85


def test_contact_labels(dataset):
    """+1 on both hands while the object flag is set, never on the feet, nothing +1 outside contact."""
    _, _, clips = dataset
    hands = list(schema.LEFT_HAND + schema.RIGHT_HAND)
    for clip in clips.values():
        flag = clip.obj_contact > 0.5
        assert flag.any()
        assert (clip.contact[flag][:, hands] == 1).all()
        assert (clip.contact[:, list(schema.FEET)] < 1).all()
        assert (clip.contact[~flag] < 1).all()
        assert set(clip.contact.unique().tolist()) <= {-1.0, 0.0, 1.0}


def test_object_moves_only_when_held(dataset):
    _, _, clips = dataset
    for clip in clips.values():
        step = (clip.obj_pos[1:] - clip.obj_pos[:-1]).norm(dim=-1)
        held = (clip.obj_contact[1:] > 0.5) & (clip.obj_contact[:-1] > 0.5)
        assert float(step[~held].max()) < 1e-5, clip.name


def test_kinematic_replay_default_humanoid(dataset):
    from interprior.eval.replay import kinematic_replay

    out, _, clips = dataset
    for clip in clips.values():
        if clip.object_name in ("box", "cylinder"):  # quick convex decompositions
            report, _, _ = kinematic_replay(clip, out / "objects", skeleton="default")
            assert report.body_error_max_cm < 0.5
            assert report.object_pos_error_mm < 0.1


def test_reproducible_and_independent_of_count(dataset, objects):
    _, _, clips = dataset
    assert clip_specs(2, SEED)[1] == clip_specs(COUNT, SEED)[1]
    spec = clip_specs(COUNT, SEED)[1]
    again = generate_clip(spec, objects).clip
    stored = clips[spec.name]
    assert torch.allclose(again.body_pos, stored.body_pos, atol=1e-6)
    assert torch.equal(again.contact, stored.contact)
    other = generate_clip(replace(spec, seed=SEED + 1), make_objects(SEED + 1)).clip
    assert not torch.allclose(other.body_pos[-1], stored.body_pos[-1], atol=1e-2)


def test_objects(objects):
    import trimesh

    from interprior.data.synth.ik import HumanoidIK
    from interprior.data.synth.skills import HUMAN_MASS

    assert objects["box"].bounds[1] - objects["box"].bounds[0] == pytest.approx([0.4, 0.4, 0.4])
    for name, obj in objects.items():
        assert "_" not in name
        size = obj.bounds[1] - obj.bounds[0]
        assert size.max() <= 0.451 and obj.mass < 20.0
        mesh = obj.mesh()
        assert np.abs(np.asarray(mesh.vertices).mean(axis=0)).max() < 1e-9  # vertex-mean centred
        assert isinstance(mesh, trimesh.Trimesh) and mesh.volume == pytest.approx(obj.volume, rel=1e-6)
    assert HumanoidIK().mass == pytest.approx(HUMAN_MASS, abs=0.01)


def test_defects_are_measurable_and_clean_clips_unchanged(dataset, objects, tmp_path):
    _, result, clips = dataset
    row = next(r for r in result.rows if r["skill"] == "pickup")
    clean = clips[row["clip"]]
    obj = objects[row["object"]]
    base = quality_report(clean, obj)
    damaged = {}
    for name in DEFECTS:
        clip = apply_defects(clean, [name], defect_rng(SEED, row["index"]))
        assert clip.name == f"{clean.name}-{name}" and any(name in n for n in clip.notes)
        damaged[name] = quality_report(clip, obj)
    assert damaged["floating"]["hand_gap_cm"] > base["hand_gap_cm"] + 1.5
    assert damaged["floating"]["grip_slip_cm"] > base["grip_slip_cm"] + 3.0
    assert damaged["penetration"]["object_below_floor_cm"] > 2.0
    assert damaged["penetration"]["hand_penetration_cm"] > base["hand_penetration_cm"] + 1.0
    assert damaged["jitter"]["hf_body_mm"] > 3 * base["hf_body_mm"]
    assert damaged["flat-hands"]["finger_curl_deg"] < 0.01 < base["finger_curl_deg"]
    # through the command: defective files get a suffix, the clean clip of the same seed is unchanged
    out = tmp_path / "damaged"
    assert main(["data", "synth", "--out", str(out), "--clips", "2", "--seed", str(SEED),
                 "--defects", "jitter,floating", "--json"]) == 0
    files = sorted(p.name for p in (out / "clips").glob("*.pt"))
    assert files == ["sub0_box_000-floating-jitter.pt", "sub0_smallbox_001-floating-jitter.pt"]
    again = generate_clip(ClipSpec(1, "pickup", "smallbox", SEED), objects).clip
    assert torch.allclose(again.body_pos, clips["sub0_smallbox_001"].body_pos, atol=1e-6)


@pytest.mark.parametrize("args, word", [
    (["--skills", "dance"], "--skills"),
    (["--defects", "wobble"], "--defects"),
    (["--clips", "0"], "--clips"),
    (["--clips", "-3"], "--clips"),
])
def test_bad_arguments_are_one_line_errors(args, word, tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert word in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_unwritable_out_is_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["data", "synth", "--out", str(blocker / "sub"), "--clips", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--out" in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_selection_by_skill(synth_data):
    """`data.skills` keeps the clips the manifest gives those skills (a skill expert's data); a skill no clip has
    and a folder without a manifest are refused by name."""
    from interprior.data.selection import DataSelection
    from interprior.errors import InterpriorError

    sel = DataSelection(data=str(synth_data.clips_dir), object_name="all", skills=("pickup", "push"))
    want = {r["clip"] for r in synth_data.rows if r["skill"] in ("pickup", "push")}
    clips, left_out = sel.select()
    assert {c.name for c in clips} == want and len(want) >= 2
    assert all(why.startswith("skill not") for name, why in left_out.items())
    with pytest.raises(InterpriorError, match="jump"):
        DataSelection(data=str(synth_data.clips_dir), object_name="all", skills=("jump",)).load()


def test_clip_skills_read_a_retargeted_sets_manifest(tmp_path):
    """A retargeted set (`data retarget`) keeps its source's skills in retarget.json's rows: per-skill figures and
    skill experts work on it as on a synthetic set; a folder with neither manifest has no skills."""
    import json

    from interprior.data.synth.dataset import clip_skills

    (tmp_path / "g1" / "clips").mkdir(parents=True)
    rows = [{"clip": "sub0_box_000", "skill": "reach"}, {"clip": "sub0_box_001", "skill": "push"}, {"clip": "x"}]
    (tmp_path / "g1" / "retarget.json").write_text(json.dumps({"complete": True, "rows": rows}))
    assert clip_skills(tmp_path / "g1" / "clips") == {"sub0_box_000": "reach", "sub0_box_001": "push"}
    (tmp_path / "other" / "clips").mkdir(parents=True)
    assert clip_skills(tmp_path / "other" / "clips") == {}
