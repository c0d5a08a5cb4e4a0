"""What the browser page asks for: target poses (the object's position and yaw, both wrists, the pelvis heading),
which of them are given, the contact choice and the time to reach them; the key moves that change them; the
page's readout text. Plain values, no viser: the page (`interprior.steer.page`) draws and edits them."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from interprior.steer.goals import SteerGoal
from interprior.steer.live import Event, Frame

CONTACT_MODES = ("not given", "hands touch", "hands off")
KEY_TARGETS = ("object", "left hand", "right hand")  # what W/A/S/D/Space move
MOVE_STEP = 0.1  # m per W/A/S/D press
TURN_STEP = math.radians(15.0)  # per Q/E press
LIFT = 0.4  # m Space raises (and then lowers) the active target


@dataclass
class Targets:
    object: tuple[float, float, float]
    object_yaw: float
    left: tuple[float, float, float]
    right: tuple[float, float, float]
    heading: float
    give_object: bool = True
    give_yaw: bool = False
    give_hands: bool = False
    contacts: str = "not given"
    give_heading: bool = False
    seconds: float = 2.0
    keys: str = "object"  # the active target of the keys
    lifted: tuple[bool, bool, bool] = (False, False, False)  # per KEY_TARGETS: raised by Space

    @classmethod
    def at(cls, state, previous: "Targets | None" = None) -> "Targets":
        """Targets where things are now (what is given, the time and the keys' target kept from `previous`)."""
        here = dict(object=state.object, object_yaw=state.object_yaw, left=state.left_hand, right=state.right_hand,
                    heading=state.pelvis_heading, lifted=(False, False, False))
        return replace(previous, **here) if previous is not None else cls(**here)

    def copy(self) -> "Targets":
        return replace(self)

    def goal_kwargs(self, hand_names: tuple[str, str]) -> dict:
        """`make_goal` keyword arguments of the given parts ({} when nothing is given)."""
        kwargs: dict = {}
        if self.give_object:
            kwargs["object_position"] = list(self.object)
        if self.give_yaw:
            kwargs["object_yaw"] = self.object_yaw
        if self.give_hands:
            kwargs["left_hand"], kwargs["right_hand"] = list(self.left), list(self.right)
        if self.contacts != "not given":
            kwargs["contacts"] = {hand: self.contacts == "hands touch" for hand in hand_names}
        if self.give_heading:
            kwargs["pelvis_heading"] = self.heading
        if kwargs:
            kwargs["seconds"] = self.seconds
        return kwargs

    def adopt(self, goal: SteerGoal, hand_names: tuple[str, str]) -> None:
        """Take over a goal set elsewhere (the goal stream, a page message): its parts become the given ones."""
        self.give_object, self.give_yaw = goal.object_position is not None, goal.object_yaw is not None
        self.give_hands = goal.left_hand is not None or goal.right_hand is not None
        self.give_heading = goal.pelvis_heading is not None
        self.object = goal.object_position or self.object
        self.object_yaw = self.object_yaw if goal.object_yaw is None else goal.object_yaw
        self.left, self.right = goal.left_hand or self.left, goal.right_hand or self.right
        self.heading = self.heading if goal.pelvis_heading is None else goal.pelvis_heading
        touching = {goal.contacts.get(h) for h in hand_names} - {None}
        self.contacts = "not given" if len(touching) != 1 else ("hands touch" if touching.pop() else "hands off")
        self.seconds = goal.seconds

    # --- keys -------------------------------------------------------------------------------------------------
    def move(self, key: str, forward: tuple[float, float]) -> None:
        """W/A/S/D: the keys' target one step forward / left / back / right, `forward` the view's horizontal
        direction (unit); Q/E: the object target's yaw a step left / right; space: raise the keys' target, or
        lower it again. Turns on the moved part."""
        if key in ("Q", "E"):
            self.object_yaw = _wrap(self.object_yaw + (TURN_STEP if key == "Q" else -TURN_STEP))
            self.give_yaw = True
            return
        which = KEY_TARGETS.index(self.keys)
        point = np.array((self.object, self.left, self.right)[which], dtype=np.float64)
        fx, fy = forward
        if key == "space":
            lifted = list(self.lifted)
            point[2] += -LIFT if lifted[which] else LIFT
            lifted[which] = not lifted[which]
            self.lifted = tuple(lifted)
        else:
            dx, dy = {"W": (fx, fy), "S": (-fx, -fy), "A": (-fy, fx), "D": (fy, -fx)}[key]
            point[:2] += MOVE_STEP * np.array([dx, dy])
        moved = tuple(float(v) for v in point)
        if which == 0:
            self.object, self.give_object = moved, True
        elif which == 1:
            self.left, self.give_hands = moved, True
        else:
            self.right, self.give_hands = moved, True


def _wrap(angle: float) -> float:
    return math.atan2(math.sin(angle), math.cos(angle))


def yaw_of(wxyz) -> float:
    """Yaw (rad) of a wxyz rotation's x axis about the world z axis."""
    w, x, y, z = (float(v) for v in wxyz)
    return math.atan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (y * y + z * z))


