"""Slow, quasi-static stepping: footstep placement, flat-foot swing paths and the centre-of-mass schedule.

A stance is the mid-point between the ankles plus a heading. Walking from one stance to another inserts
intermediate stances at most `MAX_ADVANCE` apart (and `MAX_TURN` of heading); each step moves one foot to its
place in the next stance, alternating, and a last step brings the trailing foot alongside. Each step starts with
a weight shift: the centre of mass (COM) glides toward the stance foot and forward while the other foot swings
(slow walking, COM accelerations of 1-2 m/s²). Feet stay flat and never slide: a stance foot's target is
constant until it lifts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from interprior.data.synth.timeline import minjerk

MAX_ADVANCE = 0.2  # m between intermediate stances (a foot moves at most twice this per step)
MAX_SIDE = 0.06  # m of sideways travel per intermediate stance (no crossing feet)
MAX_TURN = 0.3  # rad of heading per intermediate stance
SWING_LIFT = 0.06  # m foot clearance at mid-swing
FOOT_CENTRE = 0.07  # m ahead of the ankle: middle of the sole (heel at -0.035, toe tip at +0.19)
COM_LEAN = 0.5  # share of the way from the middle of the feet to the stance foot the COM goes during a step
TOE_OUT = 0.06  # rad each foot turns outward


@dataclass(frozen=True)
class Stance:
    x: float
    y: float
    yaw: float
    width: float = 0.19  # lateral ankle distance

    def foot(self, k: int) -> tuple[np.ndarray, float]:
        """Ankle (x, y) and yaw of foot k (0 left, 1 right)."""
        side = 1.0 if k == 0 else -1.0
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        lat = side * self.width / 2
        return np.array([self.x - s * lat, self.y + c * lat]), self.yaw + side * TOE_OUT

    def to_world(self, local_xy) -> np.ndarray:
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        lx, ly = local_xy
        return np.array([self.x + c * lx - s * ly, self.y + s * lx + c * ly])

    def support_centre(self) -> np.ndarray:
        """Middle of the two soles (where the COM goes when standing)."""
        return self.to_world((FOOT_CENTRE, 0.0))


def foot_centre(xy: np.ndarray, yaw: float) -> np.ndarray:
    return xy + FOOT_CENTRE * np.array([np.cos(yaw), np.sin(yaw)])


def wrap(a):
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


@dataclass
class Step:
    foot: int
    start: tuple  # (xy, yaw)
    end: tuple
    t_shift: float  # COM starts moving over the other foot
    t_lift: float
    t_land: float


@dataclass
class Walk:
    """Footsteps between two stances and their timing (seconds)."""

    start: Stance
    goal: Stance
    steps: list[Step] = field(default_factory=list)
    t_begin: float = 0.0
    t_end: float = 0.0  # COM back between the feet
    stances: list[Stance] = field(default_factory=list)  # intermediate stances (for carried-object frames)


def plan_walk(start: Stance, goal: Stance, t_begin: float, shift: float = 0.35, swing: float = 0.5,
              settle: float = 0.4, first_foot: int | None = None, max_advance: float = MAX_ADVANCE) -> Walk:
    """Steps from `start` to `goal` beginning at `t_begin`. No steps when the stances coincide. With one
    intermediate stance each foot moves by the whole advance (two steps), otherwise the inner steps move a foot
    by twice the spacing of the intermediate stances."""
    d = np.array([goal.x - start.x, goal.y - start.y])
    c, s = np.cos(start.yaw), np.sin(start.yaw)
    fwd, side = c * d[0] + s * d[1], -s * d[0] + c * d[1]
    turn = float(wrap(goal.yaw - start.yaw))
    n = int(max(np.ceil(abs(fwd) / max_advance - 1e-9), np.ceil(abs(side) / MAX_SIDE - 1e-9),
                np.ceil(abs(turn) / MAX_TURN - 1e-9)))
    if n == 0:
        return Walk(start, goal, t_begin=t_begin, t_end=t_begin)
    stances = [Stance(start.x + d[0] * i / n, start.y + d[1] * i / n, start.yaw + turn * i / n,
                      start.width + (goal.width - start.width) * i / n) for i in range(1, n + 1)]
    if first_foot is None:  # lead with the foot on the side of travel / turn
        lead = side if abs(side) > 0.02 else turn
        first_foot = 0 if lead > 0 else 1
    return walk_through(start, stances, t_begin, shift, swing, settle, first_foot, goal=goal)


def lead_foot(start: Stance, first: Stance) -> int:
    """The foot that steps first toward `first`: the one on the side of travel, else of the turn (right when
    walking straight)."""
    d = np.array([first.x - start.x, first.y - start.y])
    side = -np.sin(start.yaw) * d[0] + np.cos(start.yaw) * d[1]
    turn = float(wrap(first.yaw - start.yaw))
    lead = side if abs(side) > 0.02 else turn
    return 0 if lead > 0 else 1


def walk_through(start: Stance, stances: list[Stance], t_begin: float, shift: float = 0.35, swing: float = 0.5,
                 settle: float = 0.4, first_foot: int | None = None, goal: Stance | None = None) -> Walk:
    """Steps through the intermediate stances `stances` (the last one is the goal, unless `goal` is given): step
    i puts a foot where it stands in stance i, alternating feet; a last step brings the trailing foot alongside."""
    goal = goal if goal is not None else (stances[-1] if stances else start)
    walk = Walk(start, goal, t_begin=t_begin, t_end=t_begin)
    if not stances:
        return walk
    n = len(stances)
    walk.stances = list(stances)
    if first_foot is None:
        first_foot = lead_foot(start, stances[0])
    feet = [start.foot(0), start.foot(1)]
    t = t_begin
    order = [(first_foot + i) % 2 for i in range(n)] + [(first_foot + n) % 2]
    targets = list(stances) + [stances[-1]]
    for k, st in zip(order, targets):
        end = st.foot(k)
        walk.steps.append(Step(k, feet[k], end, t, t + shift, t + shift + swing))
        feet[k] = end
        t += shift + swing
    walk.t_end = t + settle
    return walk


def foot_tracks(walks: list[Walk], stance0: Stance, times: np.ndarray, ankle_heights: np.ndarray):
    """Ankle targets over time for a sequence of walks: positions [T, 2, 3], yaws [T, 2], planted [T, 2]."""
    T = len(times)
    pos = np.zeros((T, 2, 3))
    yaw = np.zeros((T, 2))
    planted = np.ones((T, 2), dtype=bool)
    for k in range(2):
        xy, fy = stance0.foot(k)
        pos[:, k, :2], pos[:, k, 2], yaw[:, k] = xy, ankle_heights[k], fy
    for walk in walks:
        for st in walk.steps:
            k = st.foot
            (xy0, y0), (xy1, y1) = st.start, st.end
            swing = (times >= st.t_lift) & (times < st.t_land)
            after = times >= st.t_land
            s = (times[swing] - st.t_lift) / (st.t_land - st.t_lift)
            h = minjerk(np.clip((s - 0.15) / 0.7, 0.0, 1.0))  # lift first, move, then set down vertically
            pos[swing, k, :2] = xy0 + h[:, None] * (xy1 - xy0)
            pos[swing, k, 2] = ankle_heights[k] + SWING_LIFT * 0.5 * (1.0 - np.cos(2 * np.pi * s))
            yaw[swing, k] = y0 + h * wrap(y1 - y0)
            planted[swing, k] = False
            pos[after, k, :2] = xy1
            yaw[after, k] = y1
    return pos, yaw, planted


def com_keys(walk: Walk, lean: float = COM_LEAN) -> list[tuple[float, float, np.ndarray]]:
    """COM (x, y) keyframes of a walk as (t_from, t_to, target). During each step (weight shift and swing) the
    COM glides toward the stance foot - `lean` of the way from the middle of the stance it is heading for - and
    forward; after the last step it settles between the feet. Moving it during the swing too keeps its
    acceleration around 1-2 m/s² (a full shift onto the foot in the weight-shift window alone would take ~20)."""
    keys = []
    feet = [walk.start.foot(0), walk.start.foot(1)]
    for st in walk.steps:
        stance_foot = foot_centre(*feet[1 - st.foot])
        landed = foot_centre(*st.end)
        middle = 0.5 * (stance_foot + landed)
        keys.append((st.t_shift, st.t_land, middle + lean * (stance_foot - middle)))
        feet[st.foot] = st.end
    if walk.steps:
        keys.append((walk.steps[-1].t_land, walk.t_end, walk.goal.support_centre()))
    return keys
