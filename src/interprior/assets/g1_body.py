"""The Unitree G1 as an `Embodiment`: its bodies, hinges (own axes, rotated body frames), joint ranges and PD
drives read from the fetched MJCF (`interprior.assets.g1`), written once as a spec file beside it, and the named
body groups every kernel receives. The scene takes the robot's own body tree (meshes, collision capsules) from
the MJCF (`interprior.assets.mjcf_body`)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import mujoco
import numpy as np

from interprior.assets.embodiment import Embodiment
from interprior.assets.g1 import G1_DEFAULT_POSE, G1_ROOT_HEIGHT, g1_model_path, joint_drive
from interprior.assets.scene import Scene, SceneConfig, build_scene
from interprior.files import atomic_write_text

SPEC_NAME = "interprior_g1_spec.json"
LEFT_HAND, RIGHT_HAND = "left_wrist_yaw_link", "right_wrist_yaw_link"  # the rubber hands hang on these
FEET = ("left_ankle_roll_link", "right_ankle_roll_link")
TORSO = "torso_link"
PHYSICS_DT = 1.0 / 240.0  # for standalone PD checks: 8 steps per 30 Hz control step (mjlab steps it at 1/200 s)


def g1_spec(model: mujoco.MjModel) -> dict:
    """The spec (`interprior.assets.embodiment.load_spec`'s format) of the compiled G1: per body its parent,
    offset, frame rotation and hinge (axis, range in degrees, kp, kd, armature, effort limit)."""
    bodies = []
    for b in range(1, model.nbody):
        joints = []
        for j in range(model.body_jntadr[b], model.body_jntadr[b] + model.body_jntnum[b]):
            name = model.joint(j).name
            if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE:
                joints.append({"name": name, "type": "free"})
                continue
            kp, kd, armature, effort = joint_drive(name)
            joints.append({"name": name, "type": "hinge", "axis": [float(x) for x in model.jnt_axis[j]],
                           "range": [math.degrees(float(x)) for x in model.jnt_range[j]], "stiffness": kp,
                           "damping": kd, "armature": armature, "effort": effort})
        parent = int(model.body_parentid[b])
        bodies.append({"name": model.body(b).name, "parent": model.body(parent).name if parent else None,
                       "pos": [float(x) for x in model.body_pos[b]], "quat": [float(x) for x in model.body_quat[b]],
                       "joints": joints, "geoms": []})
    return {"about": "The Unitree G1 as interprior reads it from the fetched MJCF (made by interprior.assets.g1_body;"
                     " gains from interprior.assets.g1.joint_drive).", "bodies": bodies}


def g1_embodiment() -> Embodiment:
    """The G1 (needs `interprior assets fetch g1`; the error says so)."""
    return _g1_embodiment(g1_model_path())


@lru_cache(maxsize=2)
def _g1_embodiment(path: Path) -> Embodiment:
    spec = g1_spec(mujoco.MjModel.from_xml_path(str(path)))
    spec_path = path.parent / SPEC_NAME
    text = json.dumps(spec, indent=1)
    if not spec_path.is_file() or spec_path.read_text() != text:
        atomic_write_text(spec_path, text)
    names = tuple(b["name"] for b in spec["bodies"])
    parents = (-1,) + tuple(names.index(b["parent"]) for b in spec["bodies"][1:])
    key = names[1:]
    groups = (("key", key), ("rotation", names), ("contact", key), ("left_hand", (LEFT_HAND,)),
              ("right_hand", (RIGHT_HAND,)), ("fingertips", ()), ("feet", FEET), ("torso", (TORSO,)))
    jointed = tuple(i for i, b in enumerate(spec["bodies"]) if i and b["joints"])
    return Embodiment(name="g1", body_names=names, parents=parents, jointed_bodies=jointed, groups=groups,
                      spec_file=str(spec_path), mjcf=str(path), root_height=G1_ROOT_HEIGHT + 0.04)


@dataclass(frozen=True)
class G1Scene:
    """The G1 compiled by the scene builder, with what a standalone PD check or a deploy loop needs."""

    scene: Scene
    joint_names: tuple[str, ...]  # actuated hinges, in actuator (= qpos[7:7 + 29]) order
    kp: np.ndarray
    kd: np.ndarray
    armature: np.ndarray
    effort_limit: np.ndarray
    default_qpos: np.ndarray  # [nq]: root at G1_ROOT_HEIGHT, hinges at G1_DEFAULT_POSE, objects where the scene put them
    default_ctrl: np.ndarray  # [29]: PD targets of the default pose

    @property
    def model(self) -> mujoco.MjModel:
        return self.scene.model


def build_g1_scene(objects: Sequence = (), physics_dt: float = PHYSICS_DT, substeps: int = 8) -> G1Scene:
    """The fetched G1 on the ground (default 1/240 s implicitfast steps, 8 per 30 Hz control step) with a PD
    position actuator per hinge, and `objects` (object assets) beside it."""
    body = g1_embodiment()
    scene = build_scene(SceneConfig(body=body, objects=tuple(objects), physics_dt=physics_dt, substeps=substeps))
    joints = [j for b in body.spec["bodies"] for j in b["joints"] if j["type"] == "hinge"]
    names = tuple(j["name"] for j in joints)
    ctrl = np.array([G1_DEFAULT_POSE.get(n, 0.0) for n in names])
    qpos = scene.model.qpos0.copy()
    qpos[:7] = [0.0, 0.0, G1_ROOT_HEIGHT, 1.0, 0.0, 0.0, 0.0]
    qpos[scene.layout.dof_qpos_adr] = ctrl
    drive = np.array([[j["stiffness"], j["damping"], j["armature"], j["effort"]] for j in joints])
    return G1Scene(scene, names, drive[:, 0], drive[:, 1], drive[:, 2], drive[:, 3], qpos, ctrl)
