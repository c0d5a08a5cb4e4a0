"""Steering skills that move the object: lift and hold it, carry it somewhere and put it down, push it along.

* `lift_hold`  - (sometimes after 1-3 steps up to it) reach down, grasp with both hands, lift it over 1.4-1.9 s
  until the palms are at a drawn height between waist (0.95 m) and chest (1.25 m), hold it there 1-2.5 s (in a
  third of the clips then raise or lower it to a second height and hold that 1-2 s), put it back down (a little
  shifted and turned), let go, stand up.
* `place`      - pick it up, carry it to a place 1-3 m away in any direction (turning on the spot first when the
  place is well off to the side or behind, the last 0.3-0.8 rad of the turn along a curve), put it down there, let
  go, stand up. The object keeps its pose relative to the body along the way (`Script.walk_path`).
* `push_along` - hands on the near surface, push it 0.8-2.2 m along the floor while walking a straight line
  (a quarter of the clips) or a curve that turns the push direction by up to 0.8 rad (46°), let go, stand up.

All are 5-15 s; a place or push that would not fit is drawn again shorter.
"""

from __future__ import annotations

import numpy as np

from interprior.data.synth import gait, paths
from interprior.data.synth.objects import SynthObject
from interprior.data.synth.placement import durations, hold_pose, lifted_pose, start_script
from interprior.data.synth.script import STEER_MAX_SECONDS, STEER_MIN_SECONDS, ClipPlan, Script, unit, yaw_rot
from interprior.data.synth.skills_locomotion import pace

WAIST, CHEST = 0.95, 1.25  # m, palm heights of a held object


def _budget(s: Script) -> float:
    return STEER_MAX_SECONDS - 0.05 - s.t


def _put_down_and_stand(s: Script, down: np.ndarray, crouch: float, skill: str) -> ClipPlan:
    put, release, up, quiet = durations(s, [(1.1, 1.4), (0.3, 0.4), (0.9, 1.2), (0.2, 0.6)], _budget(s) - 0.3)
    s.move_object(put, down, lift=False, crouch=crouch, hold=0.0)
    s.wait(0.15)
    s.release(release)
    s.stand_up(up)
    return s.finish(skill, quiet, min_seconds=STEER_MIN_SECONDS)


def plan_lift_hold(rng, obj: SynthObject) -> ClipPlan:
    s, goal, u_obj, crouch = start_script(rng, obj, "grip", approach=rng.random() < 0.4, max_back=0.4)
    s.wait(s.u(0.3, 0.6))
    s.walk_to(goal)
    heights = [s.u(WAIST, CHEST)] + ([s.u(WAIST, CHEST)] if rng.random() < 0.35 else [])
    ranges = [(1.0, 1.3), (0.3, 0.4), (1.4, 1.9), (1.0, 2.5)] + [(0.8, 1.2), (1.0, 2.0)] * (len(heights) - 1)
    times = durations(s, ranges + [(1.3, 1.7), (0.3, 0.4), (0.9, 1.2), (0.2, 0.6)], _budget(s) - 0.35)
    reach_t, touch, lift, hold = times[:4]
    s.reach(reach_t, crouch)
    s.touch(touch)
    s.wait(0.15)
    rest = s.obj_track.value_at_end()
    arm = s.u(0.40, 0.47)
    s.move_object(lift, lifted_pose(s, s.stance, u_obj, heights[0], arm), lift=True, crouch=0.0, hold=1.0)
    s.wait(hold)
    for k, h in enumerate(heights[1:]):
        move, hold = times[4 + 2 * k: 6 + 2 * k]
        s.move_object(move, lifted_pose(s, s.stance, u_obj, h, arm), lift=True, crouch=0.0, hold=1.0)
        s.wait(hold)
    shift = s.stance.to_world((s.u(-0.04, 0.04), s.u(-0.05, 0.05))) - s.stance.to_world((0.0, 0.0))
    down = rest + np.array([shift[0], shift[1], 0.0, s.u(-0.2, 0.2)])
    put, release, up, quiet = times[-4:]
    s.move_object(put, down, lift=False, crouch=crouch, hold=0.0)
    s.wait(0.15)
    s.release(release)
    s.stand_up(up)
    return s.finish("lift_hold", quiet, min_seconds=STEER_MIN_SECONDS)


