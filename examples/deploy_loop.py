#!/usr/bin/env python3
"""Run an exported interprior prior (`interprior deploy export`) in plain MuJoCo: needs only mujoco, onnxruntime
and numpy, no interprior and no torch. Everything it knows comes from the export folder: policy.json (the
contract), policy.onnx (state + goal -> PD targets) and scene.xml (the scene, with a `start` keyframe).

    python examples/deploy_loop.py DIR --script goals.jsonl [--seconds S] [--integrator rk4] [--timestep 0.005]
                                       [--friction-scale 0.8] [--seed 0] [--assert-standalone]

Goal scripts are `interprior steer --script` files (JSON lines):

    {"t": 0.0, "object": [1.0, 0.0, 0.5], "object_yaw": 0.3, "seconds": 2.0}
    {"t": 1.0, "left_hand": [0.4, 0.2, 1.0], "right_hand": [0.4, -0.2, 1.0], "contacts": {"L_Wrist": true}}
    {"t": 4.0, "clear": true}
    {"t": 4.5, "subtask": "get_up"}
    {"end": 6.0}

`pelvis_heading` works where the prior's goals constrain the pelvis; `reset` is not available here (a robot is not
put back by a script). Malformed lines are reported with their line number and skipped; the loop goes on.

Each control step (policy.json control.rate_hz) the loop reads qpos/qvel at the contract's addresses, the contact
flags by the contract's rule, feeds the graph, writes its PD targets to the position actuators (data.ctrl) and runs
the physics steps of one control period. --timestep picks the physics step: it is rounded down so that a whole
number of steps fills a control period. A diverged simulation restarts at the start keyframe (goal cleared).
Prints a JSON summary on stdout.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import mujoco
import numpy as np
import onnxruntime as ort

FORBIDDEN = ("interprior", "torch")  # this loop must run without them
KEYS = ("t", "object", "object_yaw", "left_hand", "right_hand", "contacts", "pelvis_heading", "seconds", "clear",
        "subtask", "end")
GOAL_KEYS = ("object", "object_yaw", "left_hand", "right_hand", "contacts", "pelvis_heading")
INTEGRATORS = {"implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST, "implicit": mujoco.mjtIntegrator.mjINT_IMPLICIT,
               "euler": mujoco.mjtIntegrator.mjINT_EULER, "rk4": mujoco.mjtIntegrator.mjINT_RK4}
DEFAULT_HOLD = 2.0  # s a script without `end` runs after its last clear / subtask line


class LineError(ValueError):
    pass


# --- goal scripts ---------------------------------------------------------------------------------------------------
def _number(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LineError(f"{what} must be a finite number, got {json.dumps(value)}")
    return float(value)


def _position(value, what, limits):
    if not isinstance(value, list) or len(value) != 3:
        raise LineError(f"{what} must be 3 numbers [x, y, z] in metres, got {json.dumps(value)}")
    x, y, z = (_number(v, what) for v in value)
    low, high = limits["height"]
    if max(abs(x), abs(y)) > limits["position_xy"] or not low <= z <= high:
        raise LineError(f"{what} [{x:g}, {y:g}, {z:g}] is outside |x|, |y| <= {limits['position_xy']:g} m, "
                        f"z in [{low:g}, {high:g}] m")
    return [x, y, z]


def _yaw(value, what):
    yaw = _number(value, what)
    if abs(yaw) > 2.0 * math.pi:
        raise LineError(f"{what} must be within ±2π rad, got {yaw:g}")
    return yaw


def parse_goal(values, goal):
    """The goal parts of a line, validated against the contract's `goal` section."""
    if not set(values) & set(GOAL_KEYS):
        raise LineError("seconds alone is no goal; give " + ", ".join(GOAL_KEYS))
    seconds = _number(values.get("seconds", 2.0), "seconds")
    if not 0.0 < seconds <= goal["limits"]["max_seconds"]:
        raise LineError(f"seconds must be within (0, {goal['limits']['max_seconds']:g}], got {seconds:g}")
    out = {"seconds": seconds}
    for key in ("object", "left_hand", "right_hand"):
        if key in values:
            out[key] = _position(values[key], key, goal["limits"])
    for key in ("object_yaw", "pelvis_heading"):
        if key in values:
            out[key] = _yaw(values[key], key)
    if "pelvis_heading" in out and not goal["heading_body"]:
        raise LineError("this prior's goals do not constrain the pelvis; pelvis_heading is not available")
    contacts = values.get("contacts", {})
    if not isinstance(contacts, dict):
        raise LineError(f"contacts must map body names to true/false, got {json.dumps(contacts)}")
    for name, touching in contacts.items():
        if name not in goal["contact_bodies"]:
            known = ", ".join(goal["contact_bodies"])
            raise LineError(f"contacts: {name!r} is not a contact body; choose from {known}")
        if not isinstance(touching, bool):
            raise LineError(f"contacts[{name!r}] must be true or false, got {json.dumps(touching)}")
    out["contacts"] = dict(contacts)
    return out


