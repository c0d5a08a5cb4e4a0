"""The deployed policy as one torch module, exported whole to ONNX: MuJoCo-level state and a caller goal in, PD
joint targets out. Everything between is the code the in-process path runs (`interprior.steer.steering`):

    qpos, qvel, object pose/velocity, contact flags
      -> the body's forward kinematics and velocities (`KinematicTree`), nearest object surface vectors
         (the exported object's surface points are a constant of the graph)      = `BatchedSim.state`
      -> `self_observation`
    goal inputs -> the snapshot token (`GoalEnv.set_caller_goal` + `_with_caller_goals`: the target starts from
         the current state, given parts overwritten, previews hidden) -> `build_goal` -> `Goal.features()`
      -> prior + decoder (`PriorDecoder(every_row=True)`) -> action
      -> PD targets by the prior's action rule (`TrackingEnv.step`: delta or absolute)

Kinematics run in float64 (as the simulator's state extraction), the policy in float32 from the float32 state
(as `SimState`), the PD targets in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from interprior.assets.kinematics import KinematicTree
from interprior.errors import InterpriorError
from interprior.mdp.goals import Goal, GoalLayout, build_goal
from interprior.mdp.self_observation import self_observation
from interprior.mdp.types import RefState
from interprior.models.prior import MaskedGoalPrior, PriorDecoder
from interprior.rotations import matrix_to_quat, quat_apply, quat_apply_inverse
from interprior.sim.batched import SimState

# (name, shape, dtype): the graph's inputs in order. N: batch (dynamic), D: simulated hinges, B: bodies,
# Gb: goal bodies, Gc: contact bodies, G: goal bits, Z: latent size
INPUTS = (
    ("qpos", "N, 7 + D", "float64"),
    ("qvel", "N, 6 + D", "float64"),
    ("object_qpos", "N, 7", "float64"),
    ("object_qvel", "N, 6", "float64"),
    ("object_contact", "N, B", "float64"),
    ("goal_object_position", "N, 3", "float64"),
    ("goal_object_rotation", "N, 4", "float64"),
    ("goal_body_positions", "N, Gb, 3", "float64"),
    ("goal_body_rotations", "N, Gb, 4", "float64"),
    ("goal_contacts", "N, Gc", "float64"),
    ("goal_bits", "N, G", "float64"),
    ("goal_seconds", "N", "float64"),
    ("eps", "N, Z", "float64"),
    ("subtask", "N", "int64"),
)
INPUT_NAMES = tuple(name for name, _, _ in INPUTS)
OUTPUTS = (("pd_targets", "N, D", "float64"), ("action", "N, D", "float32"))
OUTPUT_NAMES = tuple(name for name, _, _ in OUTPUTS)
DEPLOYABLE_MODES = ("delta", "absolute")


def check_action_mode(mode: str) -> None:
    """InterpriorError unless actions of `mode` can run without a reference clip."""
    if mode not in DEPLOYABLE_MODES:
        raise InterpriorError(f"this prior's actions are {mode!r} (PD target = a reference clip's next joint angles "
                              "+ a correction): it needs a motion clip while running and cannot be deployed; "
                              f"deployable priors use {' or '.join(DEPLOYABLE_MODES)} actions (train prior --set "
                              "student_actions=delta)")


@dataclass(frozen=True)
class ActionRule:
    """How an action a becomes PD targets: "delta" = current hinge angles + residual_scale·clamp(a, -1, 1);
    "absolute" = offset + scale·clamp(a, -1, 1)."""

    mode: str
    residual_scale: float
    offset: tuple[float, ...]
    scale: tuple[float, ...]

    def __post_init__(self):
        check_action_mode(self.mode)

    def to_dict(self) -> dict:
        rule = {"delta": "pd_targets = float32(qpos[:, 7:]) + residual_scale * clip(action, -1, 1)",
                "absolute": "pd_targets = offset + scale * clip(action, -1, 1)"}[self.mode]
        out = {"mode": self.mode, "rule": rule}
        if self.mode == "delta":
            out["residual_scale"] = self.residual_scale
        else:
            out.update(offset=list(self.offset), scale=list(self.scale))
        return out


@dataclass(frozen=True)
class BodyInfo:
    """What the graph needs of the body and its goal layout."""

    groups: object  # BodyGroups
    layout: GoalLayout
    dof_index: tuple[int, ...]  # each simulated hinge's place in the full joint vector
    num_full_dofs: int
    control_dt: float


class DeployGraph(nn.Module):
    def __init__(self, model: MaskedGoalPrior, tree: KinematicTree, surface_points: Tensor, body: BodyInfo,
                 rule: ActionRule):
        super().__init__()
        self.policy = PriorDecoder(model, every_row=True)
        self.tree = tree.to(dtype=torch.float64)
        self.body, self.rule = body, rule
        layout, nb = body.layout, body.groups.num_bodies
        pts = torch.as_tensor(surface_points, dtype=torch.float64)
        self.register_buffer("points", pts, persistent=False)
        self.register_buffer("aug_points", torch.cat([pts, -0.5 * pts.square().sum(-1, keepdim=True)], -1).T.clone(),
                             persistent=False)
        full = torch.full((body.num_full_dofs,), len(body.dof_index), dtype=torch.long)  # welded: the zero column
        full[list(body.dof_index)] = torch.arange(len(body.dof_index))
        self.register_buffer("full_index", full, persistent=False)
        self.register_buffer("goal_bodies", torch.tensor(layout.bodies), persistent=False)
        self.register_buffer("body_source", _source(nb, layout.bodies), persistent=False)
        self.register_buffer("contact_source", _source(nb, layout.contact_bodies), persistent=False)
        self.register_buffer("offset", torch.tensor(rule.offset, dtype=torch.float64), persistent=False)
        self.register_buffer("scale", torch.tensor(rule.scale, dtype=torch.float64), persistent=False)

    def forward(self, qpos: Tensor, qvel: Tensor, object_qpos: Tensor, object_qvel: Tensor, object_contact: Tensor,
                goal_object_position: Tensor, goal_object_rotation: Tensor, goal_body_positions: Tensor,
                goal_body_rotations: Tensor, goal_contacts: Tensor, goal_bits: Tensor, goal_seconds: Tensor,
                eps: Tensor, subtask: Tensor) -> tuple[Tensor, Tensor]:
        state = self.state(qpos, qvel, object_qpos, object_qvel, object_contact)
        goal = self.goal(state, goal_object_position, goal_object_rotation, goal_body_positions, goal_body_rotations,
                         goal_contacts, goal_bits, goal_seconds)
        action = self.policy(self_observation(state, self.body.groups), goal.features(), goal.bits.float(),
                             goal.time, eps.float(), subtask)
        return self.targets(state, action), action

    # --- the simulated state (BatchedSim._state_torch, one object) ------------------------------------------
    def state(self, qpos: Tensor, qvel: Tensor, object_qpos: Tensor, object_qvel: Tensor,
              object_contact: Tensor) -> SimState:
        qpos, qvel = qpos.double(), qvel.double()
        object_qpos, object_qvel = object_qpos.double(), object_qvel.double()
        root_pos, root_rot, root_linvel = qpos[:, 0:3], qpos[:, 3:7], qvel[:, 0:3]
        root_angvel = quat_apply(root_rot, qvel[:, 3:6])  # free joint: body frame -> world
        dof_pos, dof_vel = qpos[:, 7:], qvel[:, 6:]
        angles, rates = self._full(dof_pos), self._full(dof_vel)
        body_pos, body_mat = self.tree.forward_matrices(root_pos, root_rot, angles)
        body_lin, body_ang = self.tree.velocities(body_pos, body_mat, angles, rates, root_linvel, root_angvel)
        obj_pos, obj_rot = object_qpos[:, 0:3], object_qpos[:, 3:7]
        obj_ang = quat_apply(obj_rot, object_qvel[:, 3:6])
        nearest = self._nearest(body_pos, obj_pos, obj_rot)
        f = torch.float32
        zeros = torch.zeros_like(body_pos, dtype=f)
        return SimState(
            root_pos=root_pos.to(f), root_rot=root_rot.to(f), root_linvel=root_linvel.to(f),
            root_angvel=root_angvel.to(f), dof_pos=dof_pos.to(f), dof_vel=dof_vel.to(f), body_pos=body_pos.to(f),
            body_rot=matrix_to_quat(body_mat).to(f), body_linvel=body_lin.to(f), body_angvel=body_ang.to(f),
            obj_pos=obj_pos[:, None].to(f), obj_rot=obj_rot[:, None].to(f),
            obj_linvel=object_qvel[:, None, 0:3].to(f), obj_angvel=obj_ang[:, None].to(f),
            object_force=zeros, ground_force=zeros, object_contact=object_contact > 0.5,
            ground_contact=zeros[..., 0] > 0.0, nearest_object_vec=nearest.to(f))

    def _full(self, dof: Tensor) -> Tensor:
        """Simulated hinge values [N, D] -> the full joint vector (welded joints at zero)."""
        return torch.cat([dof, torch.zeros_like(dof[:, :1])], dim=1).index_select(1, self.full_index)

    def _nearest(self, body_pos: Tensor, obj_pos: Tensor, obj_rot: Tensor) -> Tensor:
        """[N, B, 3] from each body to the nearest surface point (`batched.nearest_point_vectors`, in float64)."""
        rot = obj_rot[:, None, :].expand(-1, body_pos.shape[1], -1)
        local = quat_apply_inverse(rot, body_pos - obj_pos[:, None, :])
        best = (torch.cat([local, torch.ones_like(local[..., :1])], -1) @ self.aug_points).argmax(dim=-1)
        return quat_apply(rot, self.points[best] - local)

    # --- the goal (GoalEnv.set_caller_goal + _with_caller_goals + build_goal) ------------------------------
    def goal(self, state: SimState, object_position: Tensor, object_rotation: Tensor, body_positions: Tensor,
             body_rotations: Tensor, contacts: Tensor, bits: Tensor, seconds: Tensor) -> Goal:
        layout, sl = self.body.layout, self.body.layout.bit_slices
        f = torch.float32
        given = bits > 0.5
        n, k = given.shape[0], layout.num_tokens
        obj_pos = torch.where(given[:, sl["obj_pos"]], object_position.to(f), state.obj_pos[:, 0])
        obj_rot = torch.where(given[:, sl["obj_rot"]], _unit(object_rotation.to(f)), state.obj_rot[:, 0])
        goal_pos = torch.where(given[:, sl["body_pos"], None], body_positions.to(f),
                               state.body_pos.index_select(1, self.goal_bodies))
        goal_rot = torch.where(given[:, sl["body_rot"], None], _unit(body_rotations.to(f)),
                               state.body_rot.index_select(1, self.goal_bodies))
        body_pos = torch.cat([state.body_pos, goal_pos], 1).index_select(1, self.body_source)
        body_rot = torch.cat([state.body_rot, goal_rot], 1).index_select(1, self.body_source)
        labels = torch.where(given[:, sl["contact"]], contacts.to(f), torch.zeros_like(contacts, dtype=f))
        contact = torch.cat([torch.zeros_like(state.body_pos[..., 0]), labels], 1).index_select(1, self.contact_source)
        zeros3 = torch.zeros_like(state.body_pos)
        token = lambda x: x[:, None].expand((n, k) + x.shape[1:])  # noqa: E731  (previews: hidden copies)
        ref = RefState(root_pos=token(state.root_pos), root_rot=token(state.root_rot), body_pos=token(body_pos),
                       body_rot=token(body_rot), body_linvel=token(zeros3), body_angvel=token(zeros3),
                       dof_pos=token(state.dof_pos), obj_pos=token(obj_pos), obj_rot=token(obj_rot),
                       obj_linvel=token(zeros3[:, 0]), obj_angvel=token(zeros3[:, 0]), contact=token(contact),
                       obj_contact=token(contact[:, 0]), nearest_object_vec=token(zeros3))
        token_bits = torch.cat([torch.zeros_like(given[:, None]).expand(n, k - 1, -1), given[:, None]], 1)
        time = seconds.to(f).clamp_min(self.body.control_dt)  # a due goal stays a goal to hold
        token_time = torch.cat([torch.zeros_like(time[:, None]).expand(n, k - 1), time[:, None]], 1)
        return build_goal(state, ref, token_bits, token_time, layout)

    # --- PD targets (TrackingEnv.step) ----------------------------------------------------------------------
    def targets(self, state: SimState, action: Tensor) -> Tensor:
        a = action.double().clamp(-1.0, 1.0)
        if self.rule.mode == "delta":
            return state.dof_pos.double() + self.rule.residual_scale * a
        return self.offset + self.scale * a


def _source(num_bodies: int, slots: tuple[int, ...]) -> Tensor:
    """[B] index into cat([per-body values, per-slot values]): a body's slot where it has one, else itself."""
    index = torch.arange(num_bodies)
    for j, b in enumerate(slots):
        index[b] = num_bodies + j
    return index


def _unit(q: Tensor) -> Tensor:
    return q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
