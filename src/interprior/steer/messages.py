"""Live goal messages: one JSON object per message, from the goal stream (a socket, JSON lines) or typed into the
page. The goal keys are those of a goal script line, without `t` (a message applies when it arrives):

    {"object": [1.0, 0.0, 0.6], "object_yaw": 0.5, "seconds": 2.0}     a goal (replaces the goal)
    {"left_hand": [0.5, 0.2, 1.0], "contacts": {"L_Wrist": true}}      a goal (2 s to reach it by default)
    {"clear": true}      drop the goal            {"reset": true}  or  {"reset": "box"}   restart (at that object)
    {"pause": true}      pause / go on (false)    {"state": true}  the state now, in the reply
    {"subtask": "get_up"}  the prior's get-up token from now on (null: off)

Every message gets one reply: {"ok": true, "kind": ..., "time": s, "steps": n, ...} (a goal: its validated
"goal"; state: "state"; pause: "paused"), or {"ok": false, "error": "<problem>"} — the same one-line errors as
`make_goal` and the goal scripts. A malformed message changes nothing and the loop keeps stepping.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from interprior.errors import InterpriorError
from interprior.steer.goals import GoalNames, SteerGoal
from interprior.steer.live import LiveLoop
from interprior.steer.script import GOAL_KEYS, decode_object, goal_from, reset_object, subtask_name

COMMANDS = ("clear", "reset", "pause", "state", "subtask")
KEYS = (*GOAL_KEYS, *COMMANDS)
MAX_MESSAGE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Message:
    kind: str  # "goal", "clear", "reset", "pause", "state" or "subtask"
    goal: SteerGoal | None = None
    subtask: str | None = None  # subtask: the token from now on (None: off)
    object_name: str | None = None  # reset: the object to restart at (None: the active one)
    paused: bool | None = None  # pause: True / False


def parse_message(raw: str | bytes, names: GoalNames) -> Message:
    """One message -> a `Message`; `InterpriorError` naming the problem."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InterpriorError(f"message longer than {MAX_MESSAGE_BYTES // 1024} KiB")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InterpriorError("not UTF-8 text") from None
    line = raw.strip()
    if not line:
        raise InterpriorError("empty message; send one JSON object per line")
    values = decode_object(line, KEYS, "a message")
    kinds = [k for k in COMMANDS if k in values] + (["goal"] if set(values) & set(GOAL_KEYS) else [])
    if len(kinds) != 1:
        raise InterpriorError("a message is one of: a goal (object, object_yaw, left_hand, right_hand, contacts, "
                              "pelvis_heading, seconds), \"clear\": true, \"reset\": true or an object, \"pause\": "
                              "true or false, \"state\": true, \"subtask\": \"get_up\" or null; got "
                              f"{' + '.join(kinds) or 'an empty object'}")
    kind = kinds[0]
    if kind == "goal":
        return Message("goal", goal=goal_from(values, names))
    value = values[kind]
    if kind == "reset":
        return Message("reset", object_name=reset_object(value, names))
    if kind == "subtask":
        return Message("subtask", subtask=subtask_name(value))
    if kind == "pause":
        if not isinstance(value, bool):
            raise InterpriorError(f"pause must be true or false, got {json.dumps(value)}")
        return Message("pause", paused=value)
    if value is not True:
        raise InterpriorError(f"{kind} must be true, got {json.dumps(value)}")
    return Message(kind)


def handle_message(loop: LiveLoop, raw: str | bytes, source: str = "stream") -> dict:
    """Parse and carry out one message on `loop`. -> the reply. A rejected message is reported as an event
    (`source: problem`, on stderr and the page) and changes nothing."""
    try:
        message = parse_message(raw, loop.steering.names)
        reply = execute(loop, message)
    except InterpriorError as err:
        loop.event("error", f"{source}: {err}; message ignored")
        return {"ok": False, "error": str(err)}
    return reply


def execute(loop: LiveLoop, message: Message) -> dict:
    reply: dict = {"ok": True, "kind": message.kind}
    if message.kind == "goal":
        state = loop.apply(message.goal)
        reply["goal"] = message.goal.to_dict()
    elif message.kind == "clear":
        state = loop.clear()
    elif message.kind == "reset":
        state = loop.reset(message.object_name)
    elif message.kind == "pause":
        reply["paused"] = loop.pause(message.paused)
        state = loop.state()
    elif message.kind == "subtask":
        state = loop.set_subtask(message.subtask)
        reply["subtask"] = message.subtask
    else:
        state = loop.state()
        reply["state"] = state.to_dict()
    reply.update(time=state.time, steps=state.steps)
    return reply
