"""The G1 as the retargeter sees it: its MJCF (`interprior assets fetch g1`) compiled without visual meshes, its
collision geometry (capsules and spheres: the rubber hands', the soles'), its joint ranges, and which SMPL-X bodies
each of its bodies takes its contact labels from."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import mujoco
import numpy as np
import torch
from torch import Tensor

from interprior import schema
from interprior.assets.bodies import embodiment
from interprior.assets.embodiment import Embodiment
from interprior.assets.g1 import g1_model_path
from interprior.assets.g1_body import FEET, LEFT_HAND, RIGHT_HAND, TORSO

SIDES = ("left", "right")
HAND_GEOMS = ("left_hand_collision", "right_hand_collision")  # a capsule on each rubber hand (wrist_yaw link)
PALM_SIDE = (-1.0, 1.0)  # the rubber hands' palms face the wrist_yaw link's -y (left) and +y (right)
FOOT_MARGIN = 0.0005  # m: planted soles are put this far above the floor

# Each G1 body takes the contact labels of its nearest SMPL-X analogues ("{S}": L or R): +1 where any of them is
# +1, -1 where all are -1, else 0. The wrist roll/pitch links are the G1's distal forearm; its hand is the
# wrist_yaw link, which takes the labels of the whole SMPL-X hand.
_FINGERS = tuple(f"{finger}{k}" for finger in ("Index", "Middle", "Pinky", "Ring", "Thumb") for k in (1, 2, 3))
_SIDED = {
    "hip_pitch_link": ("Hip",), "hip_roll_link": ("Hip",), "hip_yaw_link": ("Hip",), "knee_link": ("Knee",),
    "ankle_pitch_link": ("Ankle",), "ankle_roll_link": ("Ankle", "Toe"),
    "shoulder_pitch_link": ("Thorax",), "shoulder_roll_link": ("Shoulder",), "shoulder_yaw_link": ("Shoulder",),
    "elbow_link": ("Elbow",), "wrist_roll_link": ("Elbow",), "wrist_pitch_link": ("Elbow",),
    "wrist_yaw_link": ("Wrist", *_FINGERS),
}
_CENTRE = {"pelvis": ("Pelvis",), "waist_yaw_link": ("Torso",), "waist_roll_link": ("Torso",),
           "torso_link": ("Spine", "Chest", "Neck", "Head", "L_Thorax", "R_Thorax")}


def contact_sources(name: str) -> tuple[str, ...]:
    """The SMPL-X bodies whose labels G1 body `name` takes."""
    if name in _CENTRE:
        return _CENTRE[name]
    side, part = name.split("_", 1)
    return tuple(f"{side[0].upper()}_{b}" for b in _SIDED[part])


@dataclass(frozen=True)
class Geoms:
    """Collision capsules and spheres as sample points on their axes (body frame) with a radius."""

    body: np.ndarray  # [G] owner body (embodiment index)
    points: np.ndarray  # [G, P, 3]
    radius: np.ndarray  # [G]
    names: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Robot:
    """The compiled G1 and the figures the targets and checks need (metres, in each body's or geom's frame)."""

    body: Embodiment
    model: mujoco.MjModel
    geoms: Geoms  # every collision capsule and sphere
    hand_radius: np.ndarray  # [2] the hand capsules' radii
    hand_centre: np.ndarray  # [2, 3] the capsule's centre (its geom frame's origin) in the wrist_yaw frame
    palm_axis: np.ndarray  # [2, 3] unit normal of the capsule's axis on the palm side (in the hand's x-y plane)
    sole_points: np.ndarray  # [P, 3] the sole capsules' end points in an ankle_roll link's frame (both feet)
    sole_radius: float
    ranges: np.ndarray  # [29, 2] hinge ranges (rad), full joint vector order
    label_index: Tensor  # [30, K] SMPL-X body indices per G1 body (padded by repeating the first)

    @property
    def sole_height(self) -> float:
        """Height of the ankle_roll origin when its flat sole touches the floor."""
        return float(-(self.sole_points[:, 2].min() - self.sole_radius))

    @property
    def sole_centre(self) -> float:
        """How far the sole's centre is ahead of the ankle_roll origin (along the foot)."""
        return float(0.5 * (self.sole_points[:, 0].min() + self.sole_points[:, 0].max()))

    @property
    def hand_bodies(self) -> tuple[int, int]:
        return self.body.body_index[LEFT_HAND], self.body.body_index[RIGHT_HAND]

    @property
    def hand_geoms(self) -> tuple[int, int]:
        return self.geoms.names.index(HAND_GEOMS[0]), self.geoms.names.index(HAND_GEOMS[1])

    @property
    def foot_bodies(self) -> tuple[int, int]:
        return self.body.body_index[FEET[0]], self.body.body_index[FEET[1]]

    @property
    def torso(self) -> str:
        return TORSO


