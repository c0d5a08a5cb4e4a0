"""Whole-body inverse kinematics on our own humanoid with mink (differential IK as a QP on MuJoCo).

The IK model is compiled by `interprior.assets.scene.build_scene` (body-only variant: the 21 body joints of the
simulator, same hinges, same axes, same bone offsets; fingers are posed separately, see `hands`). Its joint ranges
are narrowed to natural human ranges (inside the simulator's, which are ±180° for body joints) so the solver
cannot reach a target by bending a knee sideways. Every frame is solved starting from the previous frame's
solution (a few QP iterations), so the motion inherits the targets' smoothness.

Tasks, roughly in order of weight: feet (position and yaw, flat), hands (wrist pose that puts the palm's contact
point on the surface with the palm normal against it), centre of mass over the support (horizontal only), pelvis
heading / lean, the pelvis above the centre of mass while an object is held up, elbows (softly, out to the side
while holding, so the forearms do not lie in the object's surface), a posture regulariser toward the keyframed
posture (`keyframes`), which decides everything the other tasks leave open, and temporal smoothness (every joint
and the pelvis pulled toward the previous frame; without it the unregularised free joint let the pelvis jump by
centimetres between frames during steps). Knees and trunk are kept clear of the object by the placement
(`reach`), not by the IK: MuJoCo-based collision constraints (mink's CollisionAvoidanceLimit) made the QP chatter
when hands had to touch the same object.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from interprior import schema
from interprior.assets.embodiment import EMBODIMENTS
from interprior.assets.humanoid import default_offsets, joint_ranges
from interprior.assets.kinematics import KinematicTree
from interprior.assets.scene import SceneConfig, build_scene, standing_pelvis_height
from interprior.data.contacts import body_lowest_z, default_geometry
from interprior.data.synth import keyframes

VARIANT = EMBODIMENTS["body_only"]

PELVIS_AHEAD_OF_COM = 0.02  # m, standing upright
MAX_MIDDLE_ANGLE = 1.48  # rad (85°), see natural_limits

# Natural ranges (rad) of the left side, x/y/z hinges; the right side mirrors x and z (reflection about the
# sagittal plane turns Rx(a) into Rx(-a), Rz(a) into Rz(-a) and keeps Ry).
_LEFT_LIMITS: dict[str, tuple[tuple[float, float], ...]] = {
    "Hip": ((-0.35, 0.7), (-2.1, 0.5), (-0.6, 0.6)),
    "Knee": ((-0.08, 0.08), (0.0, 2.4), (-0.15, 0.15)),
    "Ankle": ((-0.35, 0.35), (-0.9, 0.8), (-0.4, 0.4)),
    "Toe": ((-0.01, 0.01), (-0.01, 0.01), (-0.01, 0.01)),  # feet stay flat: the toe hinge is not used
    "Thorax": ((-0.3, 0.3), (-0.3, 0.3), (-0.3, 0.3)),
    "Shoulder": ((-1.6, 0.9), (-1.5, 1.5), (-1.9, 0.7)),
    "Elbow": ((-0.15, 0.15), (-1.6, 1.6), (-2.5, 0.0)),
    "Wrist": ((-1.2, 1.0), (-1.0, 1.0), (-0.6, 0.6)),
}
_CENTRE_LIMITS: dict[str, tuple[tuple[float, float], ...]] = {
    "Torso": ((-0.25, 0.25), (-0.25, 0.7), (-0.35, 0.35)),
    "Spine": ((-0.25, 0.25), (-0.25, 0.7), (-0.35, 0.35)),
    "Chest": ((-0.25, 0.25), (-0.25, 0.7), (-0.35, 0.35)),
    "Neck": ((-0.3, 0.3), (-0.5, 0.6), (-0.6, 0.6)),
    "Head": ((-0.3, 0.3), (-0.5, 0.6), (-0.6, 0.6)),
}


def natural_limits() -> np.ndarray:
    """[153, 2] natural hinge ranges (rad) for the body joints, intersected with the simulator's ranges;
    finger dofs keep the simulator's ranges."""

    out = joint_ranges().copy()
    for name, axes in _CENTRE_LIMITS.items():
        b = schema.BODY_INDEX[name]
        out[(b - 1) * 3:(b - 1) * 3 + 3] = axes
    for part, axes in _LEFT_LIMITS.items():
        for side in "LR":
            b = schema.BODY_INDEX[f"{side}_{part}"]
            for a, (lo, hi) in enumerate(axes):
                if side == "R" and a != 1:
                    lo, hi = -hi, -lo
                out[(b - 1) * 3 + a] = (lo, hi)
    sim = joint_ranges()
    out[:, 0] = np.maximum(out[:, 0], sim[:, 0])
    out[:, 1] = np.minimum(out[:, 1], sim[:, 1])
    # The simulator derives joint angles from body rotations as XYZ Euler angles with the middle (y) angle in
    # [-90°, 90°]; beyond that the same rotation comes back as (x + 180°, 180° - y, z + 180°) and the tracked
    # angles would jump. Every y hinge stays inside MAX_MIDDLE_ANGLE (knee and hip flexion included).
    y = np.arange(1, schema.NUM_DOFS, 3)
    out[y, 0] = np.maximum(out[y, 0], -MAX_MIDDLE_ANGLE)
    out[y, 1] = np.minimum(out[y, 1], MAX_MIDDLE_ANGLE)
    return out


