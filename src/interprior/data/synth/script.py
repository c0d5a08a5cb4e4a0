"""The script a skill writes: keyframed channels of one clip (feet, centre of mass, posture, hands, object), and
the plan they turn into (`ClipPlan`: IK targets, object track, contact spans, finger grip).

A script is written phase by phase (`wait`, `walk_to` / `walk_path`, `reach`, `touch`, `move_object`, `release`,
`stand_up`); `t` is the time the next phase starts. Skills (`skills`, `skills_locomotion`, `skills_handling`,
`skills_touch`) are functions that write one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from interprior.data.synth import gait, grasp, keyframes
from interprior.data.synth.ik import Targets, ankle_heights
from interprior.data.synth.objects import SynthObject
from interprior.data.synth.timeline import Channel, minjerk

FPS = 30.0
MIN_SECONDS, MAX_SECONDS = 4.0, 8.0  # clips of the first four skills (reach, pickup, carry, push)
STEER_MIN_SECONDS, STEER_MAX_SECONDS = 5.0, 15.0  # clips of the steering skills (walk, locomote, touch, ...)
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
    contact: np.ndarray  # [T] bool: a palm (or both) on the object
    grip: np.ndarray  # [T] 0 relaxed fingers .. 1 flat on the surface
    planted: np.ndarray  # [T, 2] feet on the ground
    carried: np.ndarray  # [T] share of the object's weight on the hands
    hand_contact: np.ndarray  # [T, 2] bool: the left / right palm on the object

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


def yaw_rots(yaw: np.ndarray) -> np.ndarray:
    """[T] -> [T, 3, 3] rotations about z."""
    c, s = np.cos(yaw), np.sin(yaw)
    zero, one = np.zeros_like(c), np.ones_like(c)
    return np.stack([np.stack([c, -s, zero], -1), np.stack([s, c, zero], -1), np.stack([zero, zero, one], -1)], -2)


def _pose(stance: gait.Stance) -> np.ndarray:
    return np.array([stance.x, stance.y, stance.yaw])


def unit(yaw: float) -> np.ndarray:
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
        self.contacts: list[list] = []  # [start, end, (left, right) hands touching]
        self.anchors: list[grasp.HandAnchor | None] | None = None

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

    def walk_path(self, stances: list[gait.Stance], follow: bool = False, **timing) -> gait.Walk:
        """Walk through the intermediate stances (`paths`), the last one being the goal. `follow`: the object
        keeps its pose relative to the body (carried, or pushed along the floor) along the way."""
        walk = gait.walk_through(self.stance, stances, self.t, **timing)
        self.walks.append(walk)
        for t0, t1, target in gait.com_keys(walk):
            self.com.move(t0, t1, target)
        if follow and walk.steps:
            self._follow_body(walk)
        if walk.steps:
            self.stance = walk.goal
            self.t = walk.t_end
        return walk

    def reach(self, seconds: float, crouch: float, push: float = 0.0, hands=(True, True)) -> None:
        """Crouch while the hands (both, or the one in `hands`) move from where they hang to just off their
        anchors."""
        t0, t1 = self.t, self.t + seconds
        on = [1.0 if h else 0.0 for h in hands]
        self.crouch.move(t0, t1, crouch)
        self.push.move(t0, t1, push)
        self.hand_w.move(t0, t0, on)
        self.hand_mix.move(t0, t1, on)
        self.grip.move(t0 + 0.5 * seconds, t1, 1.0)  # fingers straighten as the hands arrive
        self.t = t1

    def touch(self, seconds: float, hands=(True, True)) -> None:
        """Palms onto the surface (fingers already flat); contact starts when they arrive."""
        t0, t1 = self.t, self.t + seconds
        self.offset.move(t0, t1, 0.0)
        self.contacts.append([t1, np.inf, tuple(bool(h) for h in hands)])
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
            direction = unit(yaw0)

            def fn(times):
                progress = (com.sample(times) - c0) @ direction
                xy = start_pose[:2] + progress[:, None] * direction
                n = len(times)
                return np.stack([xy[:, 0], xy[:, 1], np.full(n, start_pose[2]), np.full(n, start_pose[3])], axis=1)
            progress = (goal.support_centre() - c0) @ direction
            end = np.concatenate([start_pose[:2] + progress * direction, start_pose[2:]])
        self.obj_follow.append((t0, t1, fn))
        self.obj_track.move(t1, t1, end)

    def _follow_body(self, walk: gait.Walk) -> None:
        """Object track during a walk along a path: rigid with the body's pose, which is the mean of the two
        feet's stances and moves (minimum jerk) while each step's weight shift and swing last, as the centre of
        mass does. The pelvis sways over the stance feet; the arms take up the sway, the object goes smoothly."""
        start_pose = self.obj_track.value_at_end()
        body = Channel(_pose(walk.start))
        feet = [_pose(walk.start), _pose(walk.start)]
        for st, stance in zip(walk.steps, [*walk.stances, walk.stances[-1]]):
            feet[st.foot] = _pose(stance)
            mean = feet[0] + 0.5 * np.array([*(feet[1][:2] - feet[0][:2]), gait.wrap(feet[1][2] - feet[0][2])])
            prev = body.value_at_end()
            mean[2] = prev[2] + gait.wrap(mean[2] - prev[2])  # unwrapped heading
            body.move(st.t_shift, st.t_land, mean)
        base = body.initial
        rel = yaw_rot(-base[2])[:2, :2] @ (start_pose[:2] - base[:2])

        def fn(times, body=body):
            b = body.sample(times)
            xy = b[:, :2] + np.einsum("nij,j->ni", yaw_rots(b[:, 2])[:, :2, :2], rel)
            return np.stack([xy[:, 0], xy[:, 1], np.full(len(times), start_pose[2]),
                             start_pose[3] + b[:, 2] - base[2]], axis=1)

        self.obj_follow.append((walk.t_begin, walk.t_end, fn))
        self.obj_track.move(walk.t_end, walk.t_end, fn(np.array([walk.t_end]))[0])

    # --- output -----------------------------------------------------------------------------------------------
    def finish(self, skill: str, quiet: float, min_seconds: float = MIN_SECONDS) -> ClipPlan:
        self.t += max(quiet, min_seconds + 0.05 - self.t)  # short clips stand a little longer at the end
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
        hand_contact = np.zeros((T, 2), dtype=bool)
        for c0, c1, on in self.contacts:
            hand_contact |= ((times >= c0) & (times < c1))[:, None] & np.array(on)[None]
        contact = hand_contact.any(axis=1)
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
                        carried=carried, hand_contact=hand_contact)

    def _hand_targets(self, obj: np.ndarray, offset: np.ndarray):
        T = obj.shape[0]
        pos, elbow = np.zeros((T, 2, 3)), np.zeros((T, 2, 3))
        rot = np.tile(np.eye(3), (T, 2, 1, 1))
        if self.anchors is None:
            return pos, rot, elbow
        R = yaw_rots(obj[:, 3])  # [T, 3, 3]
        for k, a in enumerate(self.anchors):
            if a is None:  # a hand that stays free
                continue
            away = offset[:, None] * (a.normal + np.array([0.0, 0.0, 0.5]))[None]  # off the surface, a little up
            pos[:, k] = obj[:, :3] + np.einsum("tij,tj->ti", R, a.pos[None] + away)
            elbow[:, k] = obj[:, :3] + np.einsum("tij,tj->ti", R, a.elbow[None] + away)
            rot[:, k] = R @ a.rot
        return pos, rot, elbow


