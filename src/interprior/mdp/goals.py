"""Stage II goal interface: one masked-residual representation for snapshot, trajectory, contact, composed and full
goals (InterPrior §3 "Goal conditioning"; DESIGN.md §4).

A goal is a short stack of **goal tokens**, one per target time: the short-horizon previews (reference frames
t + 1, t + 2, ... of `GoalLayout.preview_offsets`) and one long-horizon **snapshot** (last token). Each token holds
the same components:

====================  ================  ==================================================================
component             entries           residual to the current simulated state
====================  ================  ==================================================================
body positions        3 per goal body   target − current position of the same body, root heading frame
body rotations        6 per goal body   tan-norm of the world-frame rotation q_target q_current⁻¹ seen in the
                                        root heading frame, minus the identity's tan-norm (0 when matched)
object position      3                  target − current object position, root heading frame
object rotation      6                  as body rotations, for the object
contacts             1 per contact      target contact (label +1 → 1, −1 → 0) − current object contact
                     body
====================  ================  ==================================================================

A boolean **bit** per component group (per body: position, rotation; object: position, rotation; per contact
body: contact) says which components are *given*. Given entries are the residuals, hidden entries are exactly zero,
and the bits are an input too. Full-reference tracking is every bit on. Reference contact labels 0 ("unknown")
can never be given: `build_goal` clears those bits.

Everything here is a pure function of batched tensors (any device); `GoalLayout` only fixes sizes and index maps.
The stateful per-env goal schedule (which bits, when the snapshot is) lives in `interprior.mdp.goal_masks`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

import torch
from torch import Tensor

from interprior import schema
from interprior.assets.embodiment import BodyGroups
from interprior.errors import InterpriorError
from interprior.mdp.observations import heading_cos_sin, tan_norm
from interprior.mdp.types import RefState
from interprior.rotations import quat_conj, quat_mul

# tan-norm of the identity rotation: subtracted so that a matched rotation is a zero residual
IDENTITY_TAN_NORM = (1.0, 0.0, 0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class GoalLayout:
    """Which bodies can be constrained and at which preview offsets; every size and index map derives from it.

    The defaults constrain the 22 non-finger bodies (pelvis + the 21 key bodies: finger poses follow from the
    wrist and from contact goals; the CPU humanoid has rigid fingers) and the 31 contact bodies."""

    bodies: tuple[int, ...] = schema.NOHAND_BODIES
    contact_bodies: tuple[int, ...] = schema.CONTACT_BODIES
    preview_offsets: tuple[int, ...] = (1, 2, 4, 8)  # frames ahead of the current reference frame
    hands: tuple[int, ...] = schema.WRIST_BODIES  # the goal bodies hand goals constrain (left, right)

    def __post_init__(self):
        if not self.bodies or not self.preview_offsets or min(self.preview_offsets) < 1:
            raise ValueError(f"GoalLayout needs bodies and preview offsets >= 1, got {self}")
        if not self.hands or any(h not in self.bodies for h in self.hands):
            raise ValueError(f"GoalLayout hands {self.hands} must be goal bodies")

    @classmethod
    def for_body(cls, groups: BodyGroups, preview_offsets: tuple[int, ...] = (1, 2, 4, 8)) -> "GoalLayout":
        """The layout of a body: the root and its key bodies as goal bodies, its contact bodies, its wrists as
        hands (SMPL-X: exactly the defaults)."""
        return cls(bodies=(0,) + tuple(groups.key), contact_bodies=tuple(groups.contact),
                   preview_offsets=tuple(preview_offsets), hands=(groups.left_hand[0], groups.right_hand[0]))

    def for_groups(self, groups: BodyGroups) -> "GoalLayout":
        """This layout on a body: the SMPL-X default layout on another body means that body's own
        (`for_body`, these preview offsets); any layout naming bodies the body lacks is an error."""
        if groups.num_bodies != schema.NUM_BODIES and self == GoalLayout(preview_offsets=self.preview_offsets):
            return GoalLayout.for_body(groups, self.preview_offsets)
        if max(self.bodies + self.contact_bodies) >= groups.num_bodies:
            raise InterpriorError(f"goals: the layout names body {max(self.bodies + self.contact_bodies)}; the "
                                  f"run's body has {groups.num_bodies} (leave goals.* at the default for its own)")
        return self

    @property
    def hand_slots(self) -> tuple[int, ...]:
        """Positions of the hands in `bodies`."""
        return tuple(self.bodies.index(h) for h in self.hands)

    # --- sizes ------------------------------------------------------------------------------------------------
    @property
    def num_bodies(self) -> int:
        return len(self.bodies)

    @property
    def num_contacts(self) -> int:
        return len(self.contact_bodies)

    @property
    def num_previews(self) -> int:
        return len(self.preview_offsets)

    @property
    def num_tokens(self) -> int:
        """Previews plus the one snapshot (the last token)."""
        return self.num_previews + 1

    @property
    def feature_size(self) -> int:
        """Residual entries per token."""
        return 9 * self.num_bodies + 9 + self.num_contacts

    @property
    def bit_size(self) -> int:
        """Mask bits per token."""
        return 2 * self.num_bodies + 2 + self.num_contacts

    # --- layouts ----------------------------------------------------------------------------------------------
    @cached_property
    def feature_slices(self) -> dict[str, slice]:
        b, c = self.num_bodies, self.num_contacts
        return _slices((("body_pos", 3 * b), ("body_rot", 6 * b), ("obj_pos", 3), ("obj_rot", 6), ("contact", c)))

    @cached_property
    def bit_slices(self) -> dict[str, slice]:
        b, c = self.num_bodies, self.num_contacts
        return _slices((("body_pos", b), ("body_rot", b), ("obj_pos", 1), ("obj_rot", 1), ("contact", c)))

    @cached_property
    def entry_group(self) -> Tensor:
        """[feature_size] long: the bit that governs each residual entry."""
        b, c = self.num_bodies, self.num_contacts
        bit = self.bit_slices
        return torch.cat([
            torch.arange(b).repeat_interleave(3) + bit["body_pos"].start,
            torch.arange(b).repeat_interleave(6) + bit["body_rot"].start,
            torch.full((3,), bit["obj_pos"].start),
            torch.full((6,), bit["obj_rot"].start),
            torch.arange(c) + bit["contact"].start,
        ])


def _slices(parts) -> dict[str, slice]:
    out, start = {}, 0
    for name, size in parts:
        out[name] = slice(start, start + size)
        start += size
    return out


def entry_mask(bits: Tensor, layout: GoalLayout) -> Tensor:
    """[..., feature_size] (bits' dtype): each residual entry's bit."""
    return bits.index_select(-1, layout.entry_group.to(bits.device))


# --- residual kernels --------------------------------------------------------------------------------------------
def _rotate_to_heading(v: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """World vectors v [N, ...,  3] into the heading frame; cos/sin [N] broadcast over the middle dimensions."""
    shape = (-1,) + (1,) * (v.dim() - 2)
    c, s = cos.reshape(shape), sin.reshape(shape)
    x, y = v[..., 0], v[..., 1]
    return torch.stack([c * x + s * y, c * y - s * x, v[..., 2]], dim=-1)


def _yaw_quat(cos: Tensor, sin: Tensor) -> Tensor:
    """[N, 4] yaw-only quaternion of the heading (from cos/sin of the yaw, half-angle formulas)."""
    yaw = torch.atan2(sin, cos)
    zero = torch.zeros_like(yaw)
    return torch.stack([torch.cos(0.5 * yaw), zero, zero, torch.sin(0.5 * yaw)], dim=-1)


def rotation_residual(q_current: Tensor, q_target: Tensor, heading: Tensor) -> Tensor:
    """[..., 6]: tan-norm of h⁻¹ (q_target q_current⁻¹) h minus the identity's; h [N, 4] the root heading,
    broadcast over the middle dimensions of q [N, ..., 4]. Zero when the rotations match; unchanged by a common
    yaw of everything (the world-frame difference is seen in the heading frame)."""
    h = heading.reshape((heading.shape[0],) + (1,) * (q_current.dim() - 2) + (4,))
    world_delta = quat_mul(q_target, quat_conj(q_current))
    local = quat_mul(quat_mul(quat_conj(h), world_delta), h)
    return tan_norm(local) - local.new_tensor(IDENTITY_TAN_NORM)


def goal_residuals(sim, ref: RefState, layout: GoalLayout) -> Tensor:
    """[N, K, feature_size]: every component's residual to the current state (nothing masked yet).

    `sim` is a `SimState` (object 0 is the goal object); `ref` a `RefState` whose fields carry a token dimension
    ([N, K, ...], see `reference_frames`)."""
    n, k = ref.root_pos.shape[:2]
    dt = sim.root_pos.dtype
    cos, sin = (t[:, 0] for t in heading_cos_sin(sim.root_rot))
    heading = _yaw_quat(cos, sin)
    bodies = torch.as_tensor(layout.bodies, device=sim.root_pos.device)
    contacts = torch.as_tensor(layout.contact_bodies, device=sim.root_pos.device)

    body_pos = ref.body_pos.index_select(2, bodies).to(dt) - sim.body_pos.index_select(1, bodies)[:, None]
    body_rot = rotation_residual(sim.body_rot.index_select(1, bodies)[:, None].expand(-1, k, -1, -1),
                                 ref.body_rot.index_select(2, bodies).to(dt), heading)
    obj_pos = ref.obj_pos.to(dt) - sim.obj_pos[:, None, 0]
    obj_rot = rotation_residual(sim.obj_rot[:, None, 0].expand(-1, k, -1), ref.obj_rot.to(dt), heading)
    target_contact = (ref.contact.index_select(2, contacts) > 0).to(dt)
    contact = target_contact - sim.object_contact.index_select(1, contacts).to(dt)[:, None]
    return torch.cat([
        _rotate_to_heading(body_pos, cos, sin).reshape(n, k, -1),
        body_rot.reshape(n, k, -1),
        _rotate_to_heading(obj_pos, cos, sin),
        obj_rot,
        contact,
    ], dim=-1)


def defined_bits(ref: RefState, layout: GoalLayout) -> Tensor:
    """[N, K, bit_size] bool: the components the reference defines (all but contacts labelled 0, "unknown")."""
    n, k = ref.root_pos.shape[:2]
    bits = torch.ones(n, k, layout.bit_size, dtype=torch.bool, device=ref.root_pos.device)
    contacts = torch.as_tensor(layout.contact_bodies, device=ref.root_pos.device)
    bits[..., layout.bit_slices["contact"]] = ref.contact.index_select(2, contacts) != 0
    return bits


@dataclass
class Goal:
    """A batch of goals, N envs × K tokens.

    full  [N, K, F]  every defined residual (the full reference; zero where undefined): what the training-only
                     encoder sees and what the decoder reconstructs
    bits  [N, K, G]  bool, the given components (a subset of `defined`)
    defined [N, K, G] bool, components the reference defines
    time  [N, K]     seconds from now to each token's target time
    """

    full: Tensor
    bits: Tensor
    defined: Tensor
    time: Tensor
    layout: GoalLayout

    def features(self) -> Tensor:
        """[N, K, F] the masked residual: given entries are residuals, hidden entries exactly zero."""
        return self.full * entry_mask(self.bits, self.layout).to(self.full.dtype)

    def hidden_entries(self) -> Tensor:
        """[N, K, F] bool: entries the reference defines but the goal hides (what reconstruction is scored on)."""
        return entry_mask(self.defined & ~self.bits, self.layout)

    def padding(self) -> Tensor:
        """[N, K] bool: tokens with no given component (padded out of the prior's attention)."""
        return ~self.bits.any(dim=-1)

    def with_bits(self, bits: Tensor) -> "Goal":
        """The same targets with other given components (kept inside `defined`)."""
        return Goal(self.full, bits & self.defined, self.defined, self.time, self.layout)

    def hidden(self) -> "Goal":
        """The zero goal: nothing given (the goal-ignoring baseline)."""
        return self.with_bits(torch.zeros_like(self.bits))

    def index(self, ids: Tensor) -> "Goal":
        return Goal(self.full[ids], self.bits[ids], self.defined[ids], self.time[ids], self.layout)


def build_goal(sim, ref: RefState, bits: Tensor, time: Tensor, layout: GoalLayout) -> Goal:
    """Goal for requested `bits` [N, K, G] (bool) at reference frames `ref` ([N, K, ...] fields) with time offsets
    `time` [N, K] (s). Requested bits of undefined components (unknown contact labels) are cleared."""
    defined = defined_bits(ref, layout)
    full = goal_residuals(sim, ref, layout) * entry_mask(defined, layout).to(sim.root_pos.dtype)
    return Goal(full=full, bits=bits.to(defined.device) & defined, defined=defined,
                time=time.to(full), layout=layout)


def reference_frames(reference, clip_ids: Tensor, frames: Tensor, device=None) -> RefState:
    """Gather reference states at `frames` [N, K] of `clip_ids` [N] from a `MotionLibrary` (frames past a clip's
    end repeat its last frame) as a `RefState` whose fields are [N, K, ...]."""
    n, k = frames.shape
    flat = reference.state(clip_ids.reshape(n, 1).expand(n, k).reshape(-1), frames.reshape(-1), device)
    return RefState(**{f.name: getattr(flat, f.name).reshape((n, k) + getattr(flat, f.name).shape[1:])
                       for f in fields(flat)})