def parse_line(text, goal):
    """-> ("end", seconds) or (t, kind, payload) with kind goal / clear / subtask."""
    try:
        values = json.loads(text)
    except json.JSONDecodeError as err:
        raise LineError(f"not JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(values, dict):
        raise LineError(f"a line must be a JSON object {{...}}, got {type(values).__name__}")
    if "reset" in values:
        raise LineError("reset is not available in the deploy loop (nothing puts a robot back)")
    unknown = [k for k in values if k not in KEYS]
    if unknown:
        raise LineError(f"unknown key {unknown[0]!r}; keys: {', '.join(KEYS)}")
    if "end" in values:
        if len(values) > 1:
            raise LineError('an end line holds only "end": seconds')
        end = _number(values["end"], "end")
        if not 0.0 < end <= 3600.0:
            raise LineError(f"end must be within (0, 3600] seconds, got {end:g}")
        return "end", end
    if "t" not in values:
        raise LineError('missing "t" (seconds at which the line applies)')
    t = _number(values["t"], "t")
    if not 0.0 <= t <= 3600.0:
        raise LineError(f"t must be within [0, 3600] seconds, got {t:g}")
    kinds = [k for k in ("clear", "subtask") if k in values] + (["goal"] if set(values) & {*GOAL_KEYS, "seconds"}
                                                                 else [])
    if len(kinds) != 1:
        raise LineError(f"a line is one of: a goal, \"clear\": true, \"subtask\": name or null; got "
                        f"{' + '.join(kinds) or 'only t'}")
    if kinds[0] == "clear":
        if values["clear"] is not True:
            raise LineError(f"clear must be true, got {json.dumps(values['clear'])}")
        return t, "clear", None
    if kinds[0] == "subtask":
        if values["subtask"] is not None and values["subtask"] not in goal["subtasks"][1:]:
            raise LineError(f"subtask must be one of {', '.join(goal['subtasks'][1:])} or null, got "
                            f"{json.dumps(values['subtask'])}")
        return t, "subtask", goal["subtasks"].index(values["subtask"]) if values["subtask"] else 0
    return t, "goal", parse_goal(values, goal)


def read_script(path, goal):
    """-> (events [(t, line, kind, payload)] in time order, end or None, error messages)."""
    events, end, errors = [], None, []
    for number, raw in enumerate(Path(path).read_bytes().splitlines(), start=1):
        try:
            text = raw.decode("utf-8").strip()
            if not text or text.startswith("#"):
                continue
            parsed = parse_line(text, goal)
            if parsed[0] != "end":
                events.append((parsed[0], number, parsed[1], parsed[2]))
            elif end is not None:
                raise LineError(f"end given twice (first: {end:g} s)")
            else:
                end = parsed[1]
        except (LineError, UnicodeDecodeError) as err:
            errors.append(f"{path}:{number}: {err}; line skipped")
    events.sort(key=lambda e: (e[0], e[1]))
    return events, end, errors


def duration(events, end):
    if end is not None:
        return end
    if not events:
        return DEFAULT_HOLD
    t, _, kind, payload = events[-1]
    return t + (payload["seconds"] if kind == "goal" else DEFAULT_HOLD)


# --- quaternions ----------------------------------------------------------------------------------------------------
def yaw_quat(yaw):
    return np.array([math.cos(0.5 * yaw), 0.0, 0.0, math.sin(0.5 * yaw)])


def heading(q):
    w, x, y, z = q
    return math.atan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (y * y + z * z))


