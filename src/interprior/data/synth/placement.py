"""Where things start: the object's pose, where the hands go on it, the stance facing it that brings the palms
there (`reach.place`), where the humanoid starts, and the pose of an object held up in front of the body."""

from __future__ import annotations

import numpy as np

from interprior.data.synth import gait, grasp, reach
from interprior.data.synth.ik import PELVIS_AHEAD_OF_COM
from interprior.data.synth.objects import SynthObject
from interprior.data.synth.script import HUMAN_MASS, Script, unit, yaw_rot
from interprior.data.synth.timeline import Channel


def grasp_stance(rng, obj: SynthObject, obj_xy, obj_yaw: float, u_obj: np.ndarray, mode: str,
                 anchors) -> tuple[gait.Stance, float]:
    """Stance facing the object across its surface with normal u_obj (object frame), and the crouch depth that
    brings the palms to their anchors (`reach.place`)."""
    reach_u = grasp.anchor_reach(anchors, u_obj)
    hand_height = obj.rest_height + float(grasp.palm_points(anchors)[:, 2].mean())
    palm_to_face = max(0.0, grasp.depth_of(obj, u_obj) - reach_u)
    crouch, palm_x = reach.place(hand_height, grasp.anchor_lateral(anchors, u_obj), palm_to_face, mode,
                                 forward_reach=rng.uniform(0.10, 0.14))
    dist = palm_x + reach_u
    u_world = yaw_rot(obj_yaw)[:2, :2] @ u_obj
    lateral = rng.uniform(-0.03, 0.03)
    xy = np.asarray(obj_xy) + dist * u_world + lateral * grasp.left_of(u_world)
    stance = gait.Stance(float(xy[0]), float(xy[1]), float(np.arctan2(-u_world[1], -u_world[0])),
                         width=float(rng.uniform(0.19, 0.24)))
    return stance, crouch


def setup(rng, obj: SynthObject, mode: str, approach: bool, max_back: float = 0.45):
    """Object pose, hand anchors, grasp stance and starting stance."""
    obj_yaw = float(rng.uniform(-np.pi, np.pi))
    u_obj = grasp.snap_direction(obj, unit(rng.uniform(-np.pi, np.pi)))
    if mode == "push":
        anchors = grasp.push_anchors(obj, u_obj)
    else:
        anchors = grasp.grip_anchors(obj, u_obj, finger_pitch=rng.uniform(0.35, 0.7) if obj.kind != "stool" else 0.1)
    obj_xy = rng.uniform(-0.5, 0.5, size=2)
    g, crouch = grasp_stance(rng, obj, obj_xy, obj_yaw, u_obj, mode, anchors)
    start = g
    if approach:
        back, side, turn = rng.uniform(0.2, max_back), rng.uniform(-0.1, 0.1), rng.uniform(-0.3, 0.3)
        xy = g.to_world((-back, side))
        start = gait.Stance(float(xy[0]), float(xy[1]), g.yaw + turn, width=0.19)
    return obj_xy, obj_yaw, u_obj, anchors, g, start, crouch


def start_script(rng, obj, mode, approach, **kw):
    obj_xy, obj_yaw, u_obj, anchors, goal, start, crouch = setup(rng, obj, mode, approach, **kw)
    s = Script(rng, obj, start)
    s.obj_track = Channel([obj_xy[0], obj_xy[1], obj.rest_height, obj_yaw])
    s.anchors = anchors
    return s, goal, u_obj, crouch


BELLY_CLEARANCE = 0.15  # m from the pelvis axis to a held object's near surface (pelvis sphere: 0.106)


