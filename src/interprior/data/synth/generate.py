"""From a seed to clips: which skill and object each clip gets, its plan, the IK, the clip and its labels.

Clip i of seed S draws everything from `numpy.random.default_rng([S, i])`, so a clip does not depend on how many
clips are made, on the worker that makes it, or on the defects asked for (those draw from their own stream).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from interprior.data.clip import Clip
from interprior.data.synth import hands
from interprior.data.synth.ik import HumanoidIK
from interprior.data.synth.labels import label_contacts
from interprior.data.synth.objects import OBJECT_NAMES, SynthObject, make_objects
from interprior.data.synth.skills import SKILLS, ClipPlan, plan_clip, yaw_quat
from interprior.data.synthetic import clip_from_joint_angles

SUBJECT = "sub0"


@dataclass(frozen=True)
class ClipSpec:
    index: int
    skill: str
    object: str
    seed: int

    @property
    def name(self) -> str:
        return f"{SUBJECT}_{self.object}_{self.index:03d}"


def clip_specs(count: int, seed: int, skills=SKILLS, objects=OBJECT_NAMES) -> list[ClipSpec]:
    """Skills and objects cycle independently (clip i: skill i mod #skills, object i mod #objects), so any
    max(#skills, #objects) consecutive clips cover every skill and every object."""
    return [ClipSpec(i, skills[i % len(skills)], objects[i % len(objects)], int(seed)) for i in range(count)]


_IK: list = []


def _ik() -> HumanoidIK:
    """The process's IK solver (built on first use: compiling the model takes ~0.2 s)."""
    if not _IK:
        _IK.append(HumanoidIK())
    return _IK[0]


@dataclass
class Generated:
    clip: Clip
    plan: ClipPlan
    spec: ClipSpec


def generate_clip(spec: ClipSpec, objects: dict[str, SynthObject] | None = None) -> Generated:
    """One clean clip (no defects)."""
    objects = make_objects(spec.seed) if objects is None else objects
    obj = objects[spec.object]
    rng = np.random.default_rng([spec.seed, spec.index])
    plan = plan_clip(spec.skill, obj, rng)
    root_pos, root_rot, angles = _ik().solve(plan.targets)
    fingers = hands.finger_angles(plan.grip)
    angles[:, list(hands.FINGER_DOFS)] = fingers[:, list(hands.FINGER_DOFS)]
    t = torch.from_numpy
    clip = clip_from_joint_angles(spec.name, t(root_pos), t(root_rot), t(angles), t(plan.obj_pos),
                                  t(yaw_quat(plan.obj_yaw)))
    labels, flag = label_contacts(clip, obj, plan.contact, plan.planted, plan.hand_contact)
    clip = replace(clip, contact=labels, obj_contact=flag, subject=SUBJECT, object_name=spec.object,
                   notes=[f"synthetic: skill {spec.skill}, object {spec.object}, seed {spec.seed}, clip {spec.index}"])
    return Generated(clip, plan, spec)
