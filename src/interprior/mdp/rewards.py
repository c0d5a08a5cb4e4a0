"""Stage I tracking reward: a product of per-term factors in [0, 1], each returned separately for logging.

``reward = Π_k term_k``; most terms are ``exp(-w_k E_k)`` with an error E_k ≥ 0 (InterMimic code §6 and its
supplementary D). Pure batched torch kernels (no simulator), device-agnostic; object 0 of the simulation is used.

Terms (Δ = ref − sim, i over the 52 bodies unless stated, ``d_i`` / ``d̂_i`` = sim / ref ``nearest_object_vec``):

* ``w_d`` (supp. D.1): ``w_d[i] = 0.5 (1/|d_i|²) / Σ_j (1/|d_j|²) + 0.5 (1/|d̂_i|²) / Σ_j (1/|d̂_j|²)``, squared
  distances clipped below at ``wd_min_dist2`` (0.01 m², i.e. 10 cm; the code's ig-weight clip). Σ_i w_d = 1.
* ``rp``   = exp(−p · mean_i ω_i |Δp_i|²), ω = 52·w_d (mean 1) with ω ≥ 1 forced on the four feet bodies
  (L/R ankle and toe — §12 quirk fixed: the code hit L/R knee and ankle through a key-list/body index mix-up).
* ``rr``   = exp(−r · Σ_i (1 − w_d[i]) θ_i / Σ_i (1 − w_d[i])), θ_i = angle(q_ref,i⁻¹ q_sim,i) ∈ [0, π].
* ``rpv``  = exp(−pv · mean_i |Δv_i|²);  ``rrv`` = exp(−rv · mean_i |Δω_i|²)  (weights 0 by default: off).
* ``rop``  = exp(−op · mean_xyz (Δ o)²), o = object position relative to its own root in that root's heading
  frame with z absolute ("normalised to the human's current position and direction").
* ``ror``  = exp(−or · angle(q_obj,ref⁻¹ q_obj,sim)).
* ``ropv`` = exp(−opv · mean_xyz (Δ v_obj)²);  ``rorv`` = exp(−orv · mean_xyz (Δ ω_obj)²) (off by default).
* ``rig``  = exp(−ig · Σ_i w_d[i] |ĝ_i − g_i|²), g = nearest_object_vec in its own root's heading frame (raw metres;
  per body, since the state carries one nearest vector per body instead of the code's 21 × 1024 pairs).
* ``rcg_other`` (contact promotion) = exp(−cg_other · mean_{b∉hands} [ĉ_b = +1] (1 − c_b)), c = sim *object*
  contact; the 20 non-hand bodies (§12 quirk fixed: the code's range covered bodies 0–16 only, dropping the right
  thorax/shoulder/elbow).
* ``rcg_all`` (contact penalty) = exp(−cg_all · mean_b [ĉ_b = −1] c_b). "−1 and not on the ground" needs no
  extra mask: the labels already exclude ground-supported feet (feet on the ground are labelled 0) and c counts
  object contact only, so ground contact is never penalised (the code used any contact, ground included).
* ``rcg_hand`` (hand contact guidance, per hand h, active when any of the hand's 16 reference labels is +1)
  = Π_h (0.5 + 0.5 exp(−cg_hand · E_h)), E_h = active_h · (1 − min(1, n_h / n̂_h)), n_h = the hand's bodies in sim
  object contact, n̂_h = its bodies labelled +1. The code's 0.5 floor is kept (a missed grasp halves the reward
  instead of zeroing it); deviation: the code divided by all 16 hand bodies, so its term stayed near 0.5 even for
  a good grasp and could never reach 1 when the simulation matched the labels.
* ``reg_dof``   = exp(−eg1 · mean_j ((q̇_j − q̇_j,prev) / dt)²) — dof (joint) acceleration.
* ``reg_obj``   = exp(−eg2 · [mean_xyz a_obj² + mean_xyz α_obj²]) — object linear + angular acceleration.
  Both energy terms are 1 when ``prev`` is None (first steps after a reset, the code masked 2 steps).
* ``reg_force`` = exp(−eg3 · (Σ_b |F_b|)²), F_b = object + ground contact force on body b. Deviation: per-body
  Euclidean norms instead of the code's sum of per-axis |F| (which depends on the world yaw).
* ``rhand_free`` (InterPrior's reference-free hand reward; per hand, active as above, else 1)
  = Π_h exp(−hand_free · D_h) · (0.5 + 0.5 min(1, n_h / hand_free_contacts)), with
  D_h = mean_{b ∈ wrist + 5 fingertips} max(0, |d_b| − hand_free_tol): the distance of the palm/fingertips to the
  *simulated* object (not to the reference hand pose), and n_h the number of the hand's 16 bodies in sim object
  contact (wrapping). 1 when the palm and fingertips are within ``hand_free_tol`` (3 cm) of the simulated
  object and at least ``hand_free_contacts`` (3) hand bodies touch it; ≥ 0.5·exp(−hand_free·D_h) otherwise.

Stabilisation terms for robots (InterPrior's G1 training; weights 0 = off, the default, which leaves the product
above unchanged bit for bit):

* ``rfeet_flat``    = exp(−feet_flat · mean_{feet on the ground} (1 − cos tilt)), tilt = angle between the foot
  body's z-axis and the world's (feet off the ground do not count).
* ``rupright``      = exp(−upright · (1 − cos tilt)) of the torso body's z-axis.
* ``raction_rate``  = exp(−action_rate · mean_j (a_j − a_j,prev)²), the policy's action change per control step
  (1 right after a reset).
* ``rjoint_limits`` = exp(−joint_limits · mean_j excess_j²), excess = how far (rad) a joint is beyond
  ``joint_limit_margin`` × its half range from the range's centre.

Consequently the reward is exactly 1 when sim == ref (contacts matching the labels), the accelerations and
contact forces are zero, and every reference hand in contact is also within reach of the simulated object with
≥ 3 bodies touching it; each factor decreases strictly as its error grows (where its weight is positive).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor

from interprior.config import require
from interprior import schema
from interprior.assets.embodiment import BodyGroups
from interprior.mdp.observations import heading_cos_sin, relative_rot_quat, to_heading
from interprior.mdp.types import RefState
from interprior.rotations import quat_angle
from interprior.sim.batched import SimState


@dataclass(frozen=True)
class RewardWeights:
    """Weights: InterMimic teacher `omomo_train.yaml` values (§6) for the code's terms; `hand_free` and the
    shape constants below it belong to the new terms (our choices, not from any released code)."""

    p: float = 30.0          # body position
    r: float = 2.5           # body rotation
    pv: float = 0.0          # body linear velocity (off)
    rv: float = 0.0          # body angular velocity (off)
    op: float = 5.0          # object position
    or_: float = 0.1         # object rotation ("or" in configs)
    opv: float = 0.1         # object linear velocity
    orv: float = 0.0         # object angular velocity (off)
    ig: float = 5.0          # interaction graph
    cg_hand: float = 5.0     # hand contact guidance
    cg_other: float = 5.0    # contact promotion, non-hand bodies
    cg_all: float = 3.0      # contact penalty
    eg1: float = 2e-5        # joint acceleration energy
    eg2: float = 2e-5        # object acceleration energy
    eg3: float = 1e-9        # contact force energy
    hand_free: float = 5.0   # reference-free hand reward: per metre of palm/fingertip distance to the sim object
    hand_free_tol: float = 0.03      # m; distances below this count as touching
    hand_free_contacts: int = 3      # hand bodies in object contact for full "wrap" credit
    wd_min_dist2: float = 0.01       # m²; clip of the squared distances in w_d
    feet_flat: float = 0.0           # robot stabilisation (0: off): feet flat on the ground
    upright: float = 0.0             # ... torso upright
    action_rate: float = 0.0         # ... action change per control step
    joint_limits: float = 0.0        # ... joints beyond joint_limit_margin of their range
    joint_limit_margin: float = 0.95  # fraction of each joint's half range that is free

    def __post_init__(self):
        require(self, non_negative=tuple(f.name for f in fields(self) if f.name != "hand_free_contacts"),
                positive=("hand_free_contacts", "wd_min_dist2"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RewardWeights":
        """Build from a config mapping; accepts the code's key "or" for `or_`; unknown keys raise."""
        d = dict(d)
        if "or" in d:
            d["or_"] = d.pop("or")
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown reward weights: {sorted(unknown)}")
        return cls(**d)


