"""Steering skill `touch`: walk up to the object (0.3-1.5 m, or none), reach out and put one hand (left or right,
each ~35 %) or both hands flat on it, on its top or on the side facing the humanoid, keep them there 0.5-1.5 s,
let go and stand up. The object stays where it is. One-hand touches stand a little to the side, so that the hand
reaches straight ahead of its own shoulder; only that hand is labelled in contact. 5-15 s.
"""

from __future__ import annotations

import numpy as np

from interprior.data.synth import gait, grasp, paths, reach
from interprior.data.synth.hands import palm_contact_point
from interprior.data.synth.objects import SynthObject
from interprior.data.synth.script import STEER_MIN_SECONDS, ClipPlan, Script, unit, yaw_rot
from interprior.data.synth.timeline import Channel

HANDS = {"left": (True, False), "right": (False, True), "both": (True, True)}


def _palm_points(anchors) -> np.ndarray:
    """[m, 3] object-frame palm contact points of the hands that touch."""
    return np.stack([a.pos + a.rot @ palm_contact_point(side) for a, side in zip(anchors, "LR") if a is not None])


def _touch_stance(rng, obj: SynthObject, obj_xy, obj_yaw: float, u_obj, anchors, hands, surface: str):
    """(stance, crouch, posture push) that bring the touching palm(s) onto their anchors: a one-hand touch puts
    the palm 0.08-0.16 m to its side of the centre line, in front of its shoulder."""
    pts = _palm_points(anchors)
    left = grasp.left_of(u_obj)
    reach_u, lat_p = float(np.mean(pts[:, :2] @ u_obj)), pts[:, :2] @ left
    if hands[0] and hands[1]:
        centre = rng.uniform(-0.02, 0.02)
    else:
        centre = float(lat_p[0]) - (1.0 if hands[0] else -1.0) * rng.uniform(0.08, 0.16)
    lateral = float(np.mean(np.abs(lat_p - centre)))
    push = 1.0 if surface == "side" and hands[0] and hands[1] else 0.0
    mode = "push" if push else "grip"
    palm_to_face = max(0.0, grasp.depth_of(obj, u_obj) - reach_u)
    hand_height = obj.rest_height + float(pts[:, 2].mean())
    crouch, palm_x = reach.place(hand_height, lateral, palm_to_face, mode, forward_reach=rng.uniform(0.10, 0.14))
    r = yaw_rot(obj_yaw)[:2, :2]
    u_world, left_world = r @ u_obj, r @ left
    xy = np.asarray(obj_xy) + (palm_x + reach_u) * u_world + centre * left_world
    stance = gait.Stance(float(xy[0]), float(xy[1]), float(np.arctan2(-u_world[1], -u_world[0])),
                         width=float(rng.uniform(0.19, 0.24)))
    return stance, crouch, push


def _approach(rng, s: Script, goal: gait.Stance) -> None:
    """Walk up to `goal`: a few short steps from close by, or along a gentle curve from farther."""
    if np.hypot(goal.x - s.stance.x, goal.y - s.stance.y) < 0.55:
        s.walk_to(goal)
        return
    spacing = rng.uniform(0.22, 0.28)
    s.walk_path(paths.route(s.stance, goal, spacing, bend=0.4), shift=0.25, swing=0.45, settle=0.35)


def _start(rng, goal: gait.Stance, walk: bool) -> gait.Stance:
    if not walk:
        return goal
    back = rng.uniform(0.3, 0.5) if rng.random() < 0.4 else rng.uniform(0.6, 1.5)
    xy = goal.to_world((-back, rng.uniform(-0.1, 0.1) * (1.0 + back)))
    toward = float(np.arctan2(goal.y - xy[1], goal.x - xy[0]))
    yaw = goal.yaw + rng.uniform(-0.3, 0.3) if back < 0.55 else toward + rng.uniform(-0.4, 0.4)
    return gait.Stance(float(xy[0]), float(xy[1]), yaw, 0.19)


def plan_touch(rng, obj: SynthObject) -> ClipPlan:
    which = ("left", "right", "both")[int(np.searchsorted([0.35, 0.7], rng.random()))]
    hands = HANDS[which]
    surface = "top" if rng.random() < 0.5 else "side"
    obj_xy, obj_yaw = rng.uniform(-0.5, 0.5, size=2), float(rng.uniform(-np.pi, np.pi))
    u_obj = grasp.snap_direction(obj, unit(rng.uniform(-np.pi, np.pi)))
    max_lat, max_inset = grasp.touch_limits(obj, u_obj, surface, hands[0] and hands[1])
    lateral = rng.uniform(0.6, 1.0) * max_lat if hands[0] and hands[1] else rng.uniform(-max_lat, max_lat)
    anchors = grasp.touch_anchors(obj, u_obj, surface, hands, lateral, inset=rng.uniform(0.06, max(0.06, max_inset)))
    goal, crouch, push = _touch_stance(rng, obj, obj_xy, obj_yaw, u_obj, anchors, hands, surface)
    walk = rng.random() < 0.67
    s = Script(rng, obj, _start(rng, goal, walk))
    s.obj_track = Channel([obj_xy[0], obj_xy[1], obj.rest_height, obj_yaw])
    s.anchors = anchors
    s.wait(s.u(0.3, 0.6))
    if walk:
        _approach(rng, s, goal)
    s.reach(s.u(1.0, 1.3), crouch, push=push, hands=hands)
    s.touch(s.u(0.3, 0.45), hands=hands)
    s.wait(s.u(0.5, 1.5))
    s.release(s.u(0.3, 0.4))
    s.stand_up(s.u(0.9, 1.2))
    return s.finish("touch", s.u(0.2, 0.6), min_seconds=STEER_MIN_SECONDS)
