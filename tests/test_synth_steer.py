"""The steering skills of the synthetic generator (`interprior data synth --skills walk,...` and the recipe
configs/data/steer.json): each makes valid clips that pass the quality limits, 5-15 s long, and the skills cover
what a steered humanoid is asked (start headings all round, carries 1-3 m in every direction, one-hand touches,
holds at a height, pushes that turn). Variation is checked on the plans (no IK: milliseconds per clip); one clip
per skill goes through the IK and the checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from interprior import schema
from interprior.cli import main
from interprior.data.intermimic import load_clip
from interprior.data.synth import ALL_OBJECTS, STEER_SKILLS, load_recipe, make_objects, quality_report
from interprior.data.synth.generate import ClipSpec, clip_specs, generate_clip
from interprior.data.synth.grasp import PUSH_PRESS
from interprior.data.synth.quality import LIMITS, passes
from interprior.data.synth.skills import plan_clip
from interprior.data.synth.threads import single_threaded
from interprior.data.validate import validate_clip

SEED = 0
RECIPE = Path(__file__).resolve().parents[1] / "configs" / "data" / "steer.json"
PLANS = 16  # plans per skill for the variation checks
WRIST = [schema.BODY_INDEX["L_Wrist"], schema.BODY_INDEX["R_Wrist"]]


@pytest.fixture(scope="module")
def objects():
    return make_objects(SEED)


def _plans(skill: str, objects, count: int = PLANS):
    names = list(ALL_OBJECTS)
    with single_threaded():  # the placement's reach model runs the IK once per process
        return [plan_clip(skill, objects[names[i % len(names)]], np.random.default_rng([SEED, i]))
                for i in range(count)]


def _wrap(a):
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def _one_hand_touch_index(objects) -> int:
    with single_threaded():
        for i in range(40):
            plan = plan_clip("touch", objects["longbox"], np.random.default_rng([SEED, i]))
            if plan.hand_contact.any(axis=0).sum() == 1:
                return i
    raise AssertionError("no one-hand touch in 40 clips")


@pytest.fixture(scope="module")
def generated(objects):
    """One clip per steering skill through the IK (a one-hand touch; the extra objects included)."""
    picks = {"walk": ("box", 0), "locomote": ("heavybox", 1), "touch": ("longbox", _one_hand_touch_index(objects)),
             "lift_hold": ("cylinder", 3), "place": ("bigbox", 2), "push_along": ("stool", 4)}
    with single_threaded():
        return {skill: generate_clip(ClipSpec(i, skill, obj, SEED), objects) for skill, (obj, i) in picks.items()}


def test_every_skill_makes_a_clean_clip(generated, objects):
    for skill, g in generated.items():
        clip = g.clip
        assert 5.0 <= clip.duration <= 15.0, (skill, clip.duration)
        assert not [f for f in validate_clip(clip) if f.severity == "error"], skill
        report = quality_report(clip, objects[g.spec.object])
        assert not passes(report), (skill, {k: report[k] for k in LIMITS})
        # the deepest planned palm: pushing palms press PUSH_PRESS into the face (holding palms 0.8 cm)
        assert report["hand_penetration_cm"] < 100 * PUSH_PRESS and report["grip_slip_cm"] < 1.0, skill
        assert report["body_penetration_cm"] < 2.5, skill
        start = clip.body_pos[:6]
        assert float((start - start[0]).norm(dim=-1).max()) < 0.01  # starts standing still
        assert (clip.contact[:, list(schema.FEET)] < 1).all()


def test_contact_and_object_motion(generated):
    for skill in ("walk", "locomote"):  # no interaction: the object stays and nothing touches it
        clip = generated[skill].clip
        assert not (clip.obj_contact > 0).any() and not (clip.contact > 0).any()
        assert float((clip.obj_pos - clip.obj_pos[0]).norm(dim=-1).max()) < 1e-6
    touch = generated["touch"].clip  # one hand on it, the object stays
    flag = touch.obj_contact > 0.5
    on = (touch.contact[flag][:, WRIST] == 1).all(dim=0)
    assert flag.any() and int(on.sum()) == 1
    other = list(schema.RIGHT_HAND if bool(on[0]) else schema.LEFT_HAND)
    assert (touch.contact[:, other] < 1).all()
    assert float((touch.obj_pos - touch.obj_pos[0]).norm(dim=-1).max()) < 1e-6
    for skill, low in (("place", 1.0), ("push_along", 0.8)):
        clip = generated[skill].clip
        moved = float((clip.obj_pos[-1, :2] - clip.obj_pos[0, :2]).norm())
        assert low - 0.01 <= moved <= 3.0, (skill, moved)
        step = (clip.obj_pos[1:] - clip.obj_pos[:-1]).norm(dim=-1)
        held = (clip.obj_contact[1:] > 0.5) & (clip.obj_contact[:-1] > 0.5)
        assert float(step[~held].max()) < 1e-5, skill  # moves only while held


def test_durations_and_no_contact_where_none(objects):
    for skill in STEER_SKILLS:
        for plan in _plans(skill, objects, 8):
            seconds = plan.num_frames / 30.0
            assert 5.0 <= seconds <= 15.0, (skill, seconds)
            assert plan.contact.any() == (skill not in ("walk", "locomote")), skill


def test_walk_starts_all_round_and_ends_near_the_object(objects):
    offsets, distances = [], []
    for plan in _plans("walk", objects, 24):
        feet = plan.targets.foot_pos[:, :, :2].mean(axis=1)
        travel = feet[-1] - feet[0]
        distances.append(np.linalg.norm(travel))
        offsets.append(_wrap(plan.targets.pelvis_yaw[0] - np.arctan2(travel[1], travel[0])))
        to_obj = plan.obj_pos[-1, :2] - feet[-1]
        assert abs(_wrap(plan.targets.pelvis_yaw[-1] - np.arctan2(to_obj[1], to_obj[0]))) < 0.5  # facing it
        near = np.linalg.norm(to_obj) - plan.object.side_distance(np.array([1.0, 0.0]))
        assert 0.2 < near < 1.0, near  # ankles 0.15-0.45 m + toe length short of its near side
    quadrants = set(np.floor((np.array(offsets) + np.pi) / (np.pi / 2)).astype(int))
    assert quadrants == {0, 1, 2, 3}, offsets  # headings all round, away from the object included
    assert 0.95 <= min(distances) and max(distances) <= 4.05 and max(distances) > 2.5, distances


def test_place_carries_one_to_three_metres_every_way(objects):
    directions = []
    for plan in _plans("place", objects, 20):
        moved = plan.obj_pos[-1, :2] - plan.obj_pos[0, :2]
        assert 1.0 - 1e-6 <= np.linalg.norm(moved) <= 3.0 + 1e-6
        assert abs(plan.obj_pos[-1, 2] - plan.obj_pos[0, 2]) < 1e-9  # put down on the floor
        directions.append(_wrap(np.arctan2(moved[1], moved[0]) - plan.targets.pelvis_yaw[0]))
    quadrants = set(np.floor((np.array(directions) + np.pi) / (np.pi / 2)).astype(int))
    assert len(quadrants) == 4, directions  # ahead, behind, left and right of the humanoid


def test_push_along_straight_and_turning(objects):
    turns = []
    for plan in _plans("push_along", objects):
        moved = np.linalg.norm(plan.obj_pos[-1, :2] - plan.obj_pos[0, :2])
        assert 0.6 <= moved <= 2.3
        assert np.allclose(plan.obj_pos[:, 2], plan.obj_pos[0, 2])  # along the floor
        turns.append(abs(_wrap(plan.obj_yaw[-1] - plan.obj_yaw[0])))
    assert min(turns) < 0.05 and max(turns) > 0.4, turns


def test_lift_hold_holds_at_waist_to_chest_height(objects):
    for plan in _plans("lift_hold", objects, 10):
        palm_z = plan.targets.hand_pos[:, :, 2].mean(axis=1)  # wrists: a little above the palms
        top = palm_z.max()
        assert 0.85 <= top <= 1.35, top
        still = np.abs(np.diff(plan.obj_pos[:, 2])) < 1e-6
        held_up = plan.contact[1:] & still & (plan.obj_pos[1:, 2] > plan.obj_pos[0, 2] + 0.3)
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], held_up.astype(int), [0]]))))[::2]
        assert runs.max() / 30.0 >= 1.0  # held still up there for at least a second


def test_touch_hands_and_surfaces(objects):
    kinds = set()
    for plan in _plans("touch", objects, 20):
        hands = tuple(bool(h) for h in plan.hand_contact.any(axis=0))
        kinds.add(hands)
        assert not np.any(np.diff(plan.obj_pos, axis=0))  # never lifted or moved
        both = plan.hand_contact.all(axis=1)
        assert (both == plan.contact).all() if hands == (True, True) else not both.any()
    assert kinds == {(True, False), (False, True), (True, True)}


def test_locomote_stays_clear_of_the_object_and_stops(objects):
    for plan in _plans("locomote", objects, 10):
        feet = plan.targets.foot_pos[:, :, :2]
        assert np.linalg.norm(feet - plan.obj_pos[:, None, :2], axis=-1).min() > 0.8
        centre = feet.mean(axis=1)
        walked = np.abs(np.diff(plan.targets.pelvis_yaw)).sum() + np.linalg.norm(np.diff(centre, axis=0), axis=1).sum()
        assert walked > 1.0
        still = np.all(plan.planted, axis=1)  # both feet down between legs and at the ends
        assert still[0] and still[-1]


def test_recipe_covers_every_skill_and_object(tmp_path):
    train, test = load_recipe(RECIPE), load_recipe(RECIPE, "eval")
    assert set(train["skills"]) == set(STEER_SKILLS) and set(train["objects"]) == set(ALL_OBJECTS)
    assert train["seconds"] == (5.0, 15.0) and train["seed"] != test["seed"]
    assert 190 <= train["clips"] <= 250 and test["clips"] >= 50
    for part in (train, test):
        specs = clip_specs(part["clips"], part["seed"], part["skills"], part["objects"])
        assert {(s.skill, s.object) for s in specs} == {(a, b) for a in part["skills"] for b in part["objects"]}
    out = tmp_path / "steer_eval"
    assert main(["data", "synth", "--recipe", str(RECIPE), "--eval", "--clips", "2", "--out", str(out),
                 "--objects", "box,heavybox", "--json"]) == 0
    manifest = json.loads((out / "synth.json").read_text())
    assert manifest["seed"] == test["seed"] and manifest["seconds"] == [5.0, 15.0]
    assert manifest["recipe"]["part"] == "eval" and manifest["skills"] == list(STEER_SKILLS)
    assert [(r["skill"], r["object"]) for r in manifest["rows"]] == [("walk", "box"), ("locomote", "heavybox")]
    clip = load_clip(out / "clips" / "sub0_heavybox_001.pt")
    assert clip.object_name == "heavybox" and 5.0 <= clip.duration <= 15.0


@pytest.mark.parametrize("args, word", [
    (["--eval"], "--eval"),
    (["--recipe", "no/such/recipe.json"], "--recipe"),
    (["--skills", "walk,fly"], "--skills"),
])
def test_recipe_errors_are_one_line(args, word, tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert word in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_bad_recipe_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"skills": ["walk"], "objects": ["box"], "clips": 0}))
    assert main(["data", "synth", "--out", str(tmp_path / "x"), "--recipe", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--recipe" in err and "clips" in err and len(err.splitlines()) == 1


def test_push_palms_press_into_the_pushed_face(objects):
    """Pushing palms are planned PUSH_PRESS inside the pushed face (boxes) or surface (the cylinder), as holding
    palms are GRIP_SQUEEZE inside the sides: a policy standing a little short still presses on the object."""
    from interprior.data.synth.grasp import PUSH_PRESS, palm_contact_point, push_anchors

    u = np.array([1.0, 0.0])
    for name in ("box", "heavybox", "cylinder", "stool"):
        obj = objects[name]
        centre = np.array(obj.grip_part.center)
        for side, anchor in zip("LR", push_anchors(obj, u)):
            palm = anchor.rot @ palm_contact_point(side) + anchor.pos - centre
            if obj.grip_part.kind == "cylinder":
                depth = float(np.hypot(palm[0], palm[1]))
                assert depth == pytest.approx(obj.grip_part.half[0] - PUSH_PRESS, abs=1e-9)
            else:
                assert float(palm[:2] @ u) == pytest.approx(obj.side_distance(u) - PUSH_PRESS, abs=1e-9)