_INDEX_CACHE: dict[tuple[BodyGroups, str, torch.device], Tensor] = {}


def _idx(groups: BodyGroups, name: str, device: torch.device) -> Tensor:
    key = (groups, name, torch.device(device))
    t = _INDEX_CACHE.get(key)
    if t is None:
        group = {
            "nonhand": groups.non_hand,
            "feet": groups.feet,
            "hands": groups.left_hand + groups.right_hand,  # [2 * H], reshaped to [2, H] (hands of equal size)
            "grasp": groups.grasp[0] + groups.grasp[1],  # [2 * G]
        }[name]
        t = _INDEX_CACHE[key] = torch.as_tensor(group, dtype=torch.long, device=device)
    return t


def embodiment_weights(sim_vec: Tensor, ref_vec: Tensor, min_dist2: float = 0.01) -> Tensor:
    """w_d [N, B] of supplementary D.1 from body→object vectors [N, B, 3] (sim and ref); rows sum to 1."""
    inv_s = 1.0 / sim_vec.square().sum(-1).clamp_min(min_dist2)
    inv_r = 1.0 / ref_vec.square().sum(-1).clamp_min(min_dist2)
    return 0.5 * inv_s / inv_s.sum(-1, keepdim=True) + 0.5 * inv_r / inv_r.sum(-1, keepdim=True)


