"""Skills as keyframed scripts: what the feet, hands, body posture and object do, second by second.

The first four skills (the default set; each clip starts from a quiet standing pose, arms down, and ends
standing):

* `reach`  - walk up to the object (0-3 steps), reach down, grasp it with both hands, let go, stand up;
* `pickup` - reach down, grasp, lift (>= 1 s), hold, put it down (a little shifted), let go, stand up;
* `carry`  - pick up, carry it 2-3 steps (possibly turning), put it down, let go, stand up;
* `push`   - reach the near surface, push the object along the floor over 2-3 steps, let go, stand up.

Everything is slow and balanced: the centre of mass is planned over the support (compensating a carried
object's weight), lifts and put-downs take over a second, steps are slow with the weight shifted toward the
stance foot (see `gait`). These clips last 4-8 s (`MAX_SECONDS`: phase durations shrink to fit). A script produces
IK targets plus the object track, the contact spans and the finger grip channel (`ClipPlan`).

The steering skills (`STEER_SKILLS`, opt-in: `walk`, `locomote`, `touch`, `lift_hold`, `place`, `push_along`;
5-15 s) live in `skills_locomotion`, `skills_touch` and `skills_handling`.
"""

from __future__ import annotations

import numpy as np

from interprior.data.synth import gait, skills_handling, skills_locomotion, skills_touch
from interprior.data.synth.objects import SynthObject
from interprior.data.synth.placement import durations as _durations
from interprior.data.synth.placement import hold_pose as _hold_pose
from interprior.data.synth.placement import start_script as _script
from interprior.data.synth.script import (  # noqa: F401  (re-exported: the names skills had before the split)
    FPS,
    HUMAN_MASS,
    MAX_SECONDS,
    MIN_SECONDS,
    PRE_GRASP,
    ClipPlan,
    Script,
    yaw_quat,
    yaw_rot,
)

SKILLS: tuple[str, ...] = ("reach", "pickup", "carry", "push")  # the default set
STEER_SKILLS: tuple[str, ...] = ("walk", "locomote", "touch", "lift_hold", "place", "push_along")
ALL_SKILLS: tuple[str, ...] = SKILLS + STEER_SKILLS


# --------------------------------------------------------------------------------------------------------------
# skills
# --------------------------------------------------------------------------------------------------------------
def _budget(s: Script) -> float:
    return MAX_SECONDS - 0.05 - s.t


def plan_reach(rng, obj: SynthObject) -> ClipPlan:
    approach = rng.random() < 0.7
    s, goal, _, crouch = _script(rng, obj, "grip", approach, max_back=0.35)
    s.wait(s.u(0.4, 0.7))
    s.walk_to(goal)
    reach_t, touch, hold, release, up, quiet = _durations(
        s, [(1.0, 1.4), (0.3, 0.4), (0.3, 0.8), (0.3, 0.4), (0.9, 1.3), (0.1, 0.5)], _budget(s))
    s.reach(reach_t, crouch)
    s.touch(touch)
    s.wait(hold)
    s.release(release)
    s.stand_up(up)
    return s.finish("reach", quiet)


def plan_pickup(rng, obj: SynthObject) -> ClipPlan:
    s, goal, u_obj, crouch = _script(rng, obj, "grip", approach=False)
    quiet0, reach_t, touch, lift, hold, put, release, up, quiet = _durations(
        s, [(0.3, 0.6), (1.0, 1.3), (0.3, 0.4), (1.05, 1.4), (0.2, 0.8), (1.05, 1.4), (0.3, 0.4), (0.9, 1.2),
            (0.1, 0.4)], _budget(s) - 0.3)
    s.wait(quiet0)
    s.reach(reach_t, crouch)
    s.touch(touch)
    s.wait(0.15)
    rest = s.obj_track.value_at_end()
    s.move_object(lift, _hold_pose(s, s.stance, u_obj), lift=True, crouch=0.0, hold=1.0)
    s.wait(hold)
    # put it back down a little shifted and turned
    shift = s.stance.to_world((s.u(-0.04, 0.04), s.u(-0.05, 0.05))) - s.stance.to_world((0.0, 0.0))
    down = rest + np.array([shift[0], shift[1], 0.0, s.u(-0.15, 0.15)])
    s.move_object(put, down, lift=False, crouch=crouch, hold=0.0)
    s.wait(0.15)
    s.release(release)
    s.stand_up(up)
    return s.finish("pickup", quiet)


