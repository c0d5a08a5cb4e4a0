"""`policy.json`: the deploy contract in data — what each graph input and output is, where its values live in
`scene.xml` (joint order, qpos/qvel addresses, actuators), the PD gains, the control rate, the goal bit layout,
the contact rule and the action rule; a loop needs nothing else (`examples/deploy_loop.py` reads only this)."""

from __future__ import annotations

import mujoco
import numpy as np

from interprior.deploy.graph import INPUTS, OUTPUTS, ActionRule
from interprior.models.prior import SUBTASKS
from interprior.sim.batched import CONTACT_FORCE_THRESHOLD
from interprior.steer.goals import HEIGHT_RANGE, MAX_SECONDS, POSITION_LIMIT
from interprior.steer.steering import Steering

FORMAT = "interprior-deploy-1"
START_KEY = "start"  # the keyframe of scene.xml the loop starts (and restarts after a divergence) from

MEANING = {
    "qpos": "humanoid qpos: free joint (position, wxyz quaternion), then the D hinges in joint order "
            "(humanoid.qpos_adr)",
    "qvel": "humanoid qvel as MuJoCo's: linear velocity (world), angular velocity (body frame), then the hinge "
            "rates (humanoid.qvel_adr)",
    "object_qpos": "the object's free joint qpos: position, wxyz quaternion (object.qpos_adr)",
    "object_qvel": "the object's free joint qvel (object.qvel_adr)",
    "object_contact": "1 where body b (humanoid.body_names order) touches the object, else 0 (contact_rule)",
    "goal_object_position": "target object position, world frame, m (bit goal.bits.object_position)",
    "goal_object_rotation": "target object rotation, wxyz (bit goal.bits.object_rotation)",
    "goal_body_positions": "target world positions of goal.bodies (bits goal.bits.body_positions)",
    "goal_body_rotations": "target world rotations (wxyz) of goal.bodies (bits goal.bits.body_rotations)",
    "goal_contacts": "target contact of goal.contact_bodies: +1 touch, -1 keep off, 0 unknown (bits "
                     "goal.bits.contacts)",
    "goal_bits": "1 for each given goal component, 0 hidden (goal.bits); all 0: no goal",
    "goal_seconds": "seconds until the target is due; the graph holds it at >= one control step (a due goal stays "
                    "a goal to hold)",
    "eps": "latent noise; zeros: the prior's mean behaviour (draw once per episode to sample one)",
    "subtask": f"subtask token: {', '.join(f'{i} {n}' for i, n in enumerate(SUBTASKS))}",
    "pd_targets": "PD target angle of each hinge (rad), joint order: write to data.ctrl[joints.ctrl_adr]",
    "action": "the policy's action before the action rule",
}


def _ids(model, kind, names) -> list[int]:
    return [int(mujoco.mj_name2id(model, kind, n)) for n in names]


def _joints(model, body, lay) -> dict:
    names = [body.dof_names[d] for d in body.dof_index]
    act = _ids(model, mujoco.mjtObj.mjOBJ_ACTUATOR, names)
    limited = model.actuator_forcelimited[act].astype(bool)
    return {"names": names, "qpos_adr": lay.dof_qpos_adr.tolist(), "qvel_adr": lay.dof_qvel_adr.tolist(),
            "actuators": names, "ctrl_adr": act, "kp": model.actuator_gainprm[act, 0].tolist(),
            "kd": (-model.actuator_biasprm[act, 2]).tolist(),
            "force_limit": [float(f) if on else None for f, on in zip(model.actuator_forcerange[act, 1], limited)]}


def _free_joint(model, body_id: int) -> tuple[list[int], list[int], str]:
    jnt = int(model.body_jntadr[body_id])
    if jnt < 0 or model.jnt_type[jnt] != mujoco.mjtJoint.mjJNT_FREE:
        raise ValueError(f"body {model.body(body_id).name!r} has no free joint")
    q, v = int(model.jnt_qposadr[jnt]), int(model.jnt_dofadr[jnt])
    return list(range(q, q + 7)), list(range(v, v + 6)), model.joint(jnt).name