def quat_mul(a, b):
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


# --- the loop -------------------------------------------------------------------------------------------------------
class Loop:
    def __init__(self, folder, contract, model, threads=1, eps=None):
        self.c, self.model = contract, model
        self.data = mujoco.MjData(model)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = threads
        self.session = ort.InferenceSession(str(Path(folder) / contract["files"]["onnx"]), opts,
                                            providers=["CPUExecutionProvider"])
        hum, obj, goal = contract["humanoid"], contract["object"], contract["goal"]
        self.q, self.v = np.array(hum["qpos_adr"]), np.array(hum["qvel_adr"])
        self.oq, self.ov = np.array(obj["qpos_adr"]), np.array(obj["qvel_adr"])
        self.ctrl = np.array(contract["joints"]["ctrl_adr"])
        self.body_ids = {mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, n): i
                         for i, n in enumerate(hum["body_names"])}
        self.object_body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, obj["body"])
        self.key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, contract["control"]["start_keyframe"])
        self.dt = contract["control"]["control_dt"]
        self.substeps = max(1, math.ceil(self.dt / model.opt.timestep - 1e-9))
        model.opt.timestep = self.dt / self.substeps  # whole physics steps per control period
        self.eps = np.zeros((1, goal["latent_dim"])) if eps is None else np.asarray(eps, float).reshape(1, -1)
        self.step_count = self.falls = self.divergences = 0
        self.fallen, self.policy_s = False, 0.0
        self.reset()

    def reset(self):
        mujoco.mj_resetDataKeyframe(self.model, self.data, self.key)
        self.contact = np.zeros(len(self.body_ids))  # nothing measured before the first physics step
        self.clear()
        self.subtask = 0

    def clear(self):
        g = self.c["goal"]
        self.goal = {"goal_object_position": np.zeros(3), "goal_object_rotation": np.array([1.0, 0, 0, 0]),
                     "goal_body_positions": np.zeros((len(g["bodies"]), 3)),
                     "goal_body_rotations": np.tile([1.0, 0, 0, 0], (len(g["bodies"]), 1)),
                     "goal_contacts": np.zeros(len(g["contact_bodies"])), "goal_bits": np.zeros(g["num_bits"])}
        self.deadline = None

    def set_goal(self, parts):
        """A goal line: replaces the goal (as `Steering.apply_goal`), due `seconds` from now."""
        g, bits = self.c["goal"], self.c["goal"]["bits"]
        self.clear()
        goal = self.goal
        if "object" in parts:
            goal["goal_object_position"][:] = parts["object"]
            goal["goal_bits"][bits["object_position"]] = 1.0
        if "object_yaw" in parts:
            goal["goal_object_rotation"][:] = yaw_quat(parts["object_yaw"])
            goal["goal_bits"][bits["object_rotation"]] = 1.0
        for key, side in (("left_hand", "left"), ("right_hand", "right")):
            if key in parts:
                name = g["hands"][side]
                goal["goal_body_positions"][g["bodies"].index(name)] = parts[key]
                goal["goal_bits"][bits["body_positions"][name]] = 1.0
        if "pelvis_heading" in parts:
            name, root = g["heading_body"], self.data.qpos[self.q[3:7]]
            turn = yaw_quat(parts["pelvis_heading"] - heading(root))
            goal["goal_body_rotations"][g["bodies"].index(name)] = quat_mul(turn, root)
            goal["goal_bits"][bits["body_rotations"][name]] = 1.0
        for name, touching in parts["contacts"].items():
            goal["goal_contacts"][g["contact_bodies"].index(name)] = 1.0 if touching else -1.0
            goal["goal_bits"][bits["contacts"][name]] = 1.0
        self.deadline = self.step_count + max(1, round(parts["seconds"] / self.dt))

    def contacts(self):
        """The contract's contact rule: net contact force between each body and the object above the threshold."""
        m, d = self.model, self.data
        net, force = np.zeros((len(self.body_ids), 3)), np.zeros(6)
        for i in range(d.ncon):
            b1, b2 = m.geom_bodyid[d.contact.geom1[i]], m.geom_bodyid[d.contact.geom2[i]]
            if self.object_body not in (b1, b2):
                continue
            other, sign = (b1, -1.0) if b2 == self.object_body else (b2, 1.0)  # the force acts on geom2
            if other in self.body_ids:
                mujoco.mj_contactForce(m, d, i, force)
                net[self.body_ids[other]] += sign * (d.contact.frame[i].reshape(3, 3).T @ force[:3])
        return (np.linalg.norm(net, axis=1) > self.c["contact_rule"]["threshold_newton"]).astype(np.float64)

    def inputs(self):
        d = self.data
        left = 0 if self.deadline is None else max(1, self.deadline - self.step_count)
        feed = {"qpos": d.qpos[self.q], "qvel": d.qvel[self.v], "object_qpos": d.qpos[self.oq],
                "object_qvel": d.qvel[self.ov], "object_contact": self.contact, **self.goal,
                "goal_seconds": np.array(left * self.dt), "eps": self.eps[0]}
        feed = {k: np.asarray(v, np.float64)[None] for k, v in feed.items()}
        feed["subtask"] = np.array([self.subtask], dtype=np.int64)
        return feed

    def unstable(self):
        """How often MuJoCo found a bad qpos, qvel or qacc (and reset the simulation) so far."""
        w = self.data.warning
        return sum(w[k].number for k in (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL,
                                         mujoco.mjtWarning.mjWARN_BADQACC))

    def step(self):
        """One control step: the policy, then the physics steps of one control period."""
        started = time.perf_counter()
        targets = self.session.run(["pd_targets"], self.inputs())[0][0]
        self.policy_s += time.perf_counter() - started
        self.data.ctrl[self.ctrl] = targets
        warnings = self.unstable()
        for _ in range(self.substeps):
            mujoco.mj_step(self.model, self.data)
        self.step_count += 1
        if self.unstable() > warnings or not np.isfinite(self.data.qpos).all():  # MuJoCo reset it to qpos0
            self.divergences += 1
            self.reset()
            return
        self.contact = self.contacts()
        fallen = bool(self.data.qpos[self.q[2]] < self.c["humanoid"]["fall_height"])
        self.falls += int(fallen and not self.fallen)
        self.fallen = fallen


