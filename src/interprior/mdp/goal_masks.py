"""Which goal components are given, per env: mask sampling for training and the per-env goal schedule.

Goal types (InterPrior Table 1; MaskedMimic's masking as the starting distribution, protomotions facts §4.1):

* ``full``       every bit of every token (full-reference tracking);
* ``snapshot``   the long-horizon snapshot token only: 1..`max_bodies` bodies (each position, rotation or both)
                 and, with `object_prob`, the object position (and with `object_rotation_prob` its rotation);
* ``trajectory`` the same body/object selection on every short-horizon preview token (a path to follow);
* ``contact``    contact bits of a random subset of the contact bodies on every token;
* ``composed``   the union of two different sparse types above;
* ``object``     the object only: its position (with `object_rotation_prob` also its rotation), as a snapshot or,
                 with `object_path_prob`, along a path (every preview token): "put the box there", "move it so";
* ``hand``       wrist positions only, one hand or (with `both_hands_prob`) both, as a snapshot or, with
                 `hand_path_prob`, along a path: "reach there".

Evaluation also names ``object_path``: the object type with every goal a path (`restricted_to`).

`MaskSampling`'s numbers are exactly the ones `sample_bits` uses. A goal is drawn when an episode starts and again
(unless kept, `repeat_prob`) whenever its snapshot target time is reached.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from interprior.config import require
from interprior.mdp.goals import GoalLayout

GOAL_TYPES: tuple[str, ...] = ("full", "snapshot", "trajectory", "contact", "composed", "object", "hand")
SPARSE_TYPES: tuple[str, ...] = ("snapshot", "trajectory", "contact")
EVAL_GOAL_TYPES: tuple[str, ...] = (*GOAL_TYPES, "object_path")  # object_path: object goals, always a path
# the MaskSampling field holding each type's probability
TYPE_PROB_FIELDS = {"full": "full_prob", "snapshot": "snapshot_prob", "trajectory": "trajectory_prob",
                    "contact": "contact_prob", "composed": "composed_prob", "object": "object_goal_prob",
                    "hand": "hand_goal_prob"}


@dataclass
class MaskSampling:
    # probabilities of the goal types, in GOAL_TYPES order (must sum to 1)
    full_prob: float = 0.15
    snapshot_prob: float = 0.25
    trajectory_prob: float = 0.2
    contact_prob: float = 0.1
    composed_prob: float = 0.1
    object_goal_prob: float = 0.12
    hand_goal_prob: float = 0.08
    # body selection of snapshot and trajectory goals
    max_bodies: int = 3  # number of constrained bodies uniform in 1..max_bodies ...
    all_bodies_prob: float = 0.1  # ... or, with this probability, every goal body
    position_only_prob: float = 0.5  # per constrained body: position only, rotation only, or both (the rest)
    rotation_only_prob: float = 0.2
    object_prob: float = 0.5  # snapshot/trajectory goals also give the object position
    object_rotation_prob: float = 0.5  # ... and, given the position, the object rotation
    contact_body_prob: float = 0.3  # contact goals: each contact body independently (at least one)
    repeat_prob: float = 0.8  # on reaching a snapshot target, keep the same bits for the next one
    snapshot_frames: tuple[int, int] = (15, 90)  # snapshot target time ahead, frames, uniform (both inclusive)
    object_path_prob: float = 0.5  # object goals: a path (every preview token) instead of a snapshot
    both_hands_prob: float = 0.5  # hand goals: both wrists instead of one
    hand_path_prob: float = 0.3  # hand goals: a path instead of a snapshot

    def __post_init__(self):
        require(self, positive=("max_bodies", "snapshot_frames"),
                fraction=(*TYPE_PROB_FIELDS.values(), "all_bodies_prob", "position_only_prob", "rotation_only_prob",
                          "object_prob", "object_rotation_prob", "contact_body_prob", "repeat_prob",
                          "object_path_prob", "both_hands_prob", "hand_path_prob"))

    def type_probs(self) -> Tensor:
        p = torch.tensor([getattr(self, TYPE_PROB_FIELDS[t]) for t in GOAL_TYPES], dtype=torch.float64)
        if (p < 0).any() or abs(float(p.sum()) - 1.0) > 1e-6:
            raise ValueError(f"goal type probabilities must be >= 0 and sum to 1, got {p.tolist()}")
        return p

    def restricted_to(self, goal_type: str) -> "MaskSampling":
        """The same sampling with only goal type `goal_type` (evaluation): object and hand goals are then
        snapshots, `object_path` object paths."""
        if goal_type not in EVAL_GOAL_TYPES:
            raise ValueError(f"unknown goal type {goal_type!r}; choose from {', '.join(EVAL_GOAL_TYPES)}")
        kind = "object" if goal_type == "object_path" else goal_type
        return replace(self, object_path_prob=float(goal_type == "object_path"), hand_path_prob=0.0,
                       **{TYPE_PROB_FIELDS[t]: float(t == kind) for t in GOAL_TYPES})


def _body_object_bits(n: int, layout: GoalLayout, s: MaskSampling, g: torch.Generator) -> Tensor:
    """[n, G] bool: a body (and maybe object) selection for snapshot/trajectory goals."""
    b = layout.num_bodies
    count = torch.randint(1, max(1, min(s.max_bodies, b)) + 1, (n,), generator=g)
    count = torch.where(torch.rand(n, generator=g) < s.all_bodies_prob, torch.full_like(count, b), count)
    rank = torch.rand(n, b, generator=g).argsort(dim=1).argsort(dim=1)  # a random permutation per env
    chosen = rank < count[:, None]
    kind = torch.rand(n, b, generator=g)
    pos = chosen & (kind >= s.rotation_only_prob)  # position only or both
    rot = chosen & ((kind < s.rotation_only_prob) | (kind >= s.rotation_only_prob + s.position_only_prob))
    obj_pos = torch.rand(n, generator=g) < s.object_prob
    obj_rot = obj_pos & (torch.rand(n, generator=g) < s.object_rotation_prob)
    bits = torch.zeros(n, layout.bit_size, dtype=torch.bool)
    sl = layout.bit_slices
    bits[:, sl["body_pos"]], bits[:, sl["body_rot"]] = pos, rot
    bits[:, sl["obj_pos"].start], bits[:, sl["obj_rot"].start] = obj_pos, obj_rot
    return bits


def _contact_bits(n: int, layout: GoalLayout, s: MaskSampling, g: torch.Generator) -> Tensor:
    c = layout.num_contacts
    on = torch.rand(n, c, generator=g) < s.contact_body_prob
    forced = torch.randint(c, (n,), generator=g)  # never an empty contact goal
    on[torch.arange(n), forced] = True
    bits = torch.zeros(n, layout.bit_size, dtype=torch.bool)
    bits[:, layout.bit_slices["contact"]] = on
    return bits


def _on_snapshot_or_path(token_bits: Tensor, path: Tensor, k: int) -> Tensor:
    """[n, K, G]: `token_bits` [n, G] on the snapshot token, or where `path` [n], on every preview token."""
    bits = token_bits[:, None].expand(-1, k, -1).clone()
    bits[:, :-1] &= path[:, None, None]
    bits[:, -1] &= ~path[:, None]
    return bits


def _object_goal_bits(n: int, layout: GoalLayout, s: MaskSampling, g: torch.Generator) -> Tensor:
    """[n, K, G] object goals: position (and maybe rotation), as a snapshot or a path."""
    token = torch.zeros(n, layout.bit_size, dtype=torch.bool)
    token[:, layout.bit_slices["obj_pos"].start] = True
    token[:, layout.bit_slices["obj_rot"].start] = torch.rand(n, generator=g) < s.object_rotation_prob
    return _on_snapshot_or_path(token, torch.rand(n, generator=g) < s.object_path_prob, layout.num_tokens)


def _hand_goal_bits(n: int, layout: GoalLayout, s: MaskSampling, g: torch.Generator) -> Tensor:
    """[n, K, G] hand goals: one wrist position (either, uniform) or both, as a snapshot or a path."""
    slots = torch.as_tensor(layout.hand_slots)
    both = torch.rand(n, generator=g) < s.both_hands_prob
    one = torch.randint(len(slots), (n,), generator=g)
    chosen = both[:, None] | (torch.arange(len(slots))[None] == one[:, None])
    token = torch.zeros(n, layout.bit_size, dtype=torch.bool)
    token[:, layout.bit_slices["body_pos"].start + slots] = chosen
    return _on_snapshot_or_path(token, torch.rand(n, generator=g) < s.hand_path_prob, layout.num_tokens)


def _sparse_bits(kind: str, n: int, layout: GoalLayout, s: MaskSampling, g: torch.Generator) -> Tensor:
    """[n, K, G] bits of one sparse goal type."""
    k = layout.num_tokens
    bits = torch.zeros(n, k, layout.bit_size, dtype=torch.bool)
    if kind == "snapshot":
        bits[:, -1] = _body_object_bits(n, layout, s, g)
    elif kind == "trajectory":
        bits[:, :-1] = _body_object_bits(n, layout, s, g)[:, None]
    else:  # contact
        bits[:] = _contact_bits(n, layout, s, g)[:, None]
    return bits


def sample_goal_types(n: int, s: MaskSampling, g: torch.Generator) -> Tensor:
    """[n] long indices into GOAL_TYPES."""
    return torch.multinomial(s.type_probs(), n, replacement=True, generator=g)


def sample_bits(types: Tensor, layout: GoalLayout, s: MaskSampling, g: torch.Generator) -> Tensor:
    """[n, K, G] bool requested bits for goal types `types` [n] (indices into GOAL_TYPES). Every sparse type is drawn
    for every env and selected by type: batched, and the random stream does not depend on the type mix."""
    n = types.shape[0]
    sparse = {kind: _sparse_bits(kind, n, layout, s, g) for kind in SPARSE_TYPES}
    # composed: two different sparse types, chosen by index pairs
    pairs = torch.tensor([[0, 1], [0, 2], [1, 2]])[torch.randint(3, (n,), generator=g)]
    stacked = torch.stack([sparse[k] for k in SPARSE_TYPES], dim=1)  # [n, 3, K, G]
    rows = torch.arange(n)
    composed = stacked[rows, pairs[:, 0]] | stacked[rows, pairs[:, 1]]
    full = torch.ones_like(composed)
    # drawn after the older types: their random stream is the same as before these types existed
    obj, hand = _object_goal_bits(n, layout, s, g), _hand_goal_bits(n, layout, s, g)
    options = torch.stack([full, sparse["snapshot"], sparse["trajectory"], sparse["contact"], composed, obj, hand],
                          dim=1)
    return options[rows, types.cpu()]


class GoalSchedule:
    """Per-env goal state: the requested bits [N, K, G] and the snapshot target frame [N].

    Preview tokens look `layout.preview_offsets` frames ahead of the env's reference frame; the snapshot token at
    `snapshot_frame`, which is redrawn `snapshot_frames` ahead once reached (its bits kept with `repeat_prob`).
    Target frames are clamped to the clip's last frame. `fixed_bits` (optional [K, G]) overrides the sampling,
    e.g. for user control."""

    def __init__(self, num_envs: int, layout: GoalLayout, sampling: MaskSampling, fps: float,
                 generator: torch.Generator | None = None, fixed_bits: Tensor | None = None):
        self.layout, self.sampling, self.fps = layout, sampling, float(fps)
        self.generator = generator or torch.Generator().manual_seed(0)
        self.fixed_bits = None if fixed_bits is None else fixed_bits.bool().cpu()
        self.types = torch.zeros(num_envs, dtype=torch.long)
        self.bits = torch.zeros(num_envs, layout.num_tokens, layout.bit_size, dtype=torch.bool)
        self.snapshot_frame = torch.zeros(num_envs, dtype=torch.long)
        self._offsets = torch.as_tensor(layout.preview_offsets, dtype=torch.long)

    def _draw(self, ids: Tensor) -> None:
        if len(ids) == 0:
            return
        if self.fixed_bits is not None:
            self.bits[ids] = self.fixed_bits
            return
        self.types[ids] = sample_goal_types(len(ids), self.sampling, self.generator)
        self.bits[ids] = sample_bits(self.types[ids], self.layout, self.sampling, self.generator)

    def _draw_snapshot(self, ids: Tensor, frames: Tensor, last: Tensor) -> None:
        lo, hi = self.sampling.snapshot_frames
        ahead = torch.randint(int(lo), int(hi) + 1, (len(ids),), generator=self.generator)
        self.snapshot_frame[ids] = torch.minimum(frames + ahead, last)

    def reset(self, ids: Tensor, frames: Tensor, last: Tensor) -> None:
        """New episodes for envs `ids` now at reference `frames`, clips ending at frame `last` (all [n], CPU)."""
        if len(ids) == 0:
            return
        self._draw(ids)
        self._draw_snapshot(ids, frames, last)

    def advance(self, frames: Tensor, last: Tensor) -> Tensor:
        """Before acting at reference `frames` [N]: redraw reached snapshots. -> the env ids that were redrawn."""
        reached = (frames >= self.snapshot_frame).nonzero().flatten()
        if len(reached):
            change = reached[torch.rand(len(reached), generator=self.generator) >= self.sampling.repeat_prob]
            self._draw(change)
            self._draw_snapshot(reached, frames[reached], last[reached])
        return reached

    def target_frames(self, frames: Tensor, last: Tensor) -> Tensor:
        """[N, K] reference frames of the tokens (previews, then the snapshot), clamped to the clip's end."""
        previews = frames[:, None] + self._offsets
        targets = torch.cat([previews, self.snapshot_frame[:, None]], dim=1)
        return torch.minimum(targets, last[:, None])

    def times(self, frames: Tensor, targets: Tensor) -> Tensor:
        """[N, K] seconds from `frames` to the token targets."""
        return (targets - frames[:, None]).float() / self.fps