@dataclass
class Targets:
    """Per-frame IK targets (world frame, metres/radians). Hand targets are wrist-frame poses; their weight
    0..1 fades a hand task in and out (0 = the arm follows the posture regulariser)."""

    foot_pos: np.ndarray  # [T, 2, 3] ankle origin (L, R)
    foot_yaw: np.ndarray  # [T, 2]
    pelvis_yaw: np.ndarray  # [T]
    pelvis_pitch: np.ndarray  # [T] forward lean of the pelvis
    posture: np.ndarray  # [T, 153] keyframed joint angles the regulariser pulls toward
    com_xy: np.ndarray  # [T, 2] target of the humanoid's own centre of mass
    hand_pos: np.ndarray  # [T, 2, 3] wrist origin
    hand_rot: np.ndarray  # [T, 2, 3, 3] wrist orientation
    hand_w: np.ndarray  # [T, 2]
    hand_mix: np.ndarray  # [T, 2] 0..1: share of the planned pose vs. the hand's pose when its task switched on
    elbow_pos: np.ndarray  # [T, 2, 3] where the elbows should be while the hands hold (forearms off the surface)
    elbow_w: np.ndarray  # [T, 2]
    pelvis_xy_w: np.ndarray  # [T] 0..1 weight of keeping the pelvis above the COM target (object held up)

    @property
    def num_frames(self) -> int:
        return int(self.foot_pos.shape[0])


@dataclass(frozen=True)
class Weights:
    foot_pos: float = 200.0
    foot_rot: float = 100.0
    hand_pos: float = 60.0
    hand_rot: tuple = (12.0, 12.0, 3.0)  # wrist-frame axes: tilting the palm costs more than turning it in plane
    elbow: float = 6.0
    pelvis_xy: float = 30.0
    pelvis_rot: float = 15.0
    com: float = 20.0
    posture_legs: float = 2.0
    posture_spine: float = 3.0
    posture_neck: float = 4.0
    posture_arms: float = 0.5
    posture_free_arms: float = 3.0
    smooth: float = 2.0
    smooth_root: float = 30.0
    damping: float = 1e-3


def rot_z(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_y(pitch: float) -> np.ndarray:
    c, s = np.cos(pitch), np.sin(pitch)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


@lru_cache(maxsize=1)
def _model():
    """The body-only humanoid compiled by the scene builder, with natural joint ranges."""
    import mujoco


    scene = build_scene(SceneConfig(body=VARIANT, object_contact_sensors=False))
    model = scene.model
    limits = natural_limits()
    dof_index = np.array(VARIANT.dof_index)
    for d in dof_index:
        j = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, schema.DOF_NAMES[d])
        model.jnt_range[j] = limits[d]
    return scene, model, dof_index


@lru_cache(maxsize=1)
def _ankle_heights() -> tuple[float, float]:
    return tuple(_compute_ankle_heights())


def ankle_heights() -> np.ndarray:
    """[2] ankle origin heights (L, R) at which each flat foot's lowest point touches the floor."""
    return np.array(_ankle_heights())


def _compute_ankle_heights() -> np.ndarray:
    """[2] ankle origin heights (L, R) at which each flat foot's lowest point touches the floor."""
    import torch

    tree = KinematicTree.from_offsets(default_offsets())
    pos, rot = tree.forward(torch.zeros(1, 3, dtype=torch.float64), torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64),
                            torch.zeros(1, schema.NUM_DOFS, dtype=torch.float64))
    low = body_lowest_z(pos, rot, default_geometry())[0]
    out = []
    for side in "LR":
        a, t = schema.BODY_INDEX[f"{side}_Ankle"], schema.BODY_INDEX[f"{side}_Toe"]
        out.append(float(pos[0, a, 2] - min(low[a], low[t])))
    return np.array(out)