def load(folder, args):
    folder = Path(folder)
    for name in ("policy.json", "policy.onnx", "scene.xml"):
        if not (folder / name).is_file():
            raise SystemExit(f"deploy_loop: {folder}: not a deploy folder ({name} missing; make one with "
                             "`interprior deploy export`)")
    contract = json.loads((folder / "policy.json").read_text())
    if contract.get("format") != "interprior-deploy-1":
        raise SystemExit(f"deploy_loop: {folder}/policy.json: unknown format {contract.get('format')!r}")
    model = mujoco.MjModel.from_xml_path(str(folder / contract["files"]["scene"]))
    model.opt.integrator = INTEGRATORS[args.integrator]
    if args.timestep:
        model.opt.timestep = args.timestep
    model.geom_friction[:, 0] *= args.friction_scale
    eps = None
    if args.seed is not None:
        eps = np.random.default_rng(args.seed).standard_normal(contract["goal"]["latent_dim"])
    return Loop(folder, contract, model, threads=args.threads, eps=eps)


def run(loop, events, total_steps, report, source="script"):
    """The script's lines at their times, `total_steps` control steps. -> (applied, not reached, last object goal)."""
    applied, i, last_object = 0, 0, None
    for step in range(total_steps + 1):
        while i < len(events) and events[i][0] <= step * loop.dt + 1e-9:
            _, _, kind, payload = events[i]
            if kind == "goal":
                loop.set_goal(payload)
                last_object = payload.get("object", last_object)
            elif kind == "clear":
                loop.clear()
            else:
                loop.subtask = payload
            applied, i = applied + 1, i + 1
        if step < total_steps:
            loop.step()
    for t, line, _, _ in events[i:]:
        report(f"{source}:{line}: at t = {t:g} s, after the end ({total_steps * loop.dt:g} s); not applied")
    return applied, len(events) - i, last_object