def _local_object_pos(root_pos: Tensor, root_rot: Tensor, obj_pos: Tensor) -> Tensor:
    """Object position relative to the root in the root's heading frame, z absolute. [N, 3]"""
    local = to_heading((obj_pos - root_pos)[:, None, :], heading_cos_sin(root_rot))[:, 0]
    return torch.cat([local[:, :2], obj_pos[:, 2:3]], dim=-1)


def _exp(w: float, err: Tensor) -> Tensor:
    return torch.exp(-w * err)


def _human_terms(sim: SimState, ref: RefState, wd: Tensor, w: RewardWeights,
                 groups: BodyGroups) -> dict[str, Tensor]:
    """Embodiment-aware human tracking: rp, rr, rpv, rrv."""
    pos_w = wd * groups.num_bodies
    feet = _idx(groups, "feet", sim.root_pos.device)
    pos_w = pos_w.index_copy(1, feet, pos_w.index_select(1, feet).clamp_min(1.0))
    angle = quat_angle(relative_rot_quat(ref.body_rot, sim.body_rot))  # [N, 52]
    rot_w = 1.0 - wd
    return {
        "rp": _exp(w.p, (pos_w * (ref.body_pos - sim.body_pos).square().sum(-1)).mean(-1)),
        "rr": _exp(w.r, (rot_w * angle).sum(-1) / rot_w.sum(-1)),
        "rpv": _exp(w.pv, (ref.body_linvel - sim.body_linvel).square().sum(-1).mean(-1)),
        "rrv": _exp(w.rv, (ref.body_angvel - sim.body_angvel).square().sum(-1).mean(-1)),
    }


def _object_terms(sim: SimState, ref: RefState, w: RewardWeights) -> dict[str, Tensor]:
    """Object tracking (object 0): rop, ror, ropv, rorv."""
    o_sim = _local_object_pos(sim.root_pos, sim.root_rot, sim.obj_pos[:, 0])
    o_ref = _local_object_pos(ref.root_pos, ref.root_rot, ref.obj_pos)
    return {
        "rop": _exp(w.op, (o_ref - o_sim).square().mean(-1)),
        "ror": _exp(w.or_, quat_angle(relative_rot_quat(ref.obj_rot, sim.obj_rot[:, 0]))),
        "ropv": _exp(w.opv, (ref.obj_linvel - sim.obj_linvel[:, 0]).square().mean(-1)),
        "rorv": _exp(w.orv, (ref.obj_angvel - sim.obj_angvel[:, 0]).square().mean(-1)),
    }