def yaw_quat(yaw: float) -> tuple[float, float, float, float]:
    return (math.cos(yaw / 2.0), 0.0, 0.0, math.sin(yaw / 2.0))


def forward_of(position, look_at) -> tuple[float, float]:
    """The horizontal unit direction from a camera at `position` to `look_at` (+x when looking straight down)."""
    d = np.asarray(look_at, dtype=np.float64)[:2] - np.asarray(position, dtype=np.float64)[:2]
    n = float(np.linalg.norm(d))
    return (1.0, 0.0) if n < 1e-6 or not math.isfinite(n) else (float(d[0] / n), float(d[1] / n))


# --- readout ----------------------------------------------------------------------------------------------------
def _cm(metres: float | None) -> str:
    return "–" if metres is None else f"{100.0 * metres:.0f} cm"


def _point(p) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in p) + "]"


def goal_text(goal: SteerGoal | None, seconds_left: float) -> str:
    if goal is None:
        return "none (drag a gizmo, press W/A/S/D or send a message)"
    parts = []
    if goal.object_position is not None:
        parts.append(f"object {_point(goal.object_position)}")
    if goal.object_yaw is not None:
        parts.append(f"yaw {math.degrees(goal.object_yaw):.0f}°")
    if goal.left_hand is not None or goal.right_hand is not None:
        parts.append("hands")
    if goal.contacts:
        parts.append("contacts " + ", ".join(f"{k} {'on' if v else 'off'}" for k, v in goal.contacts.items()))
    if goal.pelvis_heading is not None:
        parts.append(f"heading {math.degrees(goal.pelvis_heading):.0f}°")
    return f"{'; '.join(parts)} — {seconds_left:.1f} s left"


def readout(frame: Frame, page_fps: float, falls: int, restarts: int) -> str:
    """The page's live readout (markdown)."""
    s = frame.state
    status = "PAUSED · " if frame.paused else ""
    status += "● recording · " if frame.recording else ""
    fallen = "**FALLEN** (press R)" if s.fallen else "no"
    return "\n\n".join([
        f"{status}**{s.time:.1f} s** · {frame.steps_per_s:.0f} steps/s (a step takes {frame.step_ms:.1f} ms) · "
        f"page {page_fps:.0f} frames/s",
        f"**goal** {goal_text(s.goal, s.goal_seconds_left)}",
        f"**goal error** {_cm(s.goal_error)} (object {_cm(s.object_error)})",
        f"**contacts** {', '.join(s.contacts) or 'none'}",
        f"**fallen** {fallen} · falls {falls} · restarts {restarts}",
    ])


def events_text(events: list[Event]) -> str:
    marks = {"error": "✖", "warning": "⚠", "info": "·"}
    return "\n\n".join(f"{marks.get(e.level, '·')} {e.text}" for e in events[-5:]) or "no messages"
