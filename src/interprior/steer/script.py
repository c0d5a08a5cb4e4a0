"""Goal scripts: JSON lines that steer a `Steering` at given simulated times, reproducibly.

    {"t": 0.0, "object": [1.0, 0.0, 0.5], "object_yaw": 0.3, "seconds": 2.0}
    {"t": 1.0, "left_hand": [0.4, 0.2, 1.0], "right_hand": [0.4, -0.2, 1.0], "contacts": {"L_Wrist": true}}
    {"t": 4.0, "clear": true}
    {"t": 5.0, "reset": true}                 (or "reset": "box": restart at a clip of that object)
    {"t": 5.5, "subtask": "get_up"}           (the prior's get-up token from now on; null: off)
    {"end": 8.0}

A line is applied when the simulated time reaches its `t` (seconds since the script began; resets do not restart
it); lines are applied in time order, lines of equal `t` in file order. A goal line replaces the goal (parts it does
not give are no longer asked for); `seconds` is the time to reach it (2 s by default). `end` ends the script;
without it (or `seconds` given to `play`) the script runs to its last line's time plus that line's `seconds` (2 s
for clear, reset and subtask). Blank lines and lines starting with `#` are ignored. Every malformed line (not JSON, not an
object, an unknown key, a wrong type, NaN, a value out of range, an unknown body or object) is reported with its
line number and skipped; the simulation keeps running.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from interprior.errors import DataFileError, InterpriorError
from interprior.models.prior import SUBTASKS
from interprior.steer.goals import GoalNames, SteerGoal, make_goal
from interprior.steer.steering import Steering, SteerState

MAX_SCRIPT_SECONDS = 3600.0
GOAL_KEYS = {"object": "object_position", "object_yaw": "object_yaw", "left_hand": "left_hand",
             "right_hand": "right_hand", "contacts": "contacts", "pelvis_heading": "pelvis_heading",
             "seconds": "seconds"}
KEYS = ("t", *GOAL_KEYS, "clear", "reset", "subtask", "end")
DEFAULT_HOLD = 2.0  # s a script without `end` runs after its last clear / reset line


@dataclass(frozen=True)
class ScriptLine:
    line: int  # 1-based line number in the file
    t: float
    kind: str  # "goal", "clear", "reset" or "subtask"
    goal: SteerGoal | None = None
    object_name: str | None = None  # reset: the object to restart at (None: the active one)
    subtask: str | None = None  # subtask: the prior's subtask token from now on ("get_up"), None: off


@dataclass
class GoalScript:
    source: str
    lines: list[ScriptLine] = field(default_factory=list)  # in time order
    end: float | None = None
    errors: list[str] = field(default_factory=list)  # "<source>:<line>: <problem>; line skipped"

    def duration(self) -> float:
        """The script's length: `end`, else its last line's time plus that goal's seconds (2 s otherwise)."""
        if self.end is not None:
            return self.end
        if not self.lines:
            return DEFAULT_HOLD
        last = self.lines[-1]
        return last.t + (last.goal.seconds if last.goal is not None else DEFAULT_HOLD)


def read_script(path: str | Path, names: GoalNames) -> GoalScript:
    path = Path(path)
    if path.is_dir():
        raise DataFileError(path, "is a folder; give a JSON-lines goal script")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataFileError(path, f"cannot read the goal script: {err.strerror or err}") from None
    return parse_script(data, names, source=str(path))


def parse_script(text: str | bytes, names: GoalNames, source: str = "script") -> GoalScript:
    """Every line parsed; malformed ones listed in `errors` and left out."""
    script = GoalScript(source)
    raw_lines = text.splitlines() if isinstance(text, bytes) else text.encode().splitlines()
    for number, raw in enumerate(raw_lines, start=1):
        try:
            line = raw.decode("utf-8").strip()
            if not line or line.startswith("#"):
                continue
            parsed = parse_line(line, number, names)
            if isinstance(parsed, ScriptLine):
                script.lines.append(parsed)
            elif script.end is not None:
                raise InterpriorError(f"end given twice (first: {script.end:g} s)")
            else:
                script.end = parsed
        except UnicodeDecodeError:
            script.errors.append(f"{source}:{number}: not UTF-8 text; line skipped")
        except InterpriorError as err:
            script.errors.append(f"{source}:{number}: {err}; line skipped")
    script.lines.sort(key=lambda s: (s.t, s.line))
    return script


