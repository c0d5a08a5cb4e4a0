"""Whole-body IK on the G1 with mink (differential IK as a QP on MuJoCo's own Jacobians, solved by daqp), one
frame after another, each frame warm-started from the previous frame's solution.

mink is already a dependency of the package (the synthetic generator's IK uses it); its `ConfigurationLimit`
keeps every hinge inside the MJCF's range as a hard constraint of the QP, and the result is clamped to the
ranges once more. Tasks, by weight (`Weights`): feet (position and heading, flat), hands on or near the object
(capsule centre; the palm turned toward the surface by at most `MAX_TURN` per frame), the centre of mass over the
planted feet, head and chest, the pelvis, torso orientation, knees and elbows, free hands, every hinge toward its
angle in the previous frame (smoothness) and a weak pull toward the G1's standing pose. The pelvis is held
loosely: the G1's arms are shorter and its waist stiffer than the scale says, so it leans and bends at the hips
to reach what the human reached.
"""

from __future__ import annotations

from dataclasses import dataclass

import mink
import numpy as np

from interprior.assets.g1 import G1_DEFAULT_POSE
from interprior.data.retarget.robot import HAND_GEOMS, SIDES, Robot
from interprior.data.retarget.targets import Targets

RANGE_MARGIN = 1e-6  # rad: solved angles are clamped this far inside each hinge's range
MAX_TURN = 0.1  # rad: the palm's target turns it toward the surface by at most this much per frame


@dataclass(frozen=True)
class Weights:
    foot_pos: float = 100.0
    foot_rot: float = 30.0
    hand_pos: float = 100.0  # on or near the object
    hand_free: float = 2.0  # following the scaled human hand
    palm: float = 2.0  # palm facing the surface while on or near the object
    com: float = 20.0  # horizontal only: over the planted feet
    pelvis_pos: float = 2.0  # low: the G1 leans to reach what the human reached
    pelvis_rot: tuple = (5.0, 1.0, 5.0)  # about the pelvis's x, y, z: pitch is free-er (the G1's waist bends
    # 30 degrees at most, the human's spine far more, so the G1 bends at the hips instead)
    torso_rot: float = 3.0
    knee: float = 2.0
    trunk: float = 5.0  # head and chest positions (keep them where the human's are, e.g. out of the object)
    elbow: float = 2.0
    posture: float = 0.05
    smooth: float = 1.0  # every hinge pulled toward its angle in the previous frame
    damping: float = 1e-2