def parse_args(argv):
    p = argparse.ArgumentParser(prog="deploy_loop.py", description=__doc__.split("\n\n")[0])
    p.add_argument("folder", help="the export folder (policy.json, policy.onnx, scene.xml)")
    p.add_argument("--script", required=True, help="goal script, JSON lines (the `interprior steer --script` format)")
    p.add_argument("--seconds", type=float, default=None, help="simulated seconds (default: the script's length)")
    p.add_argument("--integrator", choices=sorted(INTEGRATORS), default="implicitfast")
    p.add_argument("--timestep", type=float, default=None,
                   help="physics step, s (default the scene's; rounded down to fill a control period)")
    p.add_argument("--friction-scale", type=float, default=1.0, help="scale every geom's sliding friction")
    p.add_argument("--seed", type=int, default=None, help="draw the latent eps from this seed (default: eps = 0)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    p.add_argument("--assert-standalone", action="store_true",
                   help="exit with status 3 if interprior or torch got imported")
    args = p.parse_args(argv)
    if args.timestep is not None and not args.timestep > 0 or not args.friction_scale >= 0 or \
            args.seconds is not None and not 0 < args.seconds <= 3600:
        p.error("--timestep and --seconds must be > 0 (seconds at most 3600), --friction-scale >= 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    loop = load(args.folder, args)
    try:
        events, end, errors = read_script(args.script, loop.c["goal"])
    except OSError as err:
        raise SystemExit(f"deploy_loop: {args.script}: cannot read the goal script ({err.strerror or err})")
    report = lambda message: print(message, file=sys.stderr)  # noqa: E731
    for message in errors:
        report(message)
    total = max(1, round((args.seconds or duration(events, end)) / loop.dt))
    started = time.perf_counter()
    applied, late, last_object = run(loop, events, total, report, args.script)
    wall = time.perf_counter() - started
    final = loop.data.qpos[loop.oq[:3]].tolist()
    loaded = [m for m in FORBIDDEN if m in sys.modules]
    summary = {"seconds": total * loop.dt, "steps": total, "lines_applied": applied, "lines_skipped": len(errors),
               "lines_not_reached": late, "falls": loop.falls, "fallen_at_end": loop.fallen,
               "divergences": loop.divergences, "last_object_goal": last_object, "final_object": final,
               "object_error_cm": None if last_object is None else 100.0 * math.dist(final, last_object),
               "integrator": args.integrator, "timestep": loop.model.opt.timestep, "substeps": loop.substeps,
               "friction_scale": args.friction_scale, "eps": "mean" if args.seed is None else f"seed {args.seed}",
               "wall_s": wall, "steps_per_s": total / wall, "policy_ms": 1e3 * loop.policy_s / total,
               "standalone": not loaded}
    print(json.dumps(summary))
    if loop.divergences:
        report(f"deploy_loop: the simulation diverged {loop.divergences} times (each restarted at the start "
               "keyframe); with euler or rk4 try a smaller --timestep")
    if args.assert_standalone and loaded:
        report(f"deploy_loop: imported {', '.join(loaded)}")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
