"""Early termination and timeouts (InterMimic's `compute_humanoid_reset` + `compute_hoi_reset`), pure batched
kernels over N envs (any device; nothing is modified in place).

An episode is **terminated** (no bootstrap) when

* ``fall``: the pelvis is below ``fall_height`` (0.3 m; InterMimic hard-codes it, its yaml value is never read);
* ``body``: the mean position error of the 21 key bodies exceeds ``body_error`` (0.5 m);
* ``object``: the mean position error of the object's surface points exceeds ``object_error`` (0.5 m);
* ``interaction_graph``: for any key body, the body→object vector ``ig`` (nearest surface point) differs from the
  reference's by more than ``ig_ratio`` (2) times ``max(|ig_ref|, ig_floor)`` *or* ``max(|ig|, ig_floor)``
  (ig_floor 0.5 m) - i.e. relative to the smaller of the two lengths, floored;
* ``hand_contact``: a hand that the reference has in contact (any of its 16 bodies labelled +1) has been out of
  contact with the object in simulation for more than ``hand_contact_frames`` (10) consecutive frames;
* ``non_finite``: the simulation diverged this step (the simulator's ``diverged`` mask: NaN, inf or huge state,
  which the simulator has already reset, see `interprior.sim.divergence`), or the simulated root, bodies or object
  hold NaN/inf (InterMimic raises). Such a state says nothing about tracking, so a ``non_finite`` env reports no
  other reason.

The body, object, interaction-graph and hand checks only count once ``progress > start + 1`` (the first frames
after a reset are allowed to settle); the fall and non-finite checks always count. ``timeout`` is separate: the
clip's end or the rollout length is reached, which the learner bootstraps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from interprior.config import require
from interprior import schema
from interprior.assets.embodiment import BodyGroups
from interprior.mdp.metrics import body_position_error, object_point_error, object_point_error_exceeds


@dataclass(frozen=True)
class TerminationConfig:
    fall_height: float = schema.FALL_HEIGHT  # m, pelvis height
    body_error: float = 0.5  # m, mean over the 21 key bodies
    object_error: float = 0.5  # m, mean over the object's surface points
    ig_ratio: float = 2.0
    ig_floor: float = 0.5  # m, the denominators of the interaction-graph ratio never go below this
    hand_contact_frames: int = 10  # terminate when a hand's lost-contact counter exceeds this
    enabled: bool = True  # False: only falls (and non-finite states) end episodes, e.g. for data replay

    def __post_init__(self):
        require(self, positive=("body_error", "object_error", "ig_ratio", "ig_floor", "hand_contact_frames"),
                non_negative=("fall_height",))


# --- single checks: bool [N] -----------------------------------------------------------------------------------
def fallen(sim, cfg: TerminationConfig = TerminationConfig()) -> Tensor:
    """[N] pelvis below `fall_height`."""
    return sim.root_pos[:, 2] < cfg.fall_height


def body_drift(sim, ref, groups: BodyGroups) -> Tensor:
    """[N] mean key-body position error (m)."""
    return body_position_error(sim.body_pos, ref.body_pos, groups.key)


def body_too_far(sim, ref, groups: BodyGroups, cfg: TerminationConfig = TerminationConfig()) -> Tensor:
    """[N] mean key-body position error above `body_error`."""
    return body_drift(sim, ref, groups) > cfg.body_error


def object_drift(sim, ref, points: Tensor) -> Tensor:
    """[N] mean error (m) of the object's surface points (object-frame points [P, 3], or [N, P, 3] per env; object 0
    of the sim)."""
    return object_point_error(sim.obj_pos[:, 0], sim.obj_rot[:, 0], ref.obj_pos, ref.obj_rot, points)


def object_too_far(sim, ref, points: Tensor, cfg: TerminationConfig = TerminationConfig()) -> Tensor:
    """[N] mean object surface-point error above `object_error` (`object_drift` computed only where needed)."""
    return object_point_error_exceeds(sim.obj_pos[:, 0], sim.obj_rot[:, 0], ref.obj_pos, ref.obj_rot, points,
                                      cfg.object_error)


def interaction_graph_ratio(sim, ref, groups: BodyGroups, cfg: TerminationConfig = TerminationConfig()) -> Tensor:
    """[N, K] |ig - ig_ref| / max(min(|ig|, |ig_ref|), ig_floor) per key body: the larger of InterMimic's two
    ratios (one normalised by |ig_ref|, one by |ig|, each floored)."""
    key = list(groups.key)
    ig = sim.nearest_object_vec[:, key]
    ig_ref = ref.nearest_object_vec[:, key].to(ig)
    diff = (ig - ig_ref).norm(dim=-1)
    scale = torch.minimum(ig.norm(dim=-1), ig_ref.norm(dim=-1)).clamp_min(cfg.ig_floor)
    return diff / scale


def interaction_graph_broken(sim, ref, groups: BodyGroups, cfg: TerminationConfig = TerminationConfig()) -> Tensor:
    """[N] any key body whose interaction-graph ratio exceeds `ig_ratio`."""
    return (interaction_graph_ratio(sim, ref, groups, cfg) > cfg.ig_ratio).any(dim=-1)


def hand_contacts(sim, ref, groups: BodyGroups) -> tuple[Tensor, Tensor]:
    """([N, 2] reference hand in contact (any body labelled +1), [N, 2] simulated hand touching the object),
    columns left, right."""
    hands = [list(h) for h in groups.hands]
    ref_hand = torch.stack([(ref.contact[:, h] > 0.5).any(-1) for h in hands], -1).to(sim.object_contact.device)
    sim_hand = torch.stack([sim.object_contact[:, h].any(-1) for h in hands], -1)
    return ref_hand, sim_hand


def update_hand_contact_counter(counter: Tensor, ref_hand_contact: Tensor, sim_hand_contact: Tensor) -> Tensor:
    """[N, 2] consecutive frames each hand has been out of a contact the reference asks for: +1 where the reference
    hand is in contact and the simulated one is not, else back to 0. Returns a new tensor."""
    lost = ref_hand_contact.bool() & ~sim_hand_contact.bool()
    return torch.where(lost, counter + 1, torch.zeros_like(counter))


def hand_contact_lost(counter: Tensor, cfg: TerminationConfig = TerminationConfig()) -> Tensor:
    """[N] either hand's counter above `hand_contact_frames`."""
    return (counter > cfg.hand_contact_frames).any(dim=-1)


