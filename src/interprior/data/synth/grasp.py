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
PALM_FROM_NEAR_EDGE = 0.11  # m from a box's near edge to the palm centres when holding it by its sides
CYLINDER_GRIP_ANGLE = 0.45  # rad from the cylinder's sides toward the humanoid
# Holding palms sit this far inside the side surfaces: position-controlled hands squeeze only when their target is
# inside the object (as captured grasps are: skin and fingers compress), so a PD replay can lift what it holds.
GRIP_SQUEEZE = 0.008  # m
# Pushing palms sit this far inside the pushed face for the same reason: a tracking policy that stands a few cm short
# of its reference (the usual bias) still presses on the face instead of hovering in front of it.
PUSH_PRESS = 0.015  # m


@dataclass(frozen=True)
class HandAnchor:
    """A palm placement in the object frame: wrist pose (rotation [3, 3], position [3]), outward normal, and where
    the elbow should be (off the surface, so the forearm does not lie in it)."""

    rot: np.ndarray
    pos: np.ndarray
    normal: np.ndarray
    elbow: np.ndarray


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
    """Left and right palm placements for holding the object from the sides: on boxes and the stool's seat
    `PALM_FROM_NEAR_EDGE` behind the near edge (the hands close to the body, the knees clear of the object), on
    the cylinder `CYLINDER_GRIP_ANGLE` round from the sides toward the humanoid."""
    u = np.asarray(u, dtype=np.float64)
    left = left_of(u)
    forward3 = np.array([-u[0], -u[1], 0.0])
    fingers = np.cos(finger_pitch) * forward3 + np.sin(finger_pitch) * np.array([0.0, 0.0, -1.0])
    centre = np.array(obj.grip_part.center)
    out = []
    for side, sign in (("L", 1.0), ("R", -1.0)):
        if obj.grip_part.kind == "cylinder":
            r, a = obj.grip_part.half[0], CYLINDER_GRIP_ANGLE
            radial = np.cos(a) * sign * left + np.sin(a) * u
            n = np.array([radial[0], radial[1], 0.0])
            point = centre + (r - GRIP_SQUEEZE) * n
        else:
            n = np.array([sign * left[0], sign * left[1], 0.0])
            toward = max(0.0, depth_of(obj, u) - PALM_FROM_NEAR_EDGE)
            point = centre + n * (obj.side_distance(n[:2]) - GRIP_SQUEEZE) + np.array([u[0], u[1], 0.0]) * toward
        point[2] = obj.grip_z
        rot, pos = wrist_pose(side, point, n, fingers)
        # forearm back along the fingers and up, angled ~20° off the surface
        elbow = point + 0.09 * n - 0.20 * fingers + np.array([0.0, 0.0, 0.06])
        out.append(HandAnchor(rot, pos, n, elbow))
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
            point = centre + np.array([radial[0], radial[1], 0.0]) * (r - PUSH_PRESS) / r
        else:
            n = np.array([u[0], u[1], 0.0])
            lat = min(HAND_SPACING_PUSH, obj.side_distance(left) - 0.05)
            point = centre + n * (obj.side_distance(u) - PUSH_PRESS) + sign * np.array([left[0], left[1], 0.0]) * lat
        point[2] = obj.push_z
        rot, pos = wrist_pose(side, point, n, np.array([0.0, 0.0, -1.0]))
        # forearm back toward the humanoid, elbows a little out and up
        elbow = point + 0.2 * n + 0.05 * sign * np.array([left[0], left[1], 0.0]) + np.array([0.0, 0.0, 0.1])
        out.append(HandAnchor(rot, pos, n, elbow))
    return out


def palm_points(anchors: list[HandAnchor]) -> np.ndarray:
    """[2, 3] object-frame palm contact points of the anchors."""
    return np.stack([a.pos + a.rot @ palm_contact_point(s) for a, s in zip(anchors, "LR")])


def anchor_reach(anchors: list[HandAnchor], u: np.ndarray) -> float:
    """How far (along u, toward the humanoid) the palm contact points lie from the object's axis (mean)."""
    return float(np.mean(palm_points(anchors)[:, :2] @ u))


def anchor_lateral(anchors: list[HandAnchor], u: np.ndarray) -> float:
    """Half the distance between the palm contact points across the humanoid (mean |lateral|)."""
    return float(np.mean(np.abs(palm_points(anchors)[:, :2] @ left_of(u))))


def touch_anchors(obj: SynthObject, u: np.ndarray, surface: str, hands, lateral: float,
                  inset: float) -> list[HandAnchor | None]:
    """Left and right palm placements for touching the object without holding it (None for a hand that stays
    free): on its top (`surface` "top": palm down, fingers pointing away from the humanoid, the palm centre
    `inset` in from the near edge) or on its near side (`"side"`: as `push_anchors`, fingers down). One hand sits
    `lateral` left of the centre line; two hands sit `lateral` either side of it."""
    u = np.asarray(u, dtype=np.float64)
    left3 = np.array([*left_of(u), 0.0])
    u3 = np.array([u[0], u[1], 0.0])
    part = obj.grip_part
    centre = np.array(part.center)
    both = bool(hands[0] and hands[1])
    out: list[HandAnchor | None] = []
    for k, (side, sign) in enumerate((("L", 1.0), ("R", -1.0))):
        if not hands[k]:
            out.append(None)
            continue
        lat = sign * lateral if both else lateral
        if surface == "top":
            point = centre + u3 * (depth_of(obj, u) - inset) + left3 * lat
            point[2] = part.center[2] + part.half[2]
            n, fingers = np.array([0.0, 0.0, 1.0]), -u3
            elbow = point + 0.18 * u3 + 0.05 * sign * left3 + np.array([0.0, 0.0, 0.16])
        else:
            if part.kind == "cylinder":
                r = part.half[0]
                radial = u * np.sqrt(r * r - lat * lat) + left_of(u) * lat
                n = np.array([radial[0] / r, radial[1] / r, 0.0])
                point = centre + np.array([radial[0], radial[1], 0.0])
            else:
                n = u3
                point = centre + u3 * obj.side_distance(u) + left3 * lat
            point[2] = obj.push_z
            fingers = np.array([0.0, 0.0, -1.0])
            elbow = point + 0.2 * n + 0.05 * sign * left3 + np.array([0.0, 0.0, 0.1])
        rot, pos = wrist_pose(side, point, n, fingers)
        out.append(HandAnchor(rot, pos, n, elbow))
    return out


def touch_limits(obj: SynthObject, u: np.ndarray, surface: str, both: bool) -> tuple[float, float]:
    """Largest |lateral| palm offset that keeps the whole palm on the surface, and the largest inset on top."""
    part = obj.grip_part
    if part.kind == "cylinder":
        r = part.half[0]
        return (min(0.08, 0.55 * r) if both else 0.04), min(0.09, r - 0.05)
    half_lat = obj.side_distance(left_of(np.asarray(u, dtype=np.float64)))
    return (min(0.12, half_lat - 0.06) if both else min(0.06, half_lat - 0.08)), min(0.10, depth_of(obj, u) - 0.1)
