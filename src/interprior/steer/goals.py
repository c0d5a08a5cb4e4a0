"""A steering goal in the world frame, validated: what a caller (the Python API, a goal script line, later the
browser page) may ask of the prior, and the one-line `InterpriorError` for everything it may not.

Limits: positions are finite, within `POSITION_LIMIT` m of the world origin horizontally and at heights within
`HEIGHT_RANGE`; the object's yaw and the pelvis heading are finite, within ±2π (a heading only where the prior's
goal layout constrains the pelvis); `seconds` (time to reach the goal) is within (0, `MAX_SECONDS`];
contacts name contact bodies and say true (touch the object) or false (keep off it); a goal gives at least one part.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import torch

from interprior.errors import InterpriorError

POSITION_LIMIT = 20.0  # m, |x| and |y| of a target
HEIGHT_RANGE = (-0.1, 3.0)  # m, z of a target
MAX_SECONDS = 30.0  # s, the longest time to reach a goal
YAW_LIMIT = 2.0 * math.pi  # rad
HANDS = ("left_hand", "right_hand")  # goal parts that name the layout's hands (left, right)


@dataclass(frozen=True)
class GoalNames:
    """What goals may name: the contact bodies of the prior's goal layout and the scene's objects."""

    contacts: tuple[str, ...]
    objects: tuple[str, ...] = ()
    heading: bool = False  # the layout constrains the pelvis rotation: goals may give a pelvis heading


@dataclass(frozen=True)
class SteerGoal:
    """A validated world-frame goal, reached `seconds` after it is set. Absent parts are None / empty."""

    seconds: float = 2.0
    object_position: tuple[float, float, float] | None = None
    object_yaw: float | None = None  # rad about the world z axis
    left_hand: tuple[float, float, float] | None = None
    right_hand: tuple[float, float, float] | None = None
    contacts: dict[str, bool] = field(default_factory=dict)
    pelvis_heading: float | None = None  # rad about the world z axis: the direction the pelvis faces (its x axis)

    def to_dict(self) -> dict:
        return {"seconds": self.seconds, "object": self.object_position, "object_yaw": self.object_yaw,
                "left_hand": self.left_hand, "right_hand": self.right_hand, "contacts": dict(self.contacts),
                "pelvis_heading": self.pelvis_heading}


def make_goal(names: GoalNames, object_position=None, object_yaw=None, left_hand=None, right_hand=None,
              contacts=None, seconds=2.0, pelvis_heading=None) -> SteerGoal:
    """A `SteerGoal` from loosely typed values (lists, tuples, arrays, tensors, JSON numbers); `InterpriorError`
    naming the part and the problem otherwise."""
    seconds = _number(seconds, "seconds")
    if not 0.0 < seconds <= MAX_SECONDS:
        raise InterpriorError(f"goal: seconds must be within (0, {MAX_SECONDS:g}], got {seconds:g}")
    goal = SteerGoal(
        seconds=seconds,
        object_position=None if object_position is None else position(object_position, "object"),
        object_yaw=None if object_yaw is None else _yaw(object_yaw, "object_yaw"),
        left_hand=None if left_hand is None else position(left_hand, "left_hand"),
        right_hand=None if right_hand is None else position(right_hand, "right_hand"),
        contacts={} if contacts is None else _contacts(contacts, names.contacts),
        pelvis_heading=None if pelvis_heading is None else _yaw(pelvis_heading, "pelvis_heading"),
    )
    if goal.pelvis_heading is not None and not names.heading:
        raise InterpriorError("goal: this prior's goal layout does not constrain the pelvis; pelvis_heading is not "
                              "available")
    if (goal.object_position is None and goal.object_yaw is None and goal.left_hand is None
            and goal.right_hand is None and not goal.contacts and goal.pelvis_heading is None):
        raise InterpriorError("goal: give at least one of object, object_yaw, left_hand, right_hand, contacts, "
                              "pelvis_heading (clear_goal() drops the goal)")
    return goal


def position(value, what: str) -> tuple[float, float, float]:
    """Three finite numbers within the position limits."""
    values = _numbers(value, what)
    if len(values) != 3:
        raise InterpriorError(f"goal: {what} must be 3 numbers [x, y, z] in metres, got {len(values)}")
    x, y, z = values
    if max(abs(x), abs(y)) > POSITION_LIMIT:
        raise InterpriorError(f"goal: {what} must lie within {POSITION_LIMIT:g} m of the origin (|x|, |y|), got "
                              f"[{x:g}, {y:g}, {z:g}]")
    if not HEIGHT_RANGE[0] <= z <= HEIGHT_RANGE[1]:
        raise InterpriorError(f"goal: {what} height must be within [{HEIGHT_RANGE[0]:g}, {HEIGHT_RANGE[1]:g}] m, "
                              f"got {z:g}")
    return (x, y, z)


def _yaw(value, what: str) -> float:
    yaw = _number(value, what)
    if abs(yaw) > YAW_LIMIT:
        raise InterpriorError(f"goal: {what} must be within ±2π rad, got {yaw:g}")
    return yaw


def _contacts(value, known: tuple[str, ...]) -> dict[str, bool]:
    if not isinstance(value, dict):
        raise InterpriorError(f"goal: contacts must map body names to true/false, got {type(value).__name__}")
    out = {}
    for name, touching in value.items():
        if name not in known:
            raise InterpriorError(f"goal: contacts: {name!r} is not a contact body; choose from {', '.join(known)}")
        if not isinstance(touching, (bool, np.bool_)):
            raise InterpriorError(f"goal: contacts[{name!r}] must be true or false, got {touching!r}")
        out[name] = bool(touching)
    return out


def _number(value, what: str) -> float:
    """One finite real number (a bool is not a number here)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InterpriorError(f"goal: {what} must be a number, got {_shown(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise InterpriorError(f"goal: {what} must be finite, got {value}")
    return value


def _numbers(value, what: str) -> list[float]:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        value = value.tolist()
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise InterpriorError(f"goal: {what} must be a list of numbers, got {_shown(value)}")
    return [_number(v, what) for v in value]


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
