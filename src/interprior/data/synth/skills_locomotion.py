"""Steering skills without touching the object: walking up to it, and walking about.

* `walk`     - from a start 1-4 m away, heading anywhere, walk up to the object and stop facing it, 0.15-0.45 m
  short of it (no contact). `direct` routes turn on the spot toward the goal first and walk a nearly straight
  line; `curved` routes turn on the spot only as far as needed (the start heading at most ~65° off the way) and
  walk a curve. The route never comes near the object before the goal.
* `locomote` - 2-4 legs (as many as fit into 15 s): first a straight walk of 1.2-2.5 m, then walks along a curve
  or a straight line 0.8-2.5 m (sometimes after turning on the spot), or turns on the spot by 45-180°, stopping
  and standing 0.4-1.2 s between legs. The object stands somewhere off the route
  (at least 0.8 m from the feet), untouched.

Both are 5-15 s. The pace is a slow walk (0.6-0.75 s per step, 0.22-0.32 m between stances); a clip whose route
would not fit is drawn again with a shorter distance.
"""

from __future__ import annotations

import numpy as np

from interprior.data.synth import gait, grasp, paths
from interprior.data.synth.objects import SynthObject
from interprior.data.synth.script import STEER_MAX_SECONDS, STEER_MIN_SECONDS, ClipPlan, Script, unit, yaw_rot
from interprior.data.synth.timeline import Channel

TOE = 0.19  # m from the ankle to the toe tip
TIGHTEST = 0.6  # s per step at the fastest pace


def object_radius(obj: SynthObject) -> float:
    """Horizontal distance from the object's axis to its farthest corner."""
    b = obj.bounds
    return float(np.linalg.norm(np.maximum(np.abs(b[0, :2]), np.abs(b[1, :2]))))


def pace(rng, stances: list[gait.Stance], budget: float, step_range=(0.65, 0.75)) -> dict | None:
    """Step timing (shift, swing, settle) for walking through `stances` in at most `budget` seconds, the step
    time drawn in `step_range` s and shortened to TIGHTEST if need be; None when even that does not fit."""
    step = float(rng.uniform(*step_range))
    settle = 0.35
    n = len(stances) + 1
    if n * step + settle > budget:
        step = (budget - settle) / n
    if step < TIGHTEST - 1e-9:
        return None
    return {"shift": step / 3.0, "swing": 2.0 * step / 3.0, "settle": settle}


def _walk_goal(rng, obj: SynthObject, obj_xy, obj_yaw: float, approach: float) -> gait.Stance:
    """Standing facing the object across the face toward `approach` (world angle), toes 0.15-0.45 m short."""
    u_obj = grasp.snap_direction(obj, yaw_rot(-obj_yaw)[:2, :2] @ unit(approach))
    u_world = yaw_rot(obj_yaw)[:2, :2] @ u_obj
    dist = grasp.depth_of(obj, u_obj) + TOE + rng.uniform(0.15, 0.45)
    xy = np.asarray(obj_xy) + dist * u_world + rng.uniform(-0.1, 0.1) * grasp.left_of(u_world)
    return gait.Stance(float(xy[0]), float(xy[1]), float(np.arctan2(-u_world[1], -u_world[0])),
                       width=float(rng.uniform(0.19, 0.23)))


def _walk_route(rng, obj: SynthObject, obj_xy, goal: gait.Stance, approach: float, distance: float,
                direct: bool = False):
    """(start, stances) of a walk ending at `goal`, starting `distance` from it with any heading (`direct`: turn
    toward the goal first)."""
    come_from = approach + rng.uniform(-0.5, 0.5)
    xy = np.array([goal.x, goal.y]) + distance * unit(come_from)
    travel = come_from + np.pi
    start = gait.Stance(float(xy[0]), float(xy[1]), float(gait.wrap(travel + rng.uniform(-np.pi, np.pi))), 0.19)
    off = float(gait.wrap(travel - start.yaw))
    spacing = rng.uniform(0.22, 0.32)
    if rng.random() < 0.5 or direct:  # direct: turn toward the goal first
        stances = paths.route(start, goal, spacing, first_turn=travel if abs(off) > 0.1 else None,
                              bend=rng.uniform(0.2, 0.4))
    else:  # curved: turn on the spot only what a curve cannot take
        keep = rng.uniform(0.6, 1.15)
        first = start.yaw + off - np.sign(off) * keep if abs(off) > keep else None
        stances = paths.route(start, goal, spacing, first_turn=first, bend=rng.uniform(0.5, 0.9))
    return start, stances


