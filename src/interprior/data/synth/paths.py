"""Walking routes as sequences of intermediate stances (`gait.walk_through` steps through them).

A route turns on the spot (the stance centre stays, the heading changes by at most `TURN_IN_PLACE` per stance),
then walks along a smooth curve: a cubic Hermite curve from the start's position and heading to the goal's,
sampled at equal steps of effort (the length of (arc length / `spacing`, heading change / `CURVE_TURN`)), so that
stances are at most `spacing` apart and the heading (the curve's tangent) changes by at most `CURVE_TURN` between
them. With the start heading along the way to the goal the curve is a straight line; a
start heading off it bends the curve.
"""

from __future__ import annotations

import numpy as np

from interprior.data.synth.gait import Stance, wrap

TURN_IN_PLACE = 0.42  # rad of heading per stance when turning on the spot (each foot turns ~0.85 per step)
CURVE_TURN = 0.3  # rad of heading per stance while walking along a curve
DENSE = 400  # samples of a curve for its arc length


def heading_to(start: Stance, xy) -> float:
    """World heading from the start's centre toward a point."""
    return float(np.arctan2(xy[1] - start.y, xy[0] - start.x))


def turn_stances(start: Stance, yaw: float, max_turn: float = TURN_IN_PLACE) -> list[Stance]:
    """Stances turning on the spot from the start's heading to `yaw` (the short way); empty when aligned."""
    turn = float(wrap(yaw - start.yaw))
    n = int(np.ceil(abs(turn) / max_turn - 1e-9))
    return [Stance(start.x, start.y, start.yaw + turn * i / n, start.width) for i in range(1, n + 1)]


def _hermite(p0, p1, m0, m1, s):
    s = s[:, None]
    h00, h10 = 2 * s ** 3 - 3 * s ** 2 + 1, s ** 3 - 2 * s ** 2 + s
    h01, h11 = -2 * s ** 3 + 3 * s ** 2, s ** 3 - s ** 2
    pos = h00 * p0 + h10 * m0 + h01 * p1 + h11 * m1
    d00, d10 = 6 * s ** 2 - 6 * s, 3 * s ** 2 - 4 * s + 1
    d01, d11 = -6 * s ** 2 + 6 * s, 3 * s ** 2 - 2 * s
    vel = d00 * p0 + d10 * m0 + d01 * p1 + d11 * m1
    return pos, vel


def curve_stances(start: Stance, goal: Stance, spacing: float, bend: float = 0.6,
                  max_turn: float = CURVE_TURN) -> list[Stance]:
    """Stances along a Hermite curve from `start` to `goal` (tangents along their headings, `bend` x the distance
    long), at most `spacing` apart and `max_turn` of heading apart; the last one is `goal`."""
    p0, p1 = np.array([start.x, start.y]), np.array([goal.x, goal.y])
    length = float(np.linalg.norm(p1 - p0))
    if length < 1e-6:
        return []
    m0 = bend * length * np.array([np.cos(start.yaw), np.sin(start.yaw)])
    m1 = bend * length * np.array([np.cos(goal.yaw), np.sin(goal.yaw)])
    s = np.linspace(0.0, 1.0, DENSE)
    pos, vel = _hermite(p0, p1, m0, m1, s)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pos, axis=0), axis=1))])
    heading = np.unwrap(np.arctan2(vel[:, 1], vel[:, 0]))
    heading += start.yaw + float(wrap(heading[0] - start.yaw)) - heading[0]  # continuous from the start's
    # stances at equal steps of effort (the length of the step in arc length / `spacing` and heading change /
    # `max_turn`), so that no step is longer than `spacing` or turns by more than `max_turn`, and tight bends get
    # more, shorter steps
    rate = np.hypot(np.diff(arc) / spacing, np.diff(heading) / max_turn)
    effort = np.concatenate([[0.0], np.cumsum(rate)])
    n = max(1, int(np.ceil(effort[-1] - 1e-9)))
    at = np.interp(np.arange(1, n + 1) / n * effort[-1], effort, s)
    yaw = np.interp(at, s, heading)
    xy = _hermite(p0, p1, m0, m1, at)[0]
    xy[-1] = p1
    width = start.width + (goal.width - start.width) * np.arange(1, n + 1) / n
    return [Stance(float(x), float(y), float(h), float(w)) for (x, y), h, w in zip(xy, yaw, width)]


def route(start: Stance, goal: Stance, spacing: float, first_turn: float | None = None, bend: float = 0.6,
          max_turn_in_place: float = TURN_IN_PLACE) -> list[Stance]:
    """Turn on the spot to heading `first_turn` (none: keep the start's), then walk the curve to `goal`."""
    turn = [] if first_turn is None else turn_stances(start, first_turn, max_turn_in_place)
    after = turn[-1] if turn else start
    return turn + curve_stances(after, goal, spacing, bend)


def steps_seconds(stances: list[Stance], shift: float, swing: float, settle: float) -> float:
    """How long walking through `stances` takes (one step per stance and a last one alongside)."""
    return (len(stances) + 1) * (shift + swing) + settle if stances else 0.0


def path_length(start: Stance, stances: list[Stance]) -> float:
    xy = np.array([[start.x, start.y]] + [[st.x, st.y] for st in stances])
    return float(np.linalg.norm(np.diff(xy, axis=0), axis=1).sum())


def clearance(stances: list[Stance], centre, foot_reach: float = 0.22) -> float:
    """Smallest distance from a point (the object's axis) to the feet along the route: stance centres less how
    far a foot (toe) reaches from its centre."""
    xy = np.array([[st.x, st.y] for st in stances])
    return float(np.linalg.norm(xy - np.asarray(centre)[None], axis=1).min() - foot_reach) if len(xy) else np.inf