def g1_robot() -> Robot:
    """The fetched G1 (an error naming `interprior assets fetch g1` when it is not)."""
    return _robot(g1_model_path())


@lru_cache(maxsize=2)
def _robot(path: Path) -> Robot:
    body = embodiment("g1")
    model = _kinematic_model(path)
    names = tuple(model.body(i).name for i in range(1, model.nbody))
    if names != body.body_names:
        raise ValueError(f"{path}: bodies {names[:3]}... are not the G1 embodiment's")
    geoms = _geoms(model)
    hands = [geoms.names.index(n) for n in HAND_GEOMS]
    seg = geoms.points[hands][:, [0, -1]]
    normal = np.cross(seg[:, 1] - seg[:, 0], [0.0, 0.0, 1.0])
    palm = normal / np.linalg.norm(normal, axis=-1, keepdims=True)
    palm *= np.sign(palm[:, 1] * np.array(PALM_SIDE))[:, None]
    foot = model.body(FEET[0]).id
    soles = [g for g in range(model.ngeom) if model.geom_bodyid[g] == foot and model.geom_contype[g]
             and model.geom_type[g] == mujoco.mjtGeom.mjGEOM_CAPSULE]
    sole_points = np.concatenate([_capsule_ends(model, g)[0] for g in soles])
    ranges = np.array([model.jnt_range[model.joint(n).id] for n in body.dof_names])
    sources = [[schema.BODY_INDEX[s] for s in contact_sources(n)] for n in body.body_names]
    width = max(len(s) for s in sources)
    index = torch.tensor([s + [s[0]] * (width - len(s)) for s in sources])
    centre = np.stack([model.geom_pos[model.geom(n).id] for n in HAND_GEOMS])
    return Robot(body, model, geoms, geoms.radius[hands], centre, palm, sole_points,
                 float(model.geom_size[soles[0], 0]), ranges, index)


def _kinematic_model(path: Path) -> mujoco.MjModel:
    """The MJCF without its visual meshes (their inertia is the bodies' explicit <inertial>, kept): what IK and
    checks need, compiled in a fraction of the time and memory (60 MB instead of 450 MB)."""
    spec = mujoco.MjSpec.from_file(str(path))
    for geom in [g for g in spec.geoms if g.type == mujoco.mjtGeom.mjGEOM_MESH]:
        spec.delete(geom)
    for mesh in list(spec.meshes):
        spec.delete(mesh)
    return spec.compile()


def _geoms(model: mujoco.MjModel, samples: int = 5) -> Geoms:
    """Every colliding capsule (`samples` points along its axis) and sphere (its centre, repeated)."""
    kinds = (mujoco.mjtGeom.mjGEOM_CAPSULE, mujoco.mjtGeom.mjGEOM_SPHERE)
    ids = [g for g in range(model.ngeom)
           if model.geom_contype[g] and int(model.geom_type[g]) in {int(k) for k in kinds}]
    s = np.linspace(0.0, 1.0, samples)[:, None]
    points = []
    for g in ids:
        ends, _ = _capsule_ends(model, g)  # a sphere: both ends at its centre (its size[1] is 0)
        points.append(ends[0] + s * (ends[1] - ends[0]))
    return Geoms(body=model.geom_bodyid[ids] - 1, points=np.stack(points), radius=model.geom_size[ids, 0].copy(),
                 names=tuple(model.geom(g).name for g in ids))


def _capsule_ends(model: mujoco.MjModel, geom: int) -> tuple[np.ndarray, float]:
    """[2, 3] a capsule's axis end points in its body's frame, and its radius."""
    half = model.geom_size[geom, 1] if model.geom_type[geom] == mujoco.mjtGeom.mjGEOM_CAPSULE else 0.0
    axis = _quat_matrix(model.geom_quat[geom])[:, 2] * half
    pos = model.geom_pos[geom]
    return np.stack([pos - axis, pos + axis]), float(model.geom_size[geom, 0])


def _quat_matrix(quat: np.ndarray) -> np.ndarray:
    out = np.zeros(9)
    mujoco.mju_quat2Mat(out, np.asarray(quat, dtype=np.float64))
    return out.reshape(3, 3)


def map_contact_labels(labels: Tensor, robot: Robot) -> Tensor:
    """[T, 52] SMPL-X labels {-1, 0, 1} -> [T, 30] G1 labels (see `contact_sources`)."""
    picked = labels[:, robot.label_index]  # [T, 30, K]
    plus, far = (picked > 0.5).any(-1), (picked < -0.5).all(-1)
    return plus.to(labels.dtype) - far.to(labels.dtype)