def _interaction_graph_term(sim: SimState, ref: RefState, wd: Tensor, w: RewardWeights) -> Tensor:
    """rig: each state's body→object vectors in its own heading frame."""
    g_sim = to_heading(sim.nearest_object_vec, heading_cos_sin(sim.root_rot))
    g_ref = to_heading(ref.nearest_object_vec, heading_cos_sin(ref.root_rot))
    return _exp(w.ig, (wd * (g_ref - g_sim).square().sum(-1)).sum(-1))


def _contact_terms(sim: SimState, ref: RefState, w: RewardWeights, groups: BodyGroups) -> dict[str, Tensor]:
    """Contact promotion / penalty / hand guidance (rcg_other, rcg_all, rcg_hand) and InterPrior's
    reference-free hand reward (rhand_free)."""
    dev, dtype = sim.root_pos.device, sim.root_pos.dtype
    n = sim.root_pos.shape[0]
    c = sim.object_contact.to(dtype)
    promote = (ref.contact > 0.5).to(dtype)
    penalise = (ref.contact < -0.5).to(dtype)
    nonhand = _idx(groups, "nonhand", dev)
    missed = promote.index_select(1, nonhand) * (1.0 - c.index_select(1, nonhand))
    terms = {"rcg_other": _exp(w.cg_other, missed.mean(-1)), "rcg_all": _exp(w.cg_all, (penalise * c).mean(-1))}

    hands = _idx(groups, "hands", dev)
    n_sim = c.index_select(1, hands).reshape(n, 2, -1).sum(-1)  # [N, 2] hand bodies touching the sim object
    n_ref = promote.index_select(1, hands).reshape(n, 2, -1).sum(-1)  # [N, 2] hand bodies labelled +1
    active = n_ref > 0.5
    hand_err = torch.where(active, 1.0 - (n_sim / n_ref.clamp_min(1.0)).clamp(max=1.0), torch.zeros_like(n_sim))
    terms["rcg_hand"] = (0.5 + 0.5 * _exp(w.cg_hand, hand_err)).prod(-1)
    terms["rhand_free"] = _hand_free_term(sim, n_sim, active, w, groups)
    return terms


def _hand_free_term(sim: SimState, n_sim: Tensor, active: Tensor, w: RewardWeights, groups: BodyGroups) -> Tensor:
    """InterPrior's reference-free hand reward from the palm/fingertip distances and the hand contact counts
    n_sim [N, 2]; 1 for hands whose reference is not in contact (`active` [N, 2] false)."""
    n = sim.root_pos.shape[0]
    grasp = _idx(groups, "grasp", sim.root_pos.device)
    dist = sim.nearest_object_vec.index_select(1, grasp).norm(dim=-1).reshape(n, 2, -1)  # [N, 2, 6]
    reach = (dist - w.hand_free_tol).clamp_min(0.0).mean(-1)
    wrap = (n_sim / float(w.hand_free_contacts)).clamp(max=1.0)
    free = _exp(w.hand_free, reach) * (0.5 + 0.5 * wrap)
    return torch.where(active, free, torch.ones_like(free)).prod(-1)