def parse_line(line: str, number: int, names: GoalNames) -> ScriptLine | float:
    """One line -> a `ScriptLine`, or the end time (an `end` line); `InterpriorError` naming the problem."""
    values = decode_object(line, KEYS, "a line")
    if "end" in values:
        if len(values) > 1:
            raise InterpriorError("an end line holds only \"end\": seconds")
        return _time(values["end"], "end", positive=True)
    if "t" not in values:
        raise InterpriorError("missing \"t\" (seconds at which the line applies)")
    t = _time(values["t"], "t")
    kinds = [k for k in ("clear", "reset", "subtask") if k in values] + (["goal"] if set(values) & set(GOAL_KEYS)
                                                                          else [])
    if len(kinds) != 1:
        raise InterpriorError("a line is one of: a goal (object, object_yaw, left_hand, right_hand, contacts, "
                              "pelvis_heading, seconds), \"clear\": true, \"reset\": true, or \"subtask\": "
                              f"\"get_up\" or null; got {' + '.join(kinds) or 'only t'}")
    kind = kinds[0]
    if kind == "clear":
        if values["clear"] is not True:
            raise InterpriorError(f"clear must be true, got {json.dumps(values['clear'])}")
        return ScriptLine(number, t, "clear")
    if kind == "reset":
        return ScriptLine(number, t, "reset", object_name=reset_object(values["reset"], names))
    if kind == "subtask":
        return ScriptLine(number, t, "subtask", subtask=subtask_name(values["subtask"]))
    return ScriptLine(number, t, "goal", goal=goal_from(values, names))


