"""Early termination and timeouts (InterMimic's interaction early termination), pure batched kernels.

`early_termination` ends an episode when the humanoid falls (pelvis < 0.3 m), the key bodies drift more than 0.5 m
on average, the object's surface points drift more than 0.5 m on average, the interaction graph is off by more
than a factor 2, or a hand the reference has in contact has been out of contact for more than 10 frames.
The non-height checks start only after the first frames of an episode (progress > start + 1). Timeouts are
separate: the learner bootstraps them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from interprior import schema
from interprior.data.convert import object_points_world

KEY = list(schema.KEY_BODIES)
HANDS = (list(schema.LEFT_HAND), list(schema.RIGHT_HAND))


@dataclass(frozen=True)
class TerminationConfig:
    fall_height: float = schema.FALL_HEIGHT
    body_error: float = 0.5  # m, mean over key bodies
    object_error: float = 0.5  # m, mean over surface points
    ig_ratio: float = 2.0
    ig_floor: float = 0.5  # m, denominators never below this
    hand_contact_frames: int = 10
    enabled: bool = True  # False: only falls end episodes (e.g. for data replay)


def fallen(sim, cfg: TerminationConfig) -> Tensor:
    return sim.root_pos[:, 2] < cfg.fall_height


def body_drift(sim, ref) -> Tensor:
    """[N] mean key-body position error (m)."""
    return (sim.body_pos[:, KEY] - ref.body_pos[:, KEY]).norm(dim=-1).mean(-1)


def object_drift(sim, ref, points: Tensor) -> Tensor:
    """[N] mean error of the object's surface points (m)."""
    pts = points.to(sim.obj_pos)
    sim_pts = object_points_world(sim.obj_pos[:, 0], sim.obj_rot[:, 0], pts)
    ref_pts = object_points_world(ref.obj_pos.to(pts), ref.obj_rot.to(pts), pts)
    return (sim_pts - ref_pts).norm(dim=-1).mean(-1)


def interaction_graph_broken(sim, ref, cfg: TerminationConfig) -> Tensor:
    """[N] any key body whose body→object vector differs from the reference's by more than `ig_ratio` times the
    larger of either length and `ig_floor`."""
    ig, ig_ref = sim.nearest_object_vec[:, KEY], ref.nearest_object_vec[:, KEY].to(sim.nearest_object_vec)
    diff = (ig - ig_ref).norm(dim=-1)
    scale = torch.maximum(ig.norm(dim=-1), ig_ref.norm(dim=-1)).clamp_min(cfg.ig_floor)
    return (diff / scale > cfg.ig_ratio).any(dim=-1)


def hand_contacts(sim, ref) -> tuple[Tensor, Tensor]:
    """([N, 2] reference hand in contact, [N, 2] simulated hand touching the object) for left, right."""
    ref_hand = torch.stack([(ref.contact[:, h] > 0.5).any(-1) for h in HANDS], -1)
    sim_hand = torch.stack([sim.object_contact[:, h].any(-1) for h in HANDS], -1)
    return ref_hand, sim_hand


def update_hand_contact_counter(counter: Tensor, ref_hand_contact: Tensor, sim_hand_contact: Tensor) -> Tensor:
    """Consecutive frames each hand has been out of a contact the reference asks for; reset when it touches or
    the reference releases."""
    lost = ref_hand_contact & ~sim_hand_contact
    return torch.where(lost, counter + 1, torch.zeros_like(counter))


def early_termination(sim, ref, counter: Tensor, points: Tensor, progress: Tensor, start: Tensor,
                      cfg: TerminationConfig = TerminationConfig()) -> tuple[Tensor, dict[str, Tensor], Tensor]:
    """-> (terminated [N], reasons {name: bool [N]}, updated hand counter [N, 2])."""
    ref_hand, sim_hand = hand_contacts(sim, ref)
    counter = update_hand_contact_counter(counter, ref_hand, sim_hand)
    reasons = {"fall": fallen(sim, cfg)}
    if cfg.enabled:
        settled = progress > start + 1
        reasons["body"] = settled & (body_drift(sim, ref) > cfg.body_error)
        reasons["object"] = settled & (object_drift(sim, ref, points) > cfg.object_error)
        reasons["interaction_graph"] = settled & interaction_graph_broken(sim, ref, cfg)
        reasons["hand_contact"] = settled & (counter > cfg.hand_contact_frames).any(-1)
    terminated = torch.stack(list(reasons.values()), -1).any(-1)
    return terminated, reasons, counter


def timeout(frame: Tensor, start: Tensor, clip_len: Tensor, max_episode: int) -> Tensor:
    """[N] the clip's last frame is reached or the episode is `max_episode` control steps long."""
    return (frame >= clip_len - 1) | (frame - start >= max_episode - 1)