def hold_pose(s: Script, stance: gait.Stance, u_obj: np.ndarray) -> np.ndarray:
    """Object pose (x, y, z, yaw) held in front of the body: near surface clear of the belly, palms at a height
    the standing shoulders reach with `reach.ARM_REACH`. The humanoid's own COM moves back to balance the load
    (`Script.finish`), taking the pelvis with it, so the object goes that much less far forward."""
    obj = s.obj
    depth = grasp.depth_of(obj, u_obj)
    reach_u = grasp.anchor_reach(s.anchors, u_obj)
    from_pelvis = BELLY_CLEARANCE + depth + s.u(0.0, 0.02)
    table = reach.reach_model()["grip"]
    shoulder_x, shoulder_z = table[0, 0], table[0, 1]
    pelvis_x = gait.FOOT_CENTRE + PELVIS_AHEAD_OF_COM  # standing, no load
    dx = pelvis_x + from_pelvis - reach_u - shoulder_x
    dy = max(0.0, grasp.anchor_lateral(s.anchors, u_obj) - reach.SHOULDER_Y)
    palm_z = shoulder_z - np.sqrt(max(reach.ARM_REACH ** 2 - dx ** 2 - dy ** 2, 0.05 ** 2))
    palm_z = float(np.clip(palm_z + s.u(-0.03, 0.02), 0.8, 1.15))
    ratio = obj.mass / HUMAN_MASS
    fwd = gait.FOOT_CENTRE + (PELVIS_AHEAD_OF_COM + from_pelvis) / (1.0 + ratio)
    xy = stance.to_world((fwd, 0.0))
    # the object keeps its yaw relative to the humanoid: the surface normal u_obj keeps pointing back at it
    yaw = stance.yaw + np.pi - np.arctan2(u_obj[1], u_obj[0])
    palm_in_object = float(grasp.palm_points(s.anchors)[:, 2].mean())
    return np.array([xy[0], xy[1], palm_z - palm_in_object, yaw])


def lifted_pose(s: Script, stance: gait.Stance, u_obj: np.ndarray, palm_z: float, arm: float) -> np.ndarray:
    """Object pose (x, y, z, yaw) held up in front of the body with the palms at `palm_z` (waist ~0.95 m to chest
    ~1.25 m) and the shoulders `arm` from the palms (elbows bent), but the near surface at least BELLY_CLEARANCE
    in front of the pelvis axis; the palms go lower where that would stretch the arms beyond `reach.ARM_REACH`.
    The humanoid's COM moves back to balance the load, as in `hold_pose`."""
    obj = s.obj
    reach_u = grasp.anchor_reach(s.anchors, u_obj)
    shoulder_x, shoulder_z = reach.reach_model()["grip"][0, :2]
    pelvis_x = gait.FOOT_CENTRE + PELVIS_AHEAD_OF_COM
    dy = max(0.0, grasp.anchor_lateral(s.anchors, u_obj) - reach.SHOULDER_Y)
    dz = shoulder_z - palm_z
    dx_clear = pelvis_x + BELLY_CLEARANCE + grasp.depth_of(obj, u_obj) - reach_u - shoulder_x
    dx = max(np.sqrt(max(arm ** 2 - dz ** 2 - dy ** 2, 0.05 ** 2)), dx_clear)
    if dx ** 2 + dy ** 2 + dz ** 2 > reach.ARM_REACH ** 2:
        palm_z = shoulder_z - np.sqrt(max(reach.ARM_REACH ** 2 - dx ** 2 - dy ** 2, 0.05 ** 2))
    from_pelvis = shoulder_x + dx + reach_u - pelvis_x
    fwd = gait.FOOT_CENTRE + (PELVIS_AHEAD_OF_COM + from_pelvis) / (1.0 + obj.mass / HUMAN_MASS)
    xy = stance.to_world((fwd, 0.0))
    yaw = stance.yaw + np.pi - np.arctan2(u_obj[1], u_obj[0])
    return np.array([xy[0], xy[1], palm_z - float(grasp.palm_points(s.anchors)[:, 2].mean()), yaw])


def durations(s: Script, ranges: list[tuple[float, float]], budget: float) -> list[float]:
    """Draw a duration from each (low, high) range, then shrink them toward their lows (never below) until they
    fit into `budget` seconds: clips stay within MAX_SECONDS whatever the walks took."""
    drawn = np.array([s.u(lo, hi) for lo, hi in ranges])
    low = np.array([lo for lo, _ in ranges])
    if drawn.sum() > budget and drawn.sum() > low.sum():
        k = np.clip((budget - low.sum()) / (drawn.sum() - low.sum()), 0.0, 1.0)
        drawn = low + k * (drawn - low)
    return [float(d) for d in drawn]
