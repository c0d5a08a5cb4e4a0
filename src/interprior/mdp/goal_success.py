"""When a goal counts as reached: per-component errors against a target and the success rules of each goal type
(InterPrior Table 1, CPU scale). Pure batched tensor functions; the stateful bookkeeping over an episode lives in
`interprior.eval.goals`. The thresholds are fixed across checkpoints and written in the README.
"""

from __future__ import annotations

import torch
from torch import Tensor

from interprior.mdp.goals import GoalLayout
from interprior.rotations import quat_angle, quat_conj, quat_mul

POSITION_TOLERANCE = 0.15  # m, snapshot positions at the target time
ROTATION_TOLERANCE = 0.5  # rad (≈ 29°), any given rotation
TRAJECTORY_TOLERANCE = 0.25  # m, trajectory positions at every step
CONTACT_MATCH_RATE = 0.8  # share of given (step, contact body) pairs matched
FULL_BODY_ERROR = 0.5  # m, mean key-body error (Stage I's termination threshold)
FULL_OBJECT_ERROR = 0.5  # m, mean object surface-point error
SNAPSHOT_FRAMES = 60  # the snapshot target of the chain protocols, frames after the start (2 s at 30 Hz)
# `eval goals` puts a snapshot target where its given parts have moved farthest from the start within the training's
# snapshot range, and scores it only where they moved at least this far: a target within the position tolerance of
# where things already are is met by doing nothing, so it cannot show that the goal decides the motion
MIN_SNAPSHOT_MOVE = 0.3  # m

SUCCESS_RULES = {
    "snapshot": f"given positions within {100 * POSITION_TOLERANCE:.0f} cm, rotations within {ROTATION_TOLERANCE} rad "
                "at the target time (where the given parts have moved farthest from the start; only targets that "
                f"moved >= {100 * MIN_SNAPSHOT_MOVE:.0f} cm count), not fallen",
    "trajectory": f"given positions within {100 * TRAJECTORY_TOLERANCE:.0f} cm (rotations {ROTATION_TOLERANCE} rad) "
                  "at every step, not fallen",
    "contact": f"given contacts matched on >= {100 * CONTACT_MATCH_RATE:.0f}% of steps, not fallen",
    "full": f"mean key-body error <= {100 * FULL_BODY_ERROR:.0f} cm and object error <= "
            f"{100 * FULL_OBJECT_ERROR:.0f} cm at every step, not fallen",
    "composed": "every given part meets its snapshot / trajectory / contact rule, not fallen",
}
# object and hand goals are scored by the rule of their form: a snapshot's, or a path's (trajectory)
RULE_OF = {"object": "snapshot", "hand": "snapshot", "object_path": "trajectory"}
SUCCESS_RULES.update({
    "object": "object only: " + SUCCESS_RULES["snapshot"],
    "object_path": "object only, a path: " + SUCCESS_RULES["trajectory"],
    "hand": "wrist positions only: " + SUCCESS_RULES["snapshot"],
})


def scoring_rule(goal_type: str) -> str:
    """The success rule a goal type is scored by (snapshot, trajectory, contact, full or composed)."""
    return RULE_OF.get(goal_type, goal_type)


def component_errors(sim, ref, layout: GoalLayout) -> dict[str, Tensor]:
    """Per-component distances between the simulated state and a reference (fields [N, ...]): body position (m)
    and rotation (rad) errors [N, B], object position / rotation errors [N, 1], contact matched [N, C] (bool)."""
    bodies = torch.as_tensor(layout.bodies)
    contacts = torch.as_tensor(layout.contact_bodies)
    ref_rot, sim_rot = ref.body_rot[:, bodies].to(sim.body_rot), sim.body_rot[:, bodies]
    return {
        "body_pos": (ref.body_pos[:, bodies].to(sim.body_pos) - sim.body_pos[:, bodies]).norm(dim=-1),
        "body_rot": quat_angle(quat_mul(ref_rot, quat_conj(sim_rot))),
        "obj_pos": (ref.obj_pos.to(sim.obj_pos) - sim.obj_pos[:, 0]).norm(dim=-1, keepdim=True),
        "obj_rot": quat_angle(quat_mul(ref.obj_rot.to(sim.obj_rot), quat_conj(sim.obj_rot[:, 0])))[:, None],
        "contact": (ref.contact[:, contacts] > 0) == sim.object_contact[:, contacts].cpu(),
    }


def goals_met(errors: dict[str, Tensor], bits: Tensor, layout: GoalLayout, position_tolerance: float) -> Tensor:
    """[N] bool: every given position / rotation of `bits` [N, G] within tolerance (contacts are scored apart)."""
    sl = layout.bit_slices
    ok = torch.ones(bits.shape[0], dtype=torch.bool)
    for name, tol in (("body_pos", position_tolerance), ("obj_pos", position_tolerance),
                      ("body_rot", ROTATION_TOLERANCE), ("obj_rot", ROTATION_TOLERANCE)):
        ok &= ~(bits[:, sl[name]] & (errors[name] > tol)).any(dim=1)
    return ok


def given_position_error(errors: dict[str, Tensor], bits: Tensor, layout: GoalLayout) -> Tensor:
    """[N] mean error (m) of the given body and object positions (NaN where none is given)."""
    sl = layout.bit_slices
    given = torch.cat([bits[:, sl["body_pos"]], bits[:, sl["obj_pos"]]], dim=1).float()
    err = torch.cat([errors["body_pos"], errors["obj_pos"]], dim=1).float()
    return (err * given).sum(1) / given.sum(1)


def defined_now(ref, layout: GoalLayout) -> Tensor:
    """[N, G] components the reference defines at one frame (unknown contact labels are not)."""
    bits = torch.ones(ref.contact.shape[0], layout.bit_size, dtype=torch.bool)
    bits[:, layout.bit_slices["contact"]] = ref.contact[:, torch.as_tensor(layout.contact_bodies)] != 0
    return bits


def largest_move_frames(positions: Tensor, given: Tensor, first: Tensor, last: Tensor) -> tuple[Tensor, Tensor]:
    """Where a snapshot target says the most. `positions` [T, N, K, 3]: the reference positions of K goal parts at
    frames 0..T-1 of each row's episode (0 = its start); `given` [N, K] bool: the parts a goal names; `first`,
    `last` [N]: the candidate frames (inclusive). -> (frame [N] in the window where the given parts' mean distance
    from their start positions is largest, that distance [N] in m; 0 where nothing is given)."""
    moved = (positions - positions[:1]).norm(dim=-1)  # [T, N, K]
    weight = given.to(moved.dtype)
    mean = (moved * weight).sum(-1) / weight.sum(-1).clamp_min(1.0)  # [T, N]
    t = torch.arange(positions.shape[0])[:, None]
    outside = (t < first.cpu()[None]) | (t > last.cpu()[None])
    mean = mean.masked_fill(outside.to(mean.device), -1.0)
    frame = mean.argmax(0)
    return frame, mean.gather(0, frame[None])[0].clamp_min(0.0)


def full_tracking_ok(body_error: Tensor, object_error: Tensor) -> Tensor:
    """[N] the full-tracking rule at one step: E_h and E_o within Stage I's termination thresholds."""
    return (body_error <= FULL_BODY_ERROR) & (object_error <= FULL_OBJECT_ERROR)
