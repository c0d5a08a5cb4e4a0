"""Where the hands go on an object, and where the humanoid stands to reach them.

Everything here is in the object frame unless named `world`. `u` is the horizontal unit vector from the object's
vertical axis toward the humanoid (a face normal for boxes and the stool, any direction for the cylinder); the
humanoid faces -u, its left is (u_y, -u_x).

Grip (reach / pickup / carry): palms on the two side surfaces left and right of the humanoid, at `grip_z`, a bit
toward the humanoid on boxes, fingers pointing forward-down. Push: palms on the near surface, shoulder width
apart, at `push_z`, fingers down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from interprior.data.synth.hands import palm_contact_point
from interprior.data.synth.objects import SynthObject

HAND_SPACING_PUSH = 0.13  # m from the centre line to each palm centre when pushing


@dataclass(frozen=True)
class HandAnchor:
    """A palm placement in the object frame: wrist pose (rotation [3, 3], position [3]) and outward normal."""

    rot: np.ndarray
    pos: np.ndarray
    normal: np.ndarray


def snap_direction(obj: SynthObject, u: np.ndarray) -> np.ndarray:
    """Object-frame unit vector: `u` itself for the cylinder, the nearest face normal for boxes and the stool."""
    u = np.asarray(u, dtype=np.float64)[:2]
    u = u / np.linalg.norm(u)
    if obj.kind == "cylinder":
        return u
    k = int(np.argmax(np.abs(u)))
    out = np.zeros(2)
    out[k] = np.sign(u[k])
    return out


def left_of(u: np.ndarray) -> np.ndarray:
    return np.array([u[1], -u[0]])


def wrist_pose(side: str, point, normal, fingers) -> tuple[np.ndarray, np.ndarray]:
    """Wrist rotation and position that put the hand's contact point on `point`, palm against the surface with
    outward normal `normal`, fingers along `fingers` (projected into the surface plane). The wrist frame has the
    palm normal along -z and the fingers along +y (left) / -y (right)."""
    n = np.asarray(normal, dtype=np.float64)
    n = n / np.linalg.norm(n)
    f = np.asarray(fingers, dtype=np.float64)
    f = f - (f @ n) * n
    f = f / np.linalg.norm(f)
    y = f if side == "L" else -f
    x = np.cross(y, n)
    rot = np.stack([x, y, n], axis=1)
    pos = np.asarray(point, dtype=np.float64) - rot @ palm_contact_point(side)
    return rot, pos


def depth_of(obj: SynthObject, u: np.ndarray) -> float:
    """Distance from the axis to the surface facing the humanoid."""
    return obj.side_distance(u)


def grip_anchors(obj: SynthObject, u: np.ndarray, finger_pitch: float) -> list[HandAnchor]:
    """Left and right palm placements for holding the object from the sides."""
    u = np.asarray(u, dtype=np.float64)
    left = left_of(u)
    toward = 0.2 * depth_of(obj, u) if obj.kind == "box" else 0.0
    forward3 = np.array([-u[0], -u[1], 0.0])
    fingers = np.cos(finger_pitch) * forward3 + np.sin(finger_pitch) * np.array([0.0, 0.0, -1.0])
    out = []
    for side, sign in (("L", 1.0), ("R", -1.0)):
        n = np.array([sign * left[0], sign * left[1], 0.0])
        centre = np.array(obj.grip_part.center)
        point = centre + n * obj.side_distance(n[:2]) + np.array([u[0], u[1], 0.0]) * toward
        point[2] = obj.grip_z
        rot, pos = wrist_pose(side, point, n, fingers)
        out.append(HandAnchor(rot, pos, n))
    return out


def push_anchors(obj: SynthObject, u: np.ndarray) -> list[HandAnchor]:
    """Left and right palm placements on the near surface for pushing the object away (along -u)."""
    u = np.asarray(u, dtype=np.float64)
    left = left_of(u)
    part = obj.grip_part
    centre = np.array(part.center)
    out = []
    for side, sign in (("L", 1.0), ("R", -1.0)):
        if part.kind == "cylinder":
            r = part.half[0]
            lat = min(HAND_SPACING_PUSH, 0.7 * r)
            radial = u * np.sqrt(r * r - lat * lat) + sign * left * lat
            n = np.array([radial[0] / r, radial[1] / r, 0.0])
            point = centre + np.array([radial[0], radial[1], 0.0])
        else:
            n = np.array([u[0], u[1], 0.0])
            lat = min(HAND_SPACING_PUSH, obj.side_distance(left) - 0.05)
            point = centre + n * obj.side_distance(u) + sign * np.array([left[0], left[1], 0.0]) * lat
        point[2] = obj.push_z
        rot, pos = wrist_pose(side, point, n, np.array([0.0, 0.0, -1.0]))
        out.append(HandAnchor(rot, pos, n))
    return out


def anchor_reach(anchors: list[HandAnchor], u: np.ndarray) -> float:
    """How far (along u) the palm contact points lie from the object's axis (mean of both hands)."""
    pts = [a.pos + a.rot @ palm_contact_point(s) for a, s in zip(anchors, "LR")]
    return float(np.mean([p[:2] @ u for p in pts]))
