"""Skills as keyframed scripts: what the feet, hands, body posture and object do, second by second.

Skills (each clip starts from a quiet standing pose, arms down, and ends standing):

* `reach`  - walk up to the object (0-3 steps), reach down, grasp it with both hands, let go, stand up;
* `pickup` - reach down, grasp, lift (>= 1 s), hold, put it down (a little shifted), let go, stand up;
* `carry`  - pick up, carry it 2-3 steps (possibly turning), put it down, let go, stand up;
* `push`   - reach the near surface, push the object along the floor over 2-3 steps, let go, stand up.

Everything is slow and balanced: the centre of mass is planned over the support (compensating a carried
object's weight), lifts and put-downs take over a second, steps are slow with the weight shifted toward the
stance foot (see `gait`). Clips last 4-8 s (`MAX_SECONDS`: phase durations shrink to fit). A script produces IK
targets plus the object track, the contact spans and the finger grip channel (`ClipPlan`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from interprior.data.synth import gait, grasp, keyframes, reach
from interprior.data.synth.ik import PELVIS_AHEAD_OF_COM, Targets, ankle_heights
from interprior.data.synth.objects import SynthObject
from interprior.data.synth.timeline import Channel, minjerk

SKILLS: tuple[str, ...] = ("reach", "pickup", "carry", "push")
FPS = 30.0
MIN_SECONDS, MAX_SECONDS = 4.0, 8.0
PRE_GRASP = 0.07  # m the palms hover off the surface before touching / after letting go
HUMAN_MASS = 74.07  # kg, the default humanoid (checked against the model in the tests)


@dataclass
class ClipPlan:
    skill: str
    object: SynthObject
    times: np.ndarray  # [T] s
    targets: Targets
    obj_pos: np.ndarray  # [T, 3]
    obj_yaw: np.ndarray  # [T]
    contact: np.ndarray  # [T] bool: both palms on the object
    grip: np.ndarray  # [T] 0 relaxed fingers .. 1 flat on the surface
    planted: np.ndarray  # [T, 2] feet on the ground
    carried: np.ndarray  # [T] share of the object's weight on the hands

    @property
    def num_frames(self) -> int:
        return int(self.times.shape[0])


def yaw_rot(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def yaw_quat(yaw: np.ndarray) -> np.ndarray:
    """[T] -> [T, 4] wxyz rotations about z."""
    yaw = np.asarray(yaw, dtype=np.float64)
    return np.stack([np.cos(yaw / 2), np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2)], axis=1)


def _unit(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw), np.sin(yaw)])


class Script:
    """Channels of one clip being written; `t` is the time the next phase starts."""

    def __init__(self, rng: np.random.Generator, obj: SynthObject, stance0: gait.Stance):
        self.rng = rng
        self.obj = obj
        self.stance0 = stance0
        self.stance = stance0
        self.t = 0.0
        self.crouch = Channel(0.0)
        self.hold = Channel(0.0)
        self.push = Channel(0.0)
        self.grip = Channel(0.0)
        self.offset = Channel(PRE_GRASP)
        self.hand_w = Channel([0.0, 0.0])
        self.hand_mix = Channel([0.0, 0.0])
        self.carried = Channel(0.0)
        self.com = Channel(stance0.support_centre())
        self.obj_track = None  # Channel [x, y, z, yaw]
        self.obj_follow: list = []  # (t0, t1, fn(times) -> [n, 4])
        self.walks: list[gait.Walk] = []
        self.contacts: list[list[float]] = []
        self.anchors: list[grasp.HandAnchor] | None = None

    def u(self, a: float, b: float) -> float:
        return float(self.rng.uniform(a, b))

    # --- phases -----------------------------------------------------------------------------------------------
    def wait(self, seconds: float) -> None:
        self.t += seconds

    def walk_to(self, goal: gait.Stance, follow: str | None = None, **timing) -> gait.Walk:
        walk = gait.plan_walk(self.stance, goal, self.t, **timing)
        self.walks.append(walk)
        for t0, t1, target in gait.com_keys(walk):
            self.com.move(t0, t1, target)
        if follow is not None and walk.steps:
            self._follow(walk, follow)
        self.stance = goal
        self.t = walk.t_end if walk.steps else self.t
        return walk

    def reach(self, seconds: float, crouch: float, push: float = 0.0) -> None:
        """Crouch while both hands move from where they hang to just off their anchors."""
        t0, t1 = self.t, self.t + seconds
        self.crouch.move(t0, t1, crouch)
        self.push.move(t0, t1, push)
        self.hand_w.move(t0, t0, [1.0, 1.0])
        self.hand_mix.move(t0, t1, [1.0, 1.0])
        self.grip.move(t0 + 0.5 * seconds, t1, 1.0)  # fingers straighten as the hands arrive
        self.t = t1

    def touch(self, seconds: float) -> None:
        """Palms onto the surface (fingers already flat); contact starts when they arrive."""
        t0, t1 = self.t, self.t + seconds
        self.offset.move(t0, t1, 0.0)
        self.contacts.append([t1, np.inf])
        self.t = t1

    def release(self, seconds: float) -> None:
        t0, t1 = self.t, self.t + seconds
        self.contacts[-1][1] = t0
        self.offset.move(t0, t1, PRE_GRASP)
        self.t = t1

    def stand_up(self, seconds: float) -> None:
        """Hands return to hanging beside the body while the body rises."""
        t0, t1 = self.t, self.t + seconds
        self.crouch.move(t0, t1, 0.0)
        self.push.move(t0, t1, 0.0)
        self.hold.move(t0, t1, 0.0)
        self.hand_mix.move(t0, t1, [0.0, 0.0])
        self.hand_w.move(t1, t1, [0.0, 0.0])
        self.grip.move(t0 + 0.5 * seconds, t1, 0.0)  # fingers relax once the hands are clear
        self.t = t1

    def move_object(self, seconds: float, pose, lift: bool, crouch: float, hold: float) -> None:
        """Carry the object to `pose` (x, y, z, yaw) while the body goes to `crouch` / `hold`. Lifting rises
        vertically first, putting down ends vertically, so the object never scrapes the floor."""
        t0, t1 = self.t, self.t + seconds
        start = self.obj_track.value_at_end()
        pose = np.array(pose, dtype=np.float64)
        pose[3] = start[3] + gait.wrap(pose[3] - start[3])  # turn the short way
        z_track = Channel(start[2]).move(t0, t1, pose[2])
        if lift:
            xy_window = (t0 + 0.3 * seconds, t1)
            self.carried.move(t0, t0 + 0.3 * seconds, 1.0)
        else:
            xy_window = (t0, t1 - 0.3 * seconds)
            self.carried.move(t1 - 0.3 * seconds, t1, 0.0)
        xy_track = Channel(start[[0, 1, 3]]).move(*xy_window, np.asarray(pose)[[0, 1, 3]])

        def fn(times, z_track=z_track, xy_track=xy_track):
            xy = xy_track.sample(times)
            return np.stack([xy[:, 0], xy[:, 1], z_track.sample(times), xy[:, 2]], axis=1)

        self.obj_follow.append((t0, t1, fn))
        self.obj_track.move(t1, t1, pose)
        self.crouch.move(t0, t1, crouch)
        self.hold.move(t0, t1, hold)
        self.t = t1

    def _follow(self, walk: gait.Walk, mode: str) -> None:
        """Object track during a walk: rigidly carried with the body ("carry") or slid ahead of it ("push")."""
        t0, t1 = walk.t_begin, walk.t_end
        com, start_pose = self.com, self.obj_track.value_at_end()
        c0 = self.stance.support_centre()
        yaw0 = self.stance.yaw
        rel = yaw_rot(-yaw0)[:2, :2] @ (start_pose[:2] - c0)
        goal = walk.goal
        if mode == "carry":
            def fn(times):
                c = com.sample(times)
                s = minjerk((times - t0) / (t1 - t0))
                yaw = yaw0 + s * gait.wrap(goal.yaw - yaw0)
                xy = c + np.einsum("nij,j->ni", np.stack([yaw_rot(y)[:2, :2] for y in yaw]), rel)
                return np.stack([xy[:, 0], xy[:, 1], np.full_like(yaw, start_pose[2]),
                                 start_pose[3] + (yaw - yaw0)], axis=1)
            end = np.concatenate([goal.support_centre() + yaw_rot(goal.yaw)[:2, :2] @ rel,
                                  [start_pose[2], start_pose[3] + gait.wrap(goal.yaw - yaw0)]])
        else:  # push straight along the heading by the COM's forward progress
            direction = _unit(yaw0)

            def fn(times):
                progress = (com.sample(times) - c0) @ direction
                xy = start_pose[:2] + progress[:, None] * direction
                n = len(times)
                return np.stack([xy[:, 0], xy[:, 1], np.full(n, start_pose[2]), np.full(n, start_pose[3])], axis=1)
            progress = (goal.support_centre() - c0) @ direction
            end = np.concatenate([start_pose[:2] + progress * direction, start_pose[2:]])
        self.obj_follow.append((t0, t1, fn))
        self.obj_track.move(t1, t1, end)

    # --- output -----------------------------------------------------------------------------------------------
    def finish(self, skill: str, quiet: float) -> ClipPlan:
        self.t += max(quiet, MIN_SECONDS + 0.05 - self.t)  # short clips stand a little longer at the end
        T = int(round(self.t * FPS))
        times = np.arange(T) / FPS
        heights = ankle_heights()
        foot_pos, foot_yaw, planted = gait.foot_tracks(self.walks, self.stance0, times, heights)
        heading = np.unwrap(foot_yaw, axis=0).mean(axis=1)
        obj = self.obj_track.sample(times)
        for t0, t1, fn in self.obj_follow:
            during = (times >= t0) & (times < t1)
            if during.any():
                obj[during] = fn(times[during])
        contact = np.zeros(T, dtype=bool)
        for c0, c1 in self.contacts:
            contact |= (times >= c0) & (times < c1)
        carried = self.carried.sample(times)
        # the humanoid's own COM leans away from a carried load so that the total COM stays over the support
        support = self.com.sample(times)
        ratio = carried * self.obj.mass / HUMAN_MASS
        com = support + ratio[:, None] * (support - obj[:, :2])
        crouch, hold, push = self.crouch.sample(times), self.hold.sample(times), self.push.sample(times)
        hand_pos, hand_rot, elbow_pos = self._hand_targets(obj, self.offset.sample(times))
        hand_w, hand_mix = self.hand_w.sample(times), self.hand_mix.sample(times)
        targets = Targets(
            foot_pos=foot_pos, foot_yaw=foot_yaw, pelvis_yaw=heading,
            pelvis_pitch=keyframes.pelvis_pitch(crouch) + 0.2 * push,
            com_xy=com, posture=keyframes.posture(crouch, hold, push),
            hand_pos=hand_pos, hand_rot=hand_rot, hand_w=hand_w, hand_mix=hand_mix,
            elbow_pos=elbow_pos, elbow_w=hand_w * hand_mix ** 2, pelvis_xy_w=hold,
        )
        return ClipPlan(skill=skill, object=self.obj, times=times, targets=targets, obj_pos=obj[:, :3],
                        obj_yaw=obj[:, 3], contact=contact, grip=self.grip.sample(times), planted=planted,
                        carried=carried)

    def _hand_targets(self, obj: np.ndarray, offset: np.ndarray):
        T = obj.shape[0]
        pos, elbow = np.zeros((T, 2, 3)), np.zeros((T, 2, 3))
        rot = np.tile(np.eye(3), (T, 2, 1, 1))
        if self.anchors is None:
            return pos, rot, elbow
        R = np.stack([yaw_rot(y) for y in obj[:, 3]])  # [T, 3, 3]
        for k, a in enumerate(self.anchors):
            away = offset[:, None] * (a.normal + np.array([0.0, 0.0, 0.5]))[None]  # off the surface, a little up
            pos[:, k] = obj[:, :3] + np.einsum("tij,tj->ti", R, a.pos[None] + away)
            elbow[:, k] = obj[:, :3] + np.einsum("tij,tj->ti", R, a.elbow[None] + away)
            rot[:, k] = R @ a.rot
        return pos, rot, elbow


# --------------------------------------------------------------------------------------------------------------
# placement
# --------------------------------------------------------------------------------------------------------------
def _grasp_stance(rng, obj: SynthObject, obj_xy, obj_yaw: float, u_obj: np.ndarray, mode: str,
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


def _setup(rng, obj: SynthObject, mode: str, approach: bool, max_back: float = 0.45):
    """Object pose, hand anchors, grasp stance and starting stance."""
    obj_yaw = float(rng.uniform(-np.pi, np.pi))
    u_obj = grasp.snap_direction(obj, _unit(rng.uniform(-np.pi, np.pi)))
    if mode == "push":
        anchors = grasp.push_anchors(obj, u_obj)
    else:
        anchors = grasp.grip_anchors(obj, u_obj, finger_pitch=rng.uniform(0.35, 0.7) if obj.kind != "stool" else 0.1)
    obj_xy = rng.uniform(-0.5, 0.5, size=2)
    g, crouch = _grasp_stance(rng, obj, obj_xy, obj_yaw, u_obj, mode, anchors)
    start = g
    if approach:
        back, side, turn = rng.uniform(0.2, max_back), rng.uniform(-0.1, 0.1), rng.uniform(-0.3, 0.3)
        xy = g.to_world((-back, side))
        start = gait.Stance(float(xy[0]), float(xy[1]), g.yaw + turn, width=0.19)
    return obj_xy, obj_yaw, u_obj, anchors, g, start, crouch


def _script(rng, obj, mode, approach, **kw):
    obj_xy, obj_yaw, u_obj, anchors, goal, start, crouch = _setup(rng, obj, mode, approach, **kw)
    s = Script(rng, obj, start)
    s.obj_track = Channel([obj_xy[0], obj_xy[1], obj.rest_height, obj_yaw])
    s.anchors = anchors
    return s, goal, u_obj, crouch


BELLY_CLEARANCE = 0.15  # m from the pelvis axis to a held object's near surface (pelvis sphere: 0.106)


def _hold_pose(s: Script, stance: gait.Stance, u_obj: np.ndarray) -> np.ndarray:
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


# --------------------------------------------------------------------------------------------------------------
# skills
# --------------------------------------------------------------------------------------------------------------
def _durations(s: Script, ranges: list[tuple[float, float]], budget: float) -> list[float]:
    """Draw a duration from each (low, high) range, then shrink them toward their lows (never below) until they
    fit into `budget` seconds: clips stay within MAX_SECONDS whatever the walks took."""
    drawn = np.array([s.u(lo, hi) for lo, hi in ranges])
    low = np.array([lo for lo, _ in ranges])
    if drawn.sum() > budget and drawn.sum() > low.sum():
        k = np.clip((budget - low.sum()) / (drawn.sum() - low.sum()), 0.0, 1.0)
        drawn = low + k * (drawn - low)
    return [float(d) for d in drawn]


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


PLANNERS = {"reach": plan_reach, "pickup": plan_pickup, "carry": plan_carry, "push": plan_push}


def plan_clip(skill: str, obj: SynthObject, rng: np.random.Generator) -> ClipPlan:
    return PLANNERS[skill](rng, obj)