def _place_route(rng, s: Script, rest: np.ndarray, rel_rest: np.ndarray, budget: float):
    """(stances, timing, put-down position) carrying the object 1-3 m in a random direction, to a goal stance that
    has the object where it had it when picking it up. Drawn again (shorter) when it does not fit."""
    here = s.stance
    reach = 3.0
    for attempt in range(40):
        place = rest[:2] + rng.uniform(1.0, reach) * unit(rng.uniform(-np.pi, np.pi))
        if attempt == 39:  # the last resort: 1.05 m straight ahead
            place = rest[:2] + 1.05 * unit(here.yaw)
        yaw = paths.heading_to(here, place) + rng.uniform(-0.35, 0.35)
        xy = place - yaw_rot(yaw)[:2, :2] @ rel_rest
        goal = gait.Stance(float(xy[0]), float(xy[1]), yaw, here.width)
        if np.hypot(goal.x - here.x, goal.y - here.y) < 0.3:  # turn on the spot and put it down behind
            goal = gait.Stance(here.x, here.y, yaw, here.width)
            stances = paths.turn_stances(here, yaw)
        else:
            travel = paths.heading_to(here, (goal.x, goal.y))
            off, keep = float(gait.wrap(travel - here.yaw)), rng.uniform(0.3, 0.8)  # the curve takes `keep`
            first = here.yaw + off - np.sign(off) * keep if abs(off) > keep else None
            stances = paths.route(here, goal, rng.uniform(0.22, 0.3), first_turn=first, bend=rng.uniform(0.3, 0.6))
        put = goal.to_world(rel_rest)
        timing = pace(rng, stances, budget, (0.65, 0.8))
        if stances and timing is not None and 1.0 <= np.linalg.norm(put - rest[:2]) <= 3.0:
            return stances, timing, put
        reach = max(1.2, reach * 0.9)
    raise RuntimeError("place: no route fits")  # not reached: the last resort always fits


def plan_place(rng, obj: SynthObject) -> ClipPlan:
    s, _, u_obj, crouch = start_script(rng, obj, "grip", approach=False)
    s.wait(s.u(0.3, 0.5))
    s.reach(s.u(1.0, 1.2), crouch)
    s.touch(0.35)
    s.wait(0.1)
    rest = s.obj_track.value_at_end()
    rel_rest = yaw_rot(-s.stance.yaw)[:2, :2] @ (rest[:2] - np.array([s.stance.x, s.stance.y]))
    s.move_object(s.u(1.05, 1.25), hold_pose(s, s.stance, u_obj), lift=True, crouch=0.0, hold=1.0)
    s.wait(s.u(0.1, 0.3))
    tail = 1.1 + 0.15 + 0.3 + 0.9 + 0.2 + 0.3  # shortest put down, settle, release, stand up, quiet, margin
    stances, timing, put = _place_route(rng, s, rest, rel_rest, _budget(s) - tail)
    s.walk_path(stances, follow=True, **timing)
    down = np.array([put[0], put[1], rest[2], s.obj_track.value_at_end()[3]])
    return _put_down_and_stand(s, down, crouch, "place")


def plan_push_along(rng, obj: SynthObject) -> ClipPlan:
    s, _, _, crouch = start_script(rng, obj, "push", approach=False)
    s.wait(s.u(0.3, 0.6))
    s.reach(s.u(1.1, 1.3), crouch, push=1.0)
    s.touch(s.u(0.3, 0.4))
    s.wait(0.2)
    turn = rng.uniform(-0.8, 0.8) if rng.random() < 0.75 else 0.0
    length = rng.uniform(0.8, 2.2)
    tail = 0.15 + 0.3 + 0.9 + 0.1 + 0.3
    here = s.stance
    for attempt in range(20):
        xy = np.array([here.x, here.y]) + length * unit(here.yaw + turn / 2)
        end = gait.Stance(float(xy[0]), float(xy[1]), here.yaw + turn, here.width)
        stances = paths.curve_stances(here, end, rng.uniform(0.16, 0.2), bend=0.5, max_turn=0.15)
        timing = pace(rng, stances, _budget(s) - tail, (0.75, 0.9))
        if timing is not None:
            break
        length = max(0.6, length * 0.85)
    s.walk_path(stances, follow=True, **timing)
    release, up, quiet = durations(s, [(0.3, 0.4), (0.9, 1.2), (0.1, 0.5)], _budget(s) - 0.15)
    s.wait(0.15)
    s.release(release)
    s.stand_up(up)
    return s.finish("push_along", quiet, min_seconds=STEER_MIN_SECONDS)