def _energy_terms(sim: SimState, prev: SimState | None, w: RewardWeights, dt: float) -> dict[str, Tensor]:
    """reg_dof, reg_obj (1 when `prev` is None) and reg_force."""
    terms: dict[str, Tensor] = {}
    if prev is None:
        ones = torch.ones(sim.root_pos.shape[0], dtype=sim.root_pos.dtype, device=sim.root_pos.device)
        terms["reg_dof"], terms["reg_obj"] = ones, ones.clone()
    else:
        dof_acc = (sim.dof_vel - prev.dof_vel) / dt
        terms["reg_dof"] = _exp(w.eg1, dof_acc.square().mean(-1))
        lin_acc = (sim.obj_linvel[:, 0] - prev.obj_linvel[:, 0]) / dt
        ang_acc = (sim.obj_angvel[:, 0] - prev.obj_angvel[:, 0]) / dt
        terms["reg_obj"] = _exp(w.eg2, lin_acc.square().mean(-1) + ang_acc.square().mean(-1))
    force = (sim.object_force + sim.ground_force).norm(dim=-1).sum(-1)
    terms["reg_force"] = _exp(w.eg3, force.square())
    return terms


def z_axis_cos(rot: Tensor) -> Tensor:
    """[...] cosine between a body's z-axis and the world's, from wxyz quaternions [..., 4]."""
    x, y = rot[..., 1], rot[..., 2]
    return 1.0 - 2.0 * (x * x + y * y)


def stability_terms(sim: SimState, groups: BodyGroups, w: RewardWeights, action: Tensor | None = None,
                    prev_action: Tensor | None = None, limits: Tensor | None = None) -> dict[str, Tensor]:
    """The robot stabilisation factors whose weights are positive (none by default). `action`, `prev_action`
    [N, A] (prev None: just reset, the term is 1); `limits` [A, 2] the simulated joints' ranges (rad)."""
    terms: dict[str, Tensor] = {}
    if w.feet_flat > 0:
        feet = _idx(groups, "feet", sim.root_pos.device)
        tilt = 1.0 - z_axis_cos(sim.body_rot.index_select(1, feet))
        on = sim.ground_contact.index_select(1, feet).to(tilt.dtype)
        terms["rfeet_flat"] = _exp(w.feet_flat, (tilt * on).sum(-1) / on.sum(-1).clamp_min(1.0))
    if w.upright > 0:
        terms["rupright"] = _exp(w.upright, 1.0 - z_axis_cos(sim.body_rot[:, groups.torso[0]]))
    if w.action_rate > 0 and action is not None:
        rate = torch.zeros(action.shape[0], dtype=action.dtype, device=action.device)
        if prev_action is not None:
            rate = (action - prev_action).square().mean(-1)
        terms["raction_rate"] = _exp(w.action_rate, rate.to(sim.root_pos))
    if w.joint_limits > 0 and limits is not None:
        limits = limits.to(sim.dof_pos)
        centre, half = limits.mean(-1), 0.5 * (limits[:, 1] - limits[:, 0])
        excess = ((sim.dof_pos - centre).abs() - w.joint_limit_margin * half).clamp_min(0.0)
        terms["rjoint_limits"] = _exp(w.joint_limits, excess.square().mean(-1))
    return terms


def tracking_reward(
    sim: SimState,
    ref: RefState,
    prev: SimState | None,
    groups: BodyGroups,
    weights: RewardWeights = RewardWeights(),
    dt: float = 1.0 / schema.CONTROL_HZ,
    stability: dict[str, Tensor] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """(reward [N], terms {name: [N]}) with reward == product of the terms. `prev` is the simulated state of
    the previous control step (None right after a reset: the acceleration terms are then 1); `dt` the control
    period; `stability`: the `stability_terms` to multiply in. See the module docstring for each term's
    formula."""
    wd = embodiment_weights(sim.nearest_object_vec, ref.nearest_object_vec, weights.wd_min_dist2)  # [N, 52]
    terms: dict[str, Tensor] = {}
    terms.update(_human_terms(sim, ref, wd, weights, groups))
    terms.update(_object_terms(sim, ref, weights))
    terms["rig"] = _interaction_graph_term(sim, ref, wd, weights)
    terms.update(_contact_terms(sim, ref, weights, groups))
    terms.update(_energy_terms(sim, prev, weights, dt))
    terms.update(stability or {})
    reward = torch.stack(list(terms.values()), dim=0).prod(0)
    return reward, terms