def rot_z(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def turn_toward(a: np.ndarray, b: np.ndarray, max_angle: float) -> np.ndarray:
    """The rotation (matrix) that turns unit vector `a` toward unit vector `b` by at most `max_angle` (rad)."""
    axis = np.cross(a, b)
    norm = np.linalg.norm(axis)
    angle = float(np.arctan2(norm, np.dot(a, b)))
    if norm < 1e-9:  # parallel (nothing to do) or opposite (any axis normal to a)
        if angle < 1.0:
            return np.eye(3)
        axis = np.cross(a, np.eye(3)[np.argmin(np.abs(a))])
        norm = np.linalg.norm(axis)
    k = axis / norm
    k = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    phi = min(angle, max_angle)
    return np.eye(3) + np.sin(phi) * k + (1.0 - np.cos(phi)) * (k @ k)


def _pose(rot: np.ndarray, pos=None) -> mink.SE3:
    pos = np.zeros(3) if pos is None else np.asarray(pos, dtype=np.float64)
    return mink.SE3.from_rotation_and_translation(mink.SO3.from_matrix(rot), pos)


class G1IK:
    """Frame-by-frame IK over a clip's targets. Not thread-safe (one mink configuration per instance)."""

    def __init__(self, robot: Robot, weights: Weights = Weights(), iterations: int = 4, first_iterations: int = 80):
        self.robot, self.w = robot, weights
        self.iterations, self.first_iterations = iterations, first_iterations
        model = robot.model
        task = mink.FrameTask
        self.pelvis = task("pelvis", "body", position_cost=weights.pelvis_pos,
                           orientation_cost=np.array(weights.pelvis_rot))
        self.torso = task(robot.torso, "body", position_cost=0.0, orientation_cost=weights.torso_rot)
        self.feet = [task(f"{s}_ankle_roll_link", "body", position_cost=weights.foot_pos,
                          orientation_cost=weights.foot_rot) for s in SIDES]
        self.hands = [task(g, "geom", position_cost=weights.hand_free, orientation_cost=0.0) for g in HAND_GEOMS]
        self.palms = [task(f"{s}_wrist_yaw_link", "body", position_cost=0.0, orientation_cost=0.0) for s in SIDES]
        for palm in self.palms:  # set while on the object; every task needs a target
            palm.set_target(_pose(np.eye(3)))
        self.knees = [task(f"{s}_knee_link", "body", position_cost=weights.knee, orientation_cost=0.0) for s in SIDES]
        self.elbows = [task(f"{s}_elbow_link", "body", position_cost=weights.elbow, orientation_cost=0.0)
                       for s in SIDES]
        self.q_stand = model.qpos0.copy()
        for name, angle in G1_DEFAULT_POSE.items():
            self.q_stand[model.joint(name).qposadr[0]] = angle
        self.head = task("head_collision", "geom", position_cost=weights.trunk, orientation_cost=0.0)
        self.chest = task("torso_collision", "geom", position_cost=weights.trunk, orientation_cost=0.0)
        self.com = mink.ComTask(cost=np.array([weights.com, weights.com, 0.0]))
        self.posture = mink.PostureTask(model, cost=weights.posture)
        self.posture.set_target(self.q_stand)
        self.previous = mink.PostureTask(model, cost=weights.smooth)
        self.previous.set_target(self.q_stand)
        self.tasks = [self.previous, self.pelvis, self.torso, *self.feet, *self.hands, *self.palms, *self.knees,
                      *self.elbows, self.head, self.chest, self.com, self.posture]
        self.limits = [mink.ConfigurationLimit(model)]
        self.configuration = mink.Configuration(model, self.q_stand)
        self.lower = robot.ranges[:, 0] + RANGE_MARGIN
        self.upper = robot.ranges[:, 1] - RANGE_MARGIN

    def solve(self, tg: Targets) -> np.ndarray:
        """-> qpos [T, 7 + 29]: root position, root quaternion (wxyz), hinge angles (full joint vector order)."""
        first = self.q_stand.copy()
        first[:3] = tg.pelvis_pos[0]
        heading = tg.pelvis_rot[0][:, 0]
        yaw = float(np.arctan2(heading[1], heading[0]))
        first[3:7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        self.configuration.update(first)
        out = np.empty((tg.num_frames, self.robot.model.nq))
        for t in range(tg.num_frames):
            self.previous.set_target(self.configuration.q)
            self.previous.set_cost(0.0 if t == 0 else self.w.smooth)
            self._set_targets(tg, t)
            self._iterate(self.first_iterations if t == 0 else self.iterations)
            out[t] = self.configuration.q
        out[:, 7:] = np.clip(out[:, 7:], self.lower, self.upper)
        out[:, 3:7] /= np.linalg.norm(out[:, 3:7], axis=-1, keepdims=True)
        return out

    def _iterate(self, n: int) -> None:
        cfg = self.configuration
        for _ in range(n):
            v = mink.solve_ik(cfg, self.tasks, 1.0, "daqp", damping=self.w.damping, limits=self.limits)
            cfg.integrate_inplace(v, 1.0)

    def _set_targets(self, tg: Targets, t: int) -> None:
        w = self.w
        self.pelvis.set_target(_pose(tg.pelvis_rot[t], tg.pelvis_pos[t]))
        self.torso.set_target(_pose(tg.torso_rot[t]))
        self.com.set_target(np.array([tg.com_xy[t, 0], tg.com_xy[t, 1], 0.0]))
        self.head.set_target(_pose(np.eye(3), tg.head_pos[t]))
        self.chest.set_target(_pose(np.eye(3), tg.chest_pos[t]))
        for k in range(2):
            self.feet[k].set_target(_pose(rot_z(tg.foot_yaw[t, k]), tg.foot_pos[t, k]))
            self.knees[k].set_target(_pose(np.eye(3), tg.knee_pos[t, k]))
            self.elbows[k].set_target(_pose(np.eye(3), tg.elbow_pos[t, k]))
            facing = float(tg.palm_w[t, k])  # on the object or near it: tracked firmly, the palm toward it
            self.hands[k].set_position_cost(facing * w.hand_pos + (1.0 - facing) * w.hand_free)
            self.hands[k].set_target(_pose(np.eye(3), tg.hand_pos[t, k]))
            self.palms[k].set_orientation_cost(facing * w.palm)
            if facing > 0.0:  # turn the palm toward the surface from where it is now; its twist is left as it is
                now = self.configuration.get_transform_frame_to_world(f"{SIDES[k]}_wrist_yaw_link", "body")
                current = now.rotation().as_matrix()
                turn = turn_toward(current @ self.robot.palm_axis[k], -tg.hand_normal[t, k], MAX_TURN)
                self.palms[k].set_target(_pose(turn @ current, now.translation()))
