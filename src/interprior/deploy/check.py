"""The exported graph against the in-process path, on the same states: a `Steering` (the prior driven by caller
goals in our environment) gives each state; its own `policy.act` on its `GoalEnv` observation and the env's
action -> PD target rule give the expected targets; the graph gets the same state as MuJoCo-level inputs.

`graph_inputs` is also the reference for what a deploy loop feeds the graph (see `examples/deploy_loop.py`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from interprior.deploy.graph import INPUT_NAMES, OUTPUT_NAMES
from interprior.models.prior import GET_UP
from interprior.sim.batched import SimState
from interprior.steer.steering import Steering

Runner = Callable[[dict], tuple[np.ndarray, np.ndarray]]  # graph inputs -> (pd_targets, action)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def graph_inputs(steering: Steering, state: SimState | None = None, subtask: int = 0) -> dict[str, np.ndarray]:
    """The graph's inputs (batch 1) for the steering's current physics state and caller goal; contact flags from
    `state` (default: the steering's observed state)."""
    env, genv, layout = steering.env, steering.goal_env, steering.layout
    sim, lay = env.sim, env.scene.layout
    state = steering.obs.state if state is None else state
    qpos, qvel = _np(sim.backend.qpos()[0]), _np(sim.backend.qvel()[0])
    bodies, contacts = list(layout.bodies), list(layout.contact_bodies)
    obj_q, obj_v = int(lay.object_qpos_adr[0]), int(lay.object_qvel_adr[0])
    feed = {
        "qpos": np.concatenate([qpos[:7], qpos[lay.dof_qpos_adr]])[None],
        "qvel": np.concatenate([qvel[:6], qvel[lay.dof_qvel_adr]])[None],
        "object_qpos": qpos[None, obj_q:obj_q + 7], "object_qvel": qvel[None, obj_v:obj_v + 6],
        "object_contact": _np(state.object_contact[:1]),
        "goal_object_position": np.zeros((1, 3)), "goal_object_rotation": np.array([[1.0, 0.0, 0.0, 0.0]]),
        "goal_body_positions": np.zeros((1, len(bodies), 3)), "goal_body_rotations": np.zeros((1, len(bodies), 4)),
        "goal_contacts": np.zeros((1, len(contacts))), "goal_bits": np.zeros((1, layout.bit_size)),
        "goal_seconds": _np(genv.caller_time_left()[:1]),
        "eps": _np(steering.policy.eps[:1]), "subtask": np.array([subtask], dtype=np.int64),
    }
    feed["goal_body_rotations"][..., 0] = 1.0
    if bool(genv.caller[0]):
        target = genv.caller_target
        feed.update(goal_object_position=_np(target.obj_pos[:1]), goal_object_rotation=_np(target.obj_rot[:1]),
                    goal_body_positions=_np(target.body_pos[:1, bodies]),
                    goal_body_rotations=_np(target.body_rot[:1, bodies]),
                    goal_contacts=_np(target.contact[:1, contacts]), goal_bits=_np(genv.caller_bits[:1, -1]))
    return feed


@torch.no_grad()
def in_process(steering: Steering, state: SimState | None = None, subtask: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(PD targets [1, D], action [1, D]) of the in-process path: the prior on the goal env's observation of
    `state`, then `TrackingEnv.step`'s rule for the prior's action mode."""
    env = steering.env
    obs = steering.goal_env.observe(steering.obs.state if state is None else state)
    ids = torch.tensor([subtask]) if subtask else None
    action = steering.policy.act(obs.state_obs, obs.goal, ids)
    if env.cfg.action_mode == "delta":
        current = env.current_dof_pos().to(torch.float64)
        targets = current + env.cfg.residual_scale * action.to(current).clamp(-1.0, 1.0)
    else:
        targets = env.sim.action_to_targets(action)
    return _np(targets), action.detach().cpu().float().numpy()


def _goals(steering: Steering) -> list[dict]:
    """Goals that give every kind of component (object pose, both hands, contacts on and off, a heading)."""
    state = steering.state()
    x, y, z = state.object
    left, right = state.left_hand, state.right_hand
    contacts = steering.names.contacts
    full = {"object_position": [x + 0.3, y - 0.2, z + 0.2], "object_yaw": 0.5,
            "left_hand": [left[0] + 0.2, left[1], left[2] + 0.1], "right_hand": [right[0] + 0.2, right[1], right[2]],
            "contacts": {contacts[0]: True, contacts[-1]: False}, "seconds": 0.4}
    if steering.names.heading:
        full["pelvis_heading"] = 0.3
    return [full, {"object_position": [x, y + 0.3, z], "seconds": 1.0}]


def compare(steering: Steering, run: Runner, steps: int = 6, seed: int = 0) -> dict:
    """Largest |targets_graph − targets_in_process| (and of the actions) over states of a short steered run: two
    goals (every component; the object alone), no goal, and the get-up subtask token, each state also with random
    contact flags. The steering is reset afterwards."""
    rng = np.random.default_rng(seed)
    worst = {"pd_targets": 0.0, "action": 0.0}
    count = 0
    phases = [(goal, 0) for goal in _goals(steering)] + [(None, 0), (None, GET_UP)]
    steering.reset()
    for goal, subtask in phases:
        if goal is None:
            steering.clear_goal()
        else:
            steering.set_goal(**goal)
        for _ in range(steps):
            state = steering.obs.state
            flipped = torch.as_tensor(rng.random(state.object_contact.shape) < 0.3)
            for s in (state, replace(state, object_contact=flipped)):
                expected = in_process(steering, s, subtask)
                got = run(graph_inputs(steering, s, subtask))
                for key, a, b in zip(worst, got, expected):
                    worst[key] = max(worst[key], float(np.abs(np.asarray(a, np.float64) - b).max()))
                count += 1
            steering.step(1)
    steering.reset()
    return {"states": count, "max_abs_pd_target_difference": worst["pd_targets"],
            "max_abs_action_difference": worst["action"]}


def torch_runner(graph) -> Runner:
    """`run` for `compare` on the torch module itself (before export)."""
    def run(feed: dict) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            targets, action = graph(*(torch.from_numpy(np.asarray(feed[name])) for name in INPUT_NAMES))
        return targets.numpy(), action.numpy()
    return run


def session_runner(session) -> Runner:
    """`run` for `compare` on an onnxruntime session of the exported graph."""
    def run(feed: dict) -> tuple[np.ndarray, np.ndarray]:
        targets, action = session.run(list(OUTPUT_NAMES), feed)
        return targets, action
    return run
