"""Keyframed channels: values that hold until a transition moves them, with minimum-jerk transitions.

Minimum-jerk interpolation (10s³ - 15s⁴ + 6s⁵) starts and ends with zero velocity and acceleration, so every
keyframed quantity (crouch depth, finger grip, hand offsets, object lift) changes gently.
"""

from __future__ import annotations

import numpy as np


def minjerk(s):
    s = np.clip(s, 0.0, 1.0)
    return s * s * s * (10.0 - 15.0 * s + 6.0 * s * s)


class Channel:
    """A value over time: `initial`, then transitions `move(t0, t1, target)` applied in time order (each starts
    from the value the previous ones reached). Scalars or vectors."""

    def __init__(self, initial):
        self.initial = np.asarray(initial, dtype=np.float64)
        self.moves: list[tuple[float, float, np.ndarray]] = []

    def move(self, t0: float, t1: float, target) -> "Channel":
        self.moves.append((float(t0), float(max(t1, t0)), np.asarray(target, dtype=np.float64)))
        return self

    def value_at_end(self) -> np.ndarray:
        return self.moves[-1][2] if self.moves else self.initial

    def sample(self, times: np.ndarray) -> np.ndarray:
        out = np.broadcast_to(self.initial, times.shape + self.initial.shape).copy()
        current = self.initial
        for t0, t1, target in sorted(self.moves, key=lambda m: m[0]):
            during = (times >= t0) & (times < t1)
            if t1 > t0 and during.any():
                s = minjerk((times[during] - t0) / (t1 - t0))
                s = s.reshape(s.shape + (1,) * current.ndim)
                out[during] = current + s * (target - current)
            out[times >= t1] = target
            current = target
        return out
