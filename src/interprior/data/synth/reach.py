"""Where the shoulders and knees are for each crouch depth, measured once with the IK, and the placement rules
that follow from it: how deep to crouch and how far from an object to stand so that the hands reach it
comfortably while the knees stay clear of it.

The measurement solves the keyframed posture (`keyframes.posture`) standing on a fixed stance with the centre of
mass over the feet, for crouch depths 0..1.3, with grip arms and with pushing arms; it takes under a second, once
per process. Distances are in the stance frame: x forward from the mid-point between the ankles.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from interprior import schema
from interprior.assets.humanoid import default_offsets
from interprior.assets.kinematics import KinematicTree
from interprior.data.synth import gait, ik, keyframes

ARM_REACH = 0.49  # m, shoulder to palm contact point: extended but not straight (straight is ~0.58)
SHOULDER_Y = 0.145  # m, shoulder joints either side of the centre line
KNEE_CLEARANCE = 0.05  # m between the front of the knees and the object's near surface
CROUCHES = np.round(np.arange(0.0, 1.31, 0.1), 2)


@lru_cache(maxsize=1)
def reach_model() -> dict[str, np.ndarray]:
    """Per crouch depth (`CROUCHES`): shoulder x and z, knee front x, for grip (push 0) and push (push 1) arms."""

    solver = ik.HumanoidIK(iterations=3, first_iterations=40)
    stance = gait.Stance(0.0, 0.0, 0.0, 0.21)
    heights = ik.ankle_heights()
    n = 12  # frames per 0.1 of crouch: the solution is followed down from standing
    out = {}
    for push in (0, 1):
        depth = np.concatenate([np.linspace(0.0, CROUCHES[-1], n * (len(CROUCHES) - 1) + 1)])
        T = len(depth)
        foot_pos, foot_yaw = np.zeros((T, 2, 3)), np.zeros((T, 2))
        for k in range(2):
            xy, yaw = stance.foot(k)
            foot_pos[:, k, :2], foot_pos[:, k, 2], foot_yaw[:, k] = xy, heights[k], yaw
        push_channel = np.full(T, float(push))
        targets = ik.Targets(
            foot_pos=foot_pos, foot_yaw=foot_yaw, pelvis_yaw=np.zeros(T),
            pelvis_pitch=keyframes.pelvis_pitch(depth) + 0.2 * push_channel,
            com_xy=np.tile(stance.support_centre(), (T, 1)),
            posture=keyframes.posture(depth, np.zeros(T), push_channel),
            hand_pos=np.zeros((T, 2, 3)), hand_rot=np.tile(np.eye(3), (T, 2, 1, 1)), hand_w=np.zeros((T, 2)),
            hand_mix=np.zeros((T, 2)), elbow_pos=np.zeros((T, 2, 3)), elbow_w=np.zeros((T, 2)),
            pelvis_xy_w=np.zeros(T),
        )
        root_pos, root_rot, angles = solver.solve(targets)
        rows = []
        for i in range(0, T, n):
            shoulder, knee = _points(root_pos[i], root_rot[i], angles[i])
            rows.append((shoulder[0], shoulder[2], knee))
        out["grip" if push == 0 else "push"] = np.array(rows)
    return out


def _points(root_pos, root_rot, angles) -> tuple[np.ndarray, float]:
    """Mean shoulder joint position and the front of the knees (x + capsule radius) by forward kinematics."""
    import torch


    tree = KinematicTree.from_offsets(default_offsets())
    pos, _ = tree.forward(torch.as_tensor(root_pos)[None], torch.as_tensor(root_rot)[None],
                          torch.as_tensor(angles)[None])
    pos = pos[0].numpy()
    idx = schema.BODY_INDEX
    shoulder = (pos[idx["L_Shoulder"]] + pos[idx["R_Shoulder"]]) / 2
    knee = max(pos[idx["L_Knee"], 0], pos[idx["R_Knee"], 0]) + 0.056
    return shoulder, float(knee)


def _at(table: np.ndarray, crouch: float) -> np.ndarray:
    return np.array([np.interp(crouch, CROUCHES, table[:, j]) for j in range(table.shape[1])])


def place(hand_height: float, lateral: float, palm_to_face: float, mode: str,
          forward_reach: float = 0.12) -> tuple[float, float]:
    """Crouch depth and the palm points' forward distance from the stance (ankle mid-point) for palms at
    `hand_height`, `lateral` from the centre line, `palm_to_face` behind the object's near surface (grip: the
    palms are on the sides; push: 0). The shallowest crouch whose shoulders reach the palms at ARM_REACH, with
    the palms `forward_reach` ahead of the shoulders, the knees `KNEE_CLEARANCE` behind the near surface."""
    table = reach_model()[mode]
    dy = max(0.0, abs(lateral) - SHOULDER_Y)
    for c in np.linspace(0.0, CROUCHES[-1], 131):
        sx, sz, knee = _at(table, c)
        palm_x = max(sx + forward_reach, knee + KNEE_CLEARANCE + palm_to_face)
        if (palm_x - sx) ** 2 + (sz - hand_height) ** 2 + dy ** 2 <= ARM_REACH ** 2:
            return float(c), float(palm_x)
    return float(c), float(palm_x)  # the deepest crouch: the IK bends a little further