def non_finite(sim) -> Tensor:
    """[N] NaN or inf anywhere in the simulated root, body or object poses."""
    parts = (sim.root_pos, sim.root_rot, sim.body_pos.flatten(1), sim.obj_pos.flatten(1), sim.obj_rot.flatten(1))
    return ~torch.stack([torch.isfinite(p).all(dim=-1) for p in parts], -1).all(-1)


# --- combined ----------------------------------------------------------------------------------------------------
def early_termination(sim, ref, counters: Tensor, object_points: Tensor, progress: Tensor, start: Tensor,
                      groups: BodyGroups, thresholds: TerminationConfig = TerminationConfig(),
                      diverged: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor], Tensor]:
    """All checks for one control step. `counters` [N, 2] are the hand lost-contact counters *before* this step;
    they are updated here from this step's contacts and returned. `diverged` [N] bool: envs whose simulation
    diverged this step (`BatchedSim.diverged`).

    -> (terminated [N] bool, reasons {name: bool [N]}, updated counters [N, 2]). Reasons (see the module
    docstring), non_finite first: non_finite, fall, and with `thresholds.enabled` also body, object,
    interaction_graph, hand_contact - those four only where progress > start + 1. A non_finite env has no other
    reason."""
    cfg = thresholds
    ref_hand, sim_hand = hand_contacts(sim, ref, groups)
    counters = update_hand_contact_counter(counters, ref_hand, sim_hand)
    broken = non_finite(sim)
    if diverged is not None:
        broken = broken | diverged.to(broken.device)
    reasons = {"non_finite": broken, "fall": fallen(sim, cfg)}
    if cfg.enabled:
        settled = (progress > start + 1).to(sim.root_pos.device)
        reasons["body"] = settled & body_too_far(sim, ref, groups, cfg)
        reasons["object"] = settled & object_too_far(sim, ref, object_points, cfg)
        reasons["interaction_graph"] = settled & interaction_graph_broken(sim, ref, groups, cfg)
        reasons["hand_contact"] = settled & hand_contact_lost(counters, cfg)
    reasons = {name: hit if name == "non_finite" else hit & ~broken for name, hit in reasons.items()}
    terminated = torch.stack(list(reasons.values()), -1).any(-1)
    return terminated, reasons, counters


def timeout(progress: Tensor, start: Tensor, clip_len: Tensor, max_episode: int) -> Tensor:
    """[N] the clip's last frame is reached (progress >= clip_len - 1) or the episode has run `max_episode` - 1
    control steps (progress - start >= max_episode - 1). Truncation, not termination: bootstrap it."""
    return (progress >= clip_len - 1) | (progress - start >= max_episode - 1)