def plan_carry(rng, obj: SynthObject) -> ClipPlan:
    s, goal, u_obj, crouch = _script(rng, obj, "grip", approach=False)
    s.wait(s.u(0.3, 0.4))
    s.reach(s.u(1.0, 1.1), crouch)
    s.touch(0.35)
    s.wait(0.1)
    rest = s.obj_track.value_at_end()
    rel_rest = yaw_rot(-s.stance.yaw)[:2, :2] @ (rest[:2] - np.array([s.stance.x, s.stance.y]))
    s.move_object(s.u(1.05, 1.15), _hold_pose(s, s.stance, u_obj), lift=True, crouch=0.0, hold=1.0)
    # 2 or 3 steps forward (3 when they fit into the clip), possibly turning
    swing, shift, settle = 0.5, 0.3, 0.3
    tail = 1.05 + 0.1 + 0.3 + 0.9 + 0.1  # shortest put down, settle, release, stand up, quiet
    n = 3 if s.t + 3 * (shift + swing) + settle + tail <= MAX_SECONDS - 0.05 and rng.random() < 0.6 else 2
    advance = s.u(0.25, 0.32) if n == 2 else s.u(0.3, 0.38)
    turn = s.u(-0.25, 0.25)
    goal = gait.Stance(*s.stance.to_world((advance, 0.0)), s.stance.yaw + turn, width=s.stance.width)
    s.walk_to(goal, follow="carry", shift=shift, swing=swing, settle=settle,
              max_advance=advance if n == 2 else advance / 2 + 1e-6)
    # put it down in front of the new stance, where it was relative to the old one
    xy = goal.to_world(rel_rest)
    down = np.array([xy[0], xy[1], rest[2], s.obj_track.value_at_end()[3]])
    put, release, up, quiet = _durations(s, [(1.05, 1.15), (0.3, 0.35), (0.9, 1.1), (0.1, 0.3)], _budget(s) - 0.1)
    s.move_object(put, down, lift=False, crouch=crouch, hold=0.0)
    s.wait(0.1)
    s.release(release)
    s.stand_up(up)
    return s.finish("carry", quiet)


def plan_push(rng, obj: SynthObject) -> ClipPlan:
    s, goal, _, crouch = _script(rng, obj, "push", approach=False)
    s.wait(s.u(0.3, 0.6))
    s.reach(s.u(1.1, 1.3), crouch, push=1.0)
    s.touch(s.u(0.3, 0.4))
    s.wait(0.2)
    n = 2 if rng.random() < 0.5 else 3
    advance = (n - 1) * gait.MAX_ADVANCE * s.u(0.8, 1.0)
    goal = gait.Stance(*s.stance.to_world((advance, 0.0)), s.stance.yaw, width=s.stance.width)
    s.walk_to(goal, follow="push", shift=0.35, swing=0.5, settle=0.35)
    release, up, quiet = _durations(s, [(0.3, 0.4), (0.9, 1.2), (0.1, 0.4)], _budget(s) - 0.15)
    s.wait(0.15)
    s.release(release)
    s.stand_up(up)
    return s.finish("push", quiet)


PLANNERS = {"reach": plan_reach, "pickup": plan_pickup, "carry": plan_carry, "push": plan_push,
            "walk": skills_locomotion.plan_walk, "locomote": skills_locomotion.plan_locomote,
            "touch": skills_touch.plan_touch, "lift_hold": skills_handling.plan_lift_hold,
            "place": skills_handling.plan_place, "push_along": skills_handling.plan_push_along}


def plan_clip(skill: str, obj: SynthObject, rng: np.random.Generator) -> ClipPlan:
    return PLANNERS[skill](rng, obj)