def decode_object(line: str, keys: tuple[str, ...], what: str) -> dict:
    """A JSON object with only `keys`; `InterpriorError` otherwise (`what`: "a line", "a message")."""
    try:
        values = json.loads(line)
    except json.JSONDecodeError as err:
        raise InterpriorError(f"not JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(values, dict):
        raise InterpriorError(f"{what} must be a JSON object {{...}}, got {type(values).__name__}")
    unknown = [k for k in values if k not in keys]
    if unknown:
        raise InterpriorError(f"unknown key {unknown[0]!r}; keys: {', '.join(keys)}")
    return values


def goal_from(values: dict, names: GoalNames) -> SteerGoal:
    """The goal of a line's or message's goal keys (`GOAL_KEYS`), validated by `make_goal`."""
    if not set(values) & (set(GOAL_KEYS) - {"seconds"}):
        raise InterpriorError("seconds alone is no goal; give object, object_yaw, left_hand, right_hand, contacts "
                              "or pelvis_heading")
    return make_goal(names, **{GOAL_KEYS[k]: v for k, v in values.items() if k in GOAL_KEYS})


def _time(value, what: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InterpriorError(f"{what} must be a number of seconds, got {json.dumps(value)}")
    value = float(value)
    low_ok = value > 0 if positive else value >= 0
    if not (math.isfinite(value) and low_ok and value <= MAX_SCRIPT_SECONDS):
        bound = "(0" if positive else "[0"
        raise InterpriorError(f"{what} must be within {bound}, {MAX_SCRIPT_SECONDS:g}] seconds, got {value:g}")
    return value


def subtask_name(value) -> str | None:
    """A subtask line's or message's token: a name of the prior's subtasks ("get_up"), or null (off)."""
    if value is None or value in SUBTASKS[1:]:
        return value
    raise InterpriorError(f"subtask must be one of {', '.join(json.dumps(s) for s in SUBTASKS[1:])} or null, got "
                          f"{json.dumps(value)}")


def reset_object(value, names: GoalNames) -> str | None:
    """A reset's object: None (`true`: the active one) or a name of the scene's objects."""
    if value is True:
        return None
    if isinstance(value, str):
        if value not in names.objects:
            raise InterpriorError(f"reset: unknown object {value!r}; this scene has {', '.join(names.objects)}")
        return value
    raise InterpriorError(f"reset must be true or an object name, got {json.dumps(value)}")


# --- playing -------------------------------------------------------------------------------------------------------
@dataclass
class ScriptResult:
    seconds: float  # simulated
    steps: int
    applied: int  # lines applied
    skipped: int  # malformed lines (and lines that failed when applied)
    not_reached: int  # lines timed after the end
    falls: int
    divergences: int
    last_object_goal: tuple[float, float, float] | None
    object_error: float | None  # m, final object position to the last object goal
    final: SteerState
    wall_s: float

    def summary(self) -> dict:
        return {"seconds": self.seconds, "steps": self.steps, "lines_applied": self.applied,
                "lines_skipped": self.skipped, "lines_not_reached": self.not_reached, "falls": self.falls,
                "divergences": self.divergences, "fallen_at_end": self.final.fallen,
                "last_object_goal": self.last_object_goal, "final_object": self.final.object,
                "object_error_cm": None if self.object_error is None else 100.0 * self.object_error,
                "wall_s": self.wall_s, "steps_per_s": self.steps / self.wall_s if self.wall_s > 0 else None}


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def play(steering: Steering, script: GoalScript, seconds: float | None = None,
         report: Callable[[str], None] = _stderr) -> ScriptResult:
    """Run `script` on `steering` for `seconds` (default: the script's duration). Its malformed lines are reported
    first (`report`, stderr by default), lines that fail when applied as they come; neither stops the run."""
    duration = script.duration() if seconds is None else seconds
    if not (isinstance(duration, (int, float)) and 0 < duration <= MAX_SCRIPT_SECONDS):
        raise InterpriorError(f"seconds must be within (0, {MAX_SCRIPT_SECONDS:g}], got {duration}")
    for message in script.errors:
        report(message)
    dt = steering.dt
    total = max(1, round(duration / dt))
    falls0, div0, started = steering.falls, steering.divergences, time.perf_counter()
    applied = failed = step = i = 0
    last_object_goal = None
    events = script.lines
    while True:
        while i < len(events) and events[i].t <= step * dt + 1e-9:
            ok = _apply(steering, events[i], script.source, report)
            applied, failed = applied + ok, failed + (not ok)
            if ok and events[i].goal is not None and events[i].goal.object_position is not None:
                last_object_goal = events[i].goal.object_position
            i += 1
        if step >= total:
            break
        next_step = total if i == len(events) else max(step + 1, math.ceil(events[i].t / dt - 1e-9))
        n = min(next_step, total) - step
        steering.step(n)
        step += n
    for late in events[i:]:
        report(f"{script.source}:{late.line}: at t = {late.t:g} s, after the end ({total * dt:g} s); not applied")
    final = steering.state()
    error = None
    if last_object_goal is not None:
        error = math.dist(final.object, last_object_goal)
    return ScriptResult(seconds=total * dt, steps=total, applied=applied, skipped=len(script.errors) + failed,
                        not_reached=len(events) - i, falls=steering.falls - falls0,
                        divergences=steering.divergences - div0, last_object_goal=last_object_goal,
                        object_error=error, final=final, wall_s=time.perf_counter() - started)


def _apply(steering: Steering, line: ScriptLine, source: str, report) -> bool:
    try:
        if line.kind == "goal":
            steering.apply_goal(line.goal)
        elif line.kind == "clear":
            steering.clear_goal()
        elif line.kind == "subtask":
            steering.set_subtask(line.subtask)
        else:
            steering.reset(line.object_name)
    except InterpriorError as err:
        report(f"{source}:{line.line}: {err}; line skipped")
        return False
    return True