def plan_walk(rng, obj: SynthObject) -> ClipPlan:
    obj_xy, obj_yaw = rng.uniform(-0.5, 0.5, size=2), float(rng.uniform(-np.pi, np.pi))
    distance = rng.uniform(1.0, 4.0)
    quiet0, quiet1 = rng.uniform(0.3, 0.7), rng.uniform(0.5, 1.2)
    for attempt in range(40):  # drawn again (shorter) until the route keeps clear of the object and fits
        last = attempt == 39
        approach = rng.uniform(-np.pi, np.pi)
        goal = _walk_goal(rng, obj, obj_xy, obj_yaw, approach)
        start, stances = _walk_route(rng, obj, obj_xy, goal, approach, 1.0 if last else distance, direct=last)
        clear = paths.clearance(stances[:-2], obj_xy) > object_radius(obj) + 0.05
        timing = pace(rng, stances, STEER_MAX_SECONDS - 0.05 - quiet0 - quiet1)
        if (clear or last) and timing is not None:
            break
        distance = max(1.0, distance * 0.9)
    s = Script(rng, obj, start)
    s.obj_track = Channel([obj_xy[0], obj_xy[1], obj.rest_height, obj_yaw])
    s.wait(quiet0)
    s.walk_path(stances, **timing)
    return s.finish("walk", quiet1, min_seconds=STEER_MIN_SECONDS)


def _leg(rng, at: gait.Stance, spacing: float, length: float) -> list[gait.Stance]:
    """One leg of `locomote`: a walk of `length` m (straight or curved, maybe after turning on the spot) or a turn
    on the spot."""
    if rng.random() < 0.3:
        turn = rng.choice([-1.0, 1.0]) * rng.uniform(np.pi / 4, np.pi)
        return paths.turn_stances(at, at.yaw + turn)
    first = at.yaw + rng.uniform(-np.pi, np.pi) if rng.random() < 0.4 else None
    heading = at.yaw if first is None else first
    bend = rng.uniform(-1.2, 1.2) if rng.random() < 0.6 else 0.0  # heading change along the leg
    xy = np.array([at.x, at.y]) + length * unit(heading + bend / 2)
    goal = gait.Stance(float(xy[0]), float(xy[1]), heading + bend, at.width)
    return paths.route(at, goal, spacing, first_turn=first, bend=0.5)


def plan_locomote(rng, obj: SynthObject) -> ClipPlan:
    start = gait.Stance(0.0, 0.0, float(rng.uniform(-np.pi, np.pi)), 0.19)
    s = Script(rng, obj, start)
    quiet1 = rng.uniform(0.4, 1.0)
    s.wait(rng.uniform(0.3, 0.7))
    spacing = rng.uniform(0.22, 0.32)
    route = [start]
    for k in range(int(rng.integers(2, 5))):
        stop = rng.uniform(0.4, 1.2) if k else 0.0
        length = rng.uniform(0.8, 2.5) if k else rng.uniform(1.2, 2.5)
        for attempt in range(4):  # shorter legs when a leg does not fit into the clip
            stances = _leg(rng, s.stance, spacing, length) if k else paths.route(s.stance, _ahead(s.stance, length),
                                                                                  spacing)
            timing = pace(rng, stances, STEER_MAX_SECONDS - 0.05 - quiet1 - s.t - stop)
            if timing is not None:
                break
            length *= 0.6
        if timing is None:
            break
        s.wait(stop)
        s.walk_path(stances, **timing)
        route += stances
    obj_xy = _off_route(rng, obj, route)
    s.obj_track = Channel([obj_xy[0], obj_xy[1], obj.rest_height, rng.uniform(-np.pi, np.pi)])
    return s.finish("locomote", quiet1, min_seconds=STEER_MIN_SECONDS)


def _ahead(at: gait.Stance, distance: float) -> gait.Stance:
    xy = at.to_world((distance, 0.0))
    return gait.Stance(float(xy[0]), float(xy[1]), at.yaw, at.width)


def _off_route(rng, obj: SynthObject, route: list[gait.Stance]) -> np.ndarray:
    """An object position at least 0.8 m (plus its radius) from every stance of the route, within ~3 m of it."""
    pts = np.array([[st.x, st.y] for st in route])
    need = object_radius(obj) + 0.8
    for _ in range(60):
        xy = pts[rng.integers(len(pts))] + rng.uniform(need, need + 2.0) * unit(rng.uniform(-np.pi, np.pi))
        if np.linalg.norm(pts - xy[None], axis=1).min() >= need:
            return xy
    far = pts.mean(axis=0) + (np.linalg.norm(pts - pts.mean(axis=0), axis=1).max() + need + 1.0) * unit(0.0)
    return far