def _goal(steering: Steering) -> dict:
    layout, names = steering.layout, steering.env.body.body_names
    sl = layout.bit_slices
    bodies = [names[i] for i in layout.bodies]
    contacts = [names[i] for i in layout.contact_bodies]
    return {
        "bodies": bodies, "contact_bodies": contacts,
        "hands": {"left": steering.hand_names[0], "right": steering.hand_names[1]},
        "heading_body": names[0] if steering.names.heading else None,
        "bits": {"object_position": sl["obj_pos"].start, "object_rotation": sl["obj_rot"].start,
                 "body_positions": {b: sl["body_pos"].start + j for j, b in enumerate(bodies)},
                 "body_rotations": {b: sl["body_rot"].start + j for j, b in enumerate(bodies)},
                 "contacts": {c: sl["contact"].start + j for j, c in enumerate(contacts)}},
        "num_bits": layout.bit_size, "latent_dim": steering.policy.model.cfg.latent_dim, "subtasks": list(SUBTASKS),
        "limits": {"position_xy": POSITION_LIMIT, "height": list(HEIGHT_RANGE), "max_seconds": MAX_SECONDS},
    }


def contract(steering: Steering, rule: ActionRule, prior: dict, check: dict) -> dict:
    """The whole `policy.json` for the steering's scene (humanoid + its one object)."""
    env = steering.env
    model, body, lay, cfg = env.scene.model, env.body, env.scene.layout, env.scene.config
    root_q, root_v, root_joint = _free_joint(model, int(lay.humanoid_body_ids[0]))
    obj_q, obj_v, _ = _free_joint(model, int(lay.object_body_ids[0]))
    joints = _joints(model, body, lay)
    sizes = {"D": body.num_dofs, "B": body.num_bodies, "Gb": steering.layout.num_bodies,
             "Gc": steering.layout.num_contacts, "G": steering.layout.bit_size,
             "Z": steering.policy.model.cfg.latent_dim}
    io = lambda spec: [{"name": n, "shape": s, "dtype": d, "meaning": MEANING[n]} for n, s, d in spec]  # noqa: E731
    return {
        "format": FORMAT, "prior": prior, "body": body.name,
        "files": {"onnx": "policy.onnx", "scene": "scene.xml"},
        "inputs": io(INPUTS), "outputs": io(OUTPUTS), "sizes": sizes,
        "control": {"rate_hz": 1.0 / cfg.control_dt, "control_dt": cfg.control_dt, "physics_dt": cfg.physics_dt,
                    "substeps": cfg.substeps, "integrator": "implicitfast", "start_keyframe": START_KEY},
        "joints": joints,
        "humanoid": {"root_joint": root_joint, "qpos_adr": root_q[:7] + joints["qpos_adr"],
                     "qvel_adr": root_v[:6] + joints["qvel_adr"], "body_names": list(body.body_names),
                     "fall_height": body.fall_height},
        "object": {"name": steering.object_name, "body": model.body(int(lay.object_body_ids[0])).name,
                   "qpos_adr": obj_q, "qvel_adr": obj_v},
        "goal": _goal(steering),
        "contact_rule": {"threshold_newton": CONTACT_FORCE_THRESHOLD, "rule": (
            "after the control step's last physics step: for each body b, sum the world-frame contact forces of "
            "data.contact[:data.ncon] between b's geoms and the object's geoms (mj_contactForce, rotated by the "
            "contact frame, sign for b); object_contact[b] = 1 where that net force's norm exceeds threshold_newton. "
            "0 for every body before the first physics step. Equal to the scene's <body>__obj0 contact sensors.")},
        "action": rule.to_dict(),
        "check": check,
    }


def start_keyframe(qpos: np.ndarray, qvel: np.ndarray) -> str:
    """The `<keyframe>` element of the start state."""
    fmt = lambda v: " ".join(f"{float(x):.17g}" for x in v)  # noqa: E731
    return f'  <keyframe>\n    <key name="{START_KEY}" qpos="{fmt(qpos)}" qvel="{fmt(qvel)}"/>\n  </keyframe>\n'