class HumanoidIK:
    """Frame-by-frame IK over a whole clip. Not thread-safe (one mink configuration per instance)."""

    def __init__(self, weights: Weights = Weights(), iterations: int = 3, first_iterations: int = 60):
        import mink

        self.mink = mink
        self.scene, self.model, self.dof_index = _model()
        self.w = weights
        self.iterations = iterations
        self.first_iterations = first_iterations
        layout = self.scene.layout
        self.qadr = np.asarray(layout.dof_qpos_adr)
        self.vadr = np.asarray(layout.dof_qvel_adr)
        self.q_stand = self._qpos(np.zeros(3), 0.0, keyframes.standing())
        self.feet = [mink.FrameTask(f"{s}_Ankle", "body", position_cost=weights.foot_pos,
                                    orientation_cost=weights.foot_rot) for s in "LR"]
        self.hands = [mink.FrameTask(f"{s}_Wrist", "body", position_cost=0.0, orientation_cost=0.0) for s in "LR"]
        self.elbows = [mink.FrameTask(f"{s}_Elbow", "body", position_cost=0.0, orientation_cost=0.0) for s in "LR"]
        self.pelvis = mink.FrameTask("Pelvis", "body", position_cost=0.0, orientation_cost=weights.pelvis_rot)
        self.com = mink.ComTask(cost=[weights.com, weights.com, 0.0])
        # while an object is held up, the pelvis stays above the planned COM (otherwise it can swing forward
        # under the object during steps while the trunk leans back)
        self.pelvis_xy = mink.FrameTask("Pelvis", "body", position_cost=0.0, orientation_cost=0.0)
        self._cost_parts()
        self.posture = mink.PostureTask(self.model, cost=self._posture_cost((1.0, 1.0)))
        self.posture.set_target(self.q_stand)
        # temporal smoothness: every joint is also pulled toward its value in the previous frame
        self.previous = mink.PostureTask(self.model, cost=weights.smooth)
        self.previous.set_target(self.q_stand)
        # ... and the pelvis (the free joint is outside the posture tasks) toward its previous pose
        self.pelvis_previous = mink.FrameTask("Pelvis", "body", position_cost=weights.smooth_root,
                                              orientation_cost=weights.smooth_root)
        self.tasks = [*self.feet, *self.hands, *self.elbows, self.pelvis, self.pelvis_xy, self.com, self.posture,
                      self.previous, self.pelvis_previous]
        self.limits = [mink.ConfigurationLimit(self.model)]
        self.configuration = mink.Configuration(self.model, self.q_stand)

        self.stand_height = standing_pelvis_height(self.model)

    def _cost_parts(self) -> None:
        self._cost_fixed = np.zeros(self.model.nv)
        self._arm_mask = np.zeros((2, self.model.nv))
        for k, d in enumerate(self.dof_index):
            name = schema.BODY_NAMES[d // 3 + 1]
            part = name.split("_")[-1]
            if part in ("Hip", "Knee", "Ankle", "Toe"):
                self._cost_fixed[self.vadr[k]] = self.w.posture_legs
            elif part in ("Torso", "Spine", "Chest"):
                self._cost_fixed[self.vadr[k]] = self.w.posture_spine
            elif part in ("Neck", "Head"):
                self._cost_fixed[self.vadr[k]] = self.w.posture_neck
            else:
                self._arm_mask[0 if name.startswith("L_") else 1, self.vadr[k]] = 1.0

    def _posture_cost(self, free: tuple[float, float]) -> np.ndarray:
        """Per-dof regularisation. A free arm (no hand task) is held firmly in its posture, or the COM task
        would swing it sideways to shift the centre of mass instead of moving the hips."""
        arms = self.w.posture_arms + np.asarray(free)[:, None] * (self.w.posture_free_arms - self.w.posture_arms)
        return self._cost_fixed + (self._arm_mask * arms).sum(axis=0)

    def _qpos(self, root_pos, yaw: float, angles153: np.ndarray) -> np.ndarray:
        q = self.model.qpos0.copy()
        q[0:3] = root_pos
        q[3:7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        q[self.qadr] = angles153[self.dof_index]
        return q

    def _hand_target(self, tg: Targets, t: int, k: int):
        """The planned wrist pose, or while `hand_mix` < 1 a blend from the pose the hand had when its task
        switched on (a free hand's pose is only known from the solution), so the hand moves along a smooth path
        instead of being pulled at a distant target."""
        SE3, SO3 = self.mink.SE3, self.mink.SO3
        planned = SE3.from_rotation_and_translation(SO3.from_matrix(tg.hand_rot[t, k]), tg.hand_pos[t, k])
        mix = float(tg.hand_mix[t, k])
        if mix >= 1.0 or self._free[k] is None:
            return planned
        start = self._pelvis() @ self._free[k]  # the free hand's pose moves with the body
        rot = start.rotation() @ SO3.exp(mix * (start.rotation().inverse() @ planned.rotation()).log())
        pos = (1.0 - mix) * start.translation() + mix * planned.translation()
        return SE3.from_rotation_and_translation(rot, pos)

    def _set_targets(self, tg: Targets, t: int) -> None:
        SE3, SO3 = self.mink.SE3, self.mink.SO3
        for k in range(2):
            rot = SO3.from_matrix(rot_z(tg.foot_yaw[t, k]))
            self.feet[k].set_target(SE3.from_rotation_and_translation(rot, tg.foot_pos[t, k]))
            w = float(tg.hand_w[t, k])
            self.hands[k].set_position_cost(self.w.hand_pos * w)
            self.hands[k].set_orientation_cost(np.asarray(self.w.hand_rot) * w)
            self.hands[k].set_target(self._hand_target(tg, t, k))
            self.elbows[k].set_position_cost(self.w.elbow * float(tg.elbow_w[t, k]))
            self.elbows[k].set_target(SE3.from_translation(tg.elbow_pos[t, k]))
        self.posture.set_target(self._qpos(np.zeros(3), 0.0, tg.posture[t]))
        self.posture.set_cost(self._posture_cost(1.0 - tg.hand_w[t]))
        pelvis_rot = rot_z(tg.pelvis_yaw[t]) @ rot_y(tg.pelvis_pitch[t])
        self.pelvis.set_target(SE3.from_rotation_and_translation(SO3.from_matrix(pelvis_rot), np.zeros(3)))
        w = self.w.pelvis_xy * float(tg.pelvis_xy_w[t])
        self.pelvis_xy.set_position_cost([w, w, 0.0])
        ahead = PELVIS_AHEAD_OF_COM * np.array([np.cos(tg.pelvis_yaw[t]), np.sin(tg.pelvis_yaw[t])])
        self.pelvis_xy.set_target(SE3.from_translation(np.array([*(tg.com_xy[t] + ahead), 0.0])))
        self.com.set_target(np.array([tg.com_xy[t, 0], tg.com_xy[t, 1], 0.0]))

    def _iterate(self, n: int, settle: bool = False) -> None:
        """n QP steps. `settle` (first frame): the smoothness tasks follow the solution instead of holding it
        back, so the clip starts converged (and standing still) rather than drifting for its first frames."""
        cfg = self.configuration
        for _ in range(n):
            if settle:
                self.previous.set_target(cfg.q)
                self.pelvis_previous.set_target(self._pelvis())
            v = self.mink.solve_ik(cfg, self.tasks, 1.0, "daqp", damping=self.w.damping, limits=self.limits)
            cfg.integrate_inplace(v, 1.0)

    def solve(self, tg: Targets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> root_pos [T, 3], root_rot [T, 4] (wxyz), joint angles [T, 153] (body joints; fingers zero)."""
        T = tg.num_frames
        start = np.array([tg.com_xy[0, 0], tg.com_xy[0, 1], self.stand_height])
        self.configuration.update(self._qpos(start, float(tg.pelvis_yaw[0]), tg.posture[0]))
        qs = np.empty((T, self.model.nq))
        self._free = [None, None]
        for t in range(T):
            self.previous.set_target(self.configuration.q)
            self.pelvis_previous.set_target(self._pelvis())
            self._set_targets(tg, t)
            self._iterate(self.first_iterations if t == 0 else self.iterations, settle=t == 0)
            qs[t] = self.configuration.q
            for k, side in enumerate("LR"):
                if tg.hand_w[t, k] <= 0.0:  # remember where the free hand is, relative to the pelvis
                    wrist = self.configuration.get_transform_frame_to_world(f"{side}_Wrist", "body")
                    self._free[k] = self._pelvis().inverse() @ wrist
        angles = np.zeros((T, schema.NUM_DOFS))
        angles[:, self.dof_index] = qs[:, self.qadr]
        return qs[:, 0:3].copy(), qs[:, 3:7].copy(), angles

    def _pelvis(self):
        return self.configuration.get_transform_frame_to_world("Pelvis", "body")

    @property
    def mass(self) -> float:
        return float(self.model.body_subtreemass[1])
