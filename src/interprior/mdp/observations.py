"""Stage I tracking observation: one block per reference offset (1599 values each), InterMimic's layout.

Pure, batched, device-agnostic torch kernels: no simulator, no Python loops over envs or bodies. The inputs are a
`SimState` (use object 0 of K) and one or more `RefState`s (the reference at future frames, e.g. t+1 and t+16).

Conventions (see `reference/intermimic-code-facts.md` §5 and §12):

* **Heading frame.** Every direction-dependent quantity is expressed in the yaw-only frame of the *simulated*
  root (`heading_cos_sin` / `to_heading`), positions relative to the simulated root. Root height (block 0) is
  absolute. Rotating the whole world (sim and reference together) about z and translating it horizontally leaves
  the observation unchanged.
* **6-D rotations** are InterMimic's "tan-norm": the rotated x axis then the rotated z axis, i.e. the first and
  the *third* column of the rotation matrix (`tan_norm`). The identity maps to (1, 0, 0, 0, 0, 1).
* **Relative rotations** are body-frame differences ``q_ref⁻¹ ⊗ q_sim`` (R_ref^T R_sim). They are frame
  independent already, so — unlike the reference code — they are *not* conjugated by the heading rotation
  afterwards (conjugating a body-frame difference by the heading makes it depend on the world yaw, which breaks
  the heading invariance). Equal rotations give the identity tan-norm (1, 0, 0, 0, 0, 1), not zeros.
* **Contact flags** are the simulated *object* contacts (`SimState.object_contact`) of the 31 contact bodies, so
  they mean the same thing as the reference labels (§12: the reference code counted any contact, ground
  included). The contact diff is ``ref * ((ref + 1) / 2 - contact)``: 0 where the label is 0 or is matched,
  +1 for a missed promoted contact, +1 for an unwanted contact on a "−1" body.
* **Interaction graph** features are ``v / |v| * exp(-5 |v|)`` of ``nearest_object_vec`` (body → nearest object
  surface point). Each state's vectors are expressed in *its own* root heading frame, as in the reference code
  (whose loader stores the reference ig in the reference heading frame): the ig diff then measures the mismatch
  of the local human–object arrangement, while global misplacement is covered by the position diffs.
* **Quirk fix (§12):** the 63 values the reference code named ``local_ref_body_pos`` held the *simulated*
  key-body positions (a duplicate of block ``body_pos``). Here block ``ref_key_pos`` holds the *reference*
  key-body positions relative to the simulated root, in the simulated heading frame.

Quaternions are wxyz and must be unit length (they are not re-normalised here).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from interprior.assets.embodiment import BodyGroups
from interprior.mdp.types import RefState
from interprior.sim.batched import SimState

IG_DECAY = 5.0  # ig feature v/|v| * exp(-IG_DECAY |v|)


def observation_layout(groups: BodyGroups) -> tuple[tuple[str, int], ...]:
    """Ordered (name, size) blocks of one reference block; the sizes come from the body's groups (1599 values for
    the SMPL-X humanoid)."""
    nb, nk, nr, nc = groups.num_bodies, len(groups.key), len(groups.rotation), len(groups.contact)
    return (
        ("root_height", 1),             # sim root z (absolute)
        ("body_pos", 3 * (nb - 1)),     # sim bodies 1.. relative to the sim root
        ("body_rot", 6 * nb),           # sim body rotations, tan-norm
        ("body_linvel", 3 * nb),        # sim body linear velocities
        ("body_angvel", 3 * nb),        # sim body angular velocities
        ("contact", nc),                # sim object-contact flags of the contact bodies
        ("diff_key_pos", 3 * nk),       # ref − sim key-body positions
        ("diff_nohand_rot", 6 * nr),    # tan-norm of q_ref⁻¹ q_sim, rotation-tracked bodies
        ("diff_contact", nc),           # ref * ((ref + 1) / 2 − contact)
        ("ref_key_pos", 3 * nk),        # ref key-body positions relative to the sim root (quirk fixed)
        ("ref_nohand_rot", 6 * nr),     # ref rotations of the rotation-tracked bodies, tan-norm
        ("diff_key_linvel", 3 * nk),    # ref − sim key-body linear velocities
        ("diff_nohand_angvel", 3 * nr),  # ref − sim angular velocities of the rotation-tracked bodies
        ("obj_linvel", 3),              # sim object linear velocity
        ("obj_angvel", 3),              # sim object angular velocity
        ("diff_obj_pos", 3),            # ref − sim object position
        ("diff_obj_rot", 6),            # tan-norm of q_ref_obj⁻¹ q_sim_obj
        ("diff_obj_linvel", 3),         # ref − sim object linear velocity
        ("diff_obj_angvel", 3),         # ref − sim object angular velocity
        ("ig", 3 * nb),                 # sim interaction-graph features, all bodies
        ("diff_ig", 3 * nk),            # ref − sim interaction-graph features, key bodies
    )


def observation_block_size(groups: BodyGroups) -> int:
    return sum(size for _, size in observation_layout(groups))


def _slices(layout: Sequence[tuple[str, int]]) -> dict[str, slice]:
    out, start = {}, 0
    for name, size in layout:
        out[name] = slice(start, start + size)
        start += size
    return out


def observation_slices(groups: BodyGroups) -> dict[str, slice]:
    return _slices(observation_layout(groups))


# Blocks that depend on the simulated state only (identical in every reference block of one observation).
SIM_ONLY_BLOCKS: tuple[str, ...] = (
    "root_height", "body_pos", "body_rot", "body_linvel", "body_angvel", "contact", "obj_linvel", "obj_angvel", "ig",
)


def repeated_columns(groups: BodyGroups, offsets: Sequence[int] = (1, 16)) -> Tensor:
    """[observation size] long: for each column of a tracking observation, the first column that always holds the
    same value (the `SIM_ONLY_BLOCKS` of every reference block repeat the first block's); a column's own index
    otherwise. For `ActorCritic.share_input_columns`."""
    block, where = observation_block_size(groups), observation_slices(groups)
    source = torch.arange(len(offsets) * block)
    for r in range(1, len(offsets)):
        for name in SIM_ONLY_BLOCKS:
            s = where[name]
            source[r * block + s.start : r * block + s.stop] = torch.arange(s.start, s.stop)
    return source


def observation_size(groups: BodyGroups, offsets: Sequence[int] = (1, 16)) -> int:
    """Length of a tracking observation with one block per reference offset (3198 for SMPL-X and the teacher's
    (1, 16))."""
    return len(offsets) * observation_block_size(groups)


# --- small shared kernels ----------------------------------------------------------------------------------------
def heading_cos_sin(root_rot: Tensor) -> tuple[Tensor, Tensor]:
    """cos and sin [N, 1] of the root yaw (same yaw as `rotations.heading_quat_inverse`: atan2 of the rotated
    x axis)."""
    w, x, y, z = root_rot[:, None, :].unbind(-1)
    yaw = torch.atan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (y * y + z * z))
    return torch.cos(yaw), torch.sin(yaw)


def to_heading(v: Tensor, cos_sin: tuple[Tensor, Tensor]) -> Tensor:
    """Rotate world vectors v [N, K, 3] into the heading frame (by −yaw about z); cos/sin from `heading_cos_sin`.
    Element-wise (faster than a batched 3×3 matmul on CPU)."""
    c, s = cos_sin
    x, y = v[..., 0], v[..., 1]
    out = torch.empty_like(v)
    out[..., 0] = c * x + s * y
    out[..., 1] = c * y - s * x
    out[..., 2] = v[..., 2]
    return out


def heading_matrix(root_rot: Tensor) -> Tensor:
    """[N, 3, 3] matrix M with ``v_local = v_world @ M`` for row vectors v [N, K, 3] (same rotation as
    `to_heading`)."""
    c, s = (t[:, 0] for t in heading_cos_sin(root_rot))
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    # v @ Rz(yaw) == (Rz(yaw)^T v)^T == (Rz(-yaw) v)^T
    return torch.stack([c, -s, zero, s, c, zero, zero, zero, one], dim=-1).reshape(root_rot.shape[:-1] + (3, 3))


def tan_norm_vectors(q: Tensor) -> Tensor:
    """[..., 2, 3]: the rotated x axis and the rotated z axis (first and third rotation-matrix columns)."""
    w, x, y, z = q.unbind(-1)
    out = q.new_empty(q.shape[:-1] + (2, 3))
    out[..., 0, 0] = 1.0 - 2.0 * (y * y + z * z)
    out[..., 0, 1] = 2.0 * (x * y + w * z)
    out[..., 0, 2] = 2.0 * (x * z - w * y)
    out[..., 1, 0] = 2.0 * (x * z + w * y)
    out[..., 1, 1] = 2.0 * (y * z - w * x)
    out[..., 1, 2] = 1.0 - 2.0 * (x * x + y * y)
    return out


def tan_norm(q: Tensor) -> Tensor:
    """[..., 6] 6-D rotation: rotated x axis then rotated z axis."""
    return tan_norm_vectors(q).flatten(-2)


def relative_rot_quat(q_ref: Tensor, q_sim: Tensor) -> Tensor:
    """Body-frame difference ``q_ref⁻¹ ⊗ q_sim`` (frame independent; identity when equal)."""
    aw, ax, ay, az = q_ref.unbind(-1)
    ax, ay, az = -ax, -ay, -az
    bw, bx, by, bz = q_sim.unbind(-1)
    return torch.stack(
        [aw * bw - ax * bx - ay * by - az * bz,
         aw * bx + ax * bw + ay * bz - az * by,
         aw * by - ax * bz + ay * bw + az * bx,
         aw * bz + ax * by - ay * bx + az * bw],
        dim=-1,
    )


def ig_feature(v: Tensor) -> Tensor:
    """Interaction-graph feature ``v / |v| * exp(-5 |v|)`` (0 for v = 0)."""
    d = v.norm(dim=-1, keepdim=True)
    return v * (torch.exp(-IG_DECAY * d) / d.clamp_min(1e-9))


_INDEX_CACHE: dict[tuple[BodyGroups, str, torch.device], Tensor] = {}


def group_index(groups: BodyGroups, name: str, device: torch.device) -> Tensor:
    """Cached long tensor of body group `name` (a `BodyGroups` field, e.g. 'key', 'rotation', 'contact')."""
    key = (groups, name, torch.device(device))
    idx = _INDEX_CACHE.get(key)
    if idx is None:
        idx = _INDEX_CACHE[key] = torch.as_tensor(getattr(groups, name), dtype=torch.long, device=device)
    return idx


# --- the observation ---------------------------------------------------------------------------------------------
def _sim_part(sim: SimState, heading: tuple[Tensor, Tensor], groups: BodyGroups) -> dict[str, Tensor]:
    """Everything that depends on the simulated state only, computed once per observation."""
    n, dev = sim.root_pos.shape[0], sim.root_pos.device
    nb = groups.num_bodies
    key, nohand = group_index(groups, "key", dev), group_index(groups, "rotation", dev)
    world = torch.cat(
        [
            sim.body_pos[:, 1:] - sim.root_pos[:, None, :],            # nb-1
            tan_norm_vectors(sim.body_rot).reshape(n, 2 * nb, 3),      # 2 nb (per body: tan, norm)
            sim.body_linvel,                                            # nb
            sim.body_angvel,                                            # nb
            sim.nearest_object_vec,                                     # nb
            sim.obj_linvel[:, :1],                                      # 1
            sim.obj_angvel[:, :1],                                      # 1
        ],
        dim=1,
    )
    local = to_heading(world, heading)  # [N, 6 nb + 1, 3]
    a = 5 * nb - 1  # vectors before the ig block
    ig = ig_feature(local[:, a : a + nb])  # [N, nb, 3]
    contact = sim.object_contact.index_select(1, group_index(groups, "contact", dev)).to(sim.root_pos.dtype)
    return {
        "root_height": sim.root_pos[:, 2:3],
        "motion": local[:, :a].reshape(n, 3 * a),  # body_pos | body_rot | body_linvel | body_angvel (contiguous)
        "contact": contact,
        "ig": ig.reshape(n, 3 * nb),
        "obj_vel": local[:, a + nb :].reshape(n, 6),  # obj_linvel | obj_angvel (contiguous)
        # world-frame sim terms that the reference blocks subtract
        "key_pos": sim.body_pos.index_select(1, key),
        "key_linvel": sim.body_linvel.index_select(1, key),
        "nohand_angvel": sim.body_angvel.index_select(1, nohand),
        "nohand_rot": sim.body_rot.index_select(1, nohand),
        "key_ig": ig.index_select(1, key),
    }


def _block_pieces(
    sim: SimState, ref: RefState, heading: tuple[Tensor, Tensor], part: dict[str, Tensor], groups: BodyGroups
) -> list[Tensor]:
    """The [N, size] pieces of one block for reference `ref`, in `observation_layout` order (body_pos..body_angvel
    and obj_linvel/obj_angvel come as single contiguous pieces)."""
    n, dev = sim.root_pos.shape[0], sim.root_pos.device
    key, nohand = group_index(groups, "key", dev), group_index(groups, "rotation", dev)
    contact = group_index(groups, "contact", dev)
    nk, nn = len(groups.key), len(groups.rotation)

    # every world-frame reference vector goes through one rotation into the sim heading frame
    ref_key_pos = ref.body_pos.index_select(1, key)
    ref_nohand_rot = ref.body_rot.index_select(1, nohand)
    world = torch.cat(
        [
            ref_key_pos - part["key_pos"],                                             # nk   diff_key_pos
            ref_key_pos - sim.root_pos[:, None, :],                                    # nk   ref_key_pos
            tan_norm_vectors(ref_nohand_rot).reshape(n, 2 * nn, 3),                    # 2 nn ref_nohand_rot
            ref.body_linvel.index_select(1, key) - part["key_linvel"],                 # nk   diff_key_linvel
            ref.body_angvel.index_select(1, nohand) - part["nohand_angvel"],           # nn   diff_nohand_angvel
            (ref.obj_pos - sim.obj_pos[:, 0])[:, None],                                # 1    diff_obj_pos
            (ref.obj_linvel - sim.obj_linvel[:, 0])[:, None],                          # 1    diff_obj_linvel
            (ref.obj_angvel - sim.obj_angvel[:, 0])[:, None],                          # 1    diff_obj_angvel
        ],
        dim=1,
    )
    local = to_heading(world, heading).reshape(n, -1)
    cuts = [3 * k for k in (nk, nk, 2 * nn, nk, nn, 1, 1, 1)]
    diff_key_pos, ref_key_pos_l, ref_nohand, diff_key_linvel, diff_nohand_angvel, d_opos, d_olin, d_oang = (
        local.split(cuts, dim=1)
    )

    # frame-independent pieces
    diff_nohand_rot = tan_norm(relative_rot_quat(ref_nohand_rot, part["nohand_rot"])).reshape(n, -1)
    diff_obj_rot = tan_norm(relative_rot_quat(ref.obj_rot, sim.obj_rot[:, 0]))
    label = ref.contact.index_select(1, contact).to(sim.root_pos.dtype)
    diff_contact = label * ((label + 1.0) * 0.5 - part["contact"])

    # ig diff: the reference ig in the reference's own heading frame (see module docstring)
    ref_ig = ig_feature(to_heading(ref.nearest_object_vec.index_select(1, key), heading_cos_sin(ref.root_rot)))
    diff_ig = (ref_ig - part["key_ig"]).reshape(n, -1)

    return [
        part["root_height"], part["motion"], part["contact"],
        diff_key_pos, diff_nohand_rot, diff_contact, ref_key_pos_l, ref_nohand, diff_key_linvel, diff_nohand_angvel,
        part["obj_vel"], d_opos, diff_obj_rot, d_olin, d_oang,
        part["ig"], diff_ig,
    ]


def tracking_observation(sim: SimState, refs: Sequence[RefState], groups: BodyGroups,
                         out: Tensor | None = None) -> Tensor:
    """[N, len(refs) * block size]: one block per reference (e.g. the references at t+1 and t+16).

    The sim-only quantities are computed once and reused in every block. `out` (optional, [N, len(refs) *
    block size], may be a strided view such as a rollout-buffer slice) is filled and returned; reusing one
    buffer avoids allocating a fresh large tensor every step."""
    if len(refs) == 0:
        raise ValueError("tracking_observation needs at least one reference")
    n = sim.root_pos.shape[0]
    shape = (n, len(refs) * observation_block_size(groups))
    if out is None:
        out = sim.root_pos.new_empty(shape)
    elif tuple(out.shape) != shape:
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {shape}")
    heading = heading_cos_sin(sim.root_rot)
    if _numpy_path(sim, refs, out):
        with np.errstate(invalid="ignore", over="ignore"):  # a diverged env's NaN/inf just propagate
            _observation_np(sim, refs, heading, groups, out.numpy())
        return out
    part = _sim_part(sim, heading, groups)
    i = 0
    for ref in refs:
        for piece in _block_pieces(sim, ref, heading, part, groups):
            out[:, i : i + piece.shape[1]] = piece
            i += piece.shape[1]
    return out


def tracking_block(sim: SimState, ref: RefState, groups: BodyGroups) -> Tensor:
    """[N, block size] observation block for one reference."""
    return tracking_observation(sim, [ref], groups)


# --- the same observation in numpy (CPU) -------------------------------------------------------------------------
# On the CPU the kernels above cost per operation, not per element (a few microseconds each, ~300 operations); numpy
# operations cost a fraction of that. The arithmetic below is the kernels' own, operation for operation in the same
# precision (+, -, * and / round the same everywhere), so the observation is bit for bit the torch one; the
# transcendental parts (the heading's atan2/cos/sin, the ig feature's norm and exp) stay torch calls.
NUMPY_PATH = True  # False: always the torch kernels (the tests compare the two)


def _numpy_path(sim: SimState, refs: Sequence[RefState], out: Tensor) -> bool:
    """CPU tensors of one float dtype, nothing to differentiate, not being traced."""
    dtype = sim.root_pos.dtype
    if not NUMPY_PATH or dtype not in (torch.float32, torch.float64) or torch.jit.is_tracing():
        return False
    tensors = [out, sim.root_pos, sim.root_rot, sim.body_pos, sim.body_rot, sim.body_linvel, sim.body_angvel,
               sim.nearest_object_vec, sim.obj_pos, sim.obj_rot, sim.obj_linvel, sim.obj_angvel]
    for r in refs:
        tensors += [r.root_rot, r.body_pos, r.body_rot, r.body_linvel, r.body_angvel, r.obj_pos, r.obj_rot,
                    r.obj_linvel, r.obj_angvel, r.contact, r.nearest_object_vec]
    return all(t.device.type == "cpu" and t.dtype == dtype and not t.requires_grad for t in tensors)


def _to_heading_np(v: np.ndarray, c: np.ndarray, s: np.ndarray, dst: np.ndarray) -> None:
    """`to_heading` into dst (same shape as v; c, s [N, 1])."""
    x, y = v[..., 0], v[..., 1]
    dst[..., 0] = c * x + s * y
    dst[..., 1] = c * y - s * x
    dst[..., 2] = v[..., 2]


def _tan_norm_np(q: np.ndarray, dst: np.ndarray) -> None:
    """`tan_norm_vectors` into dst [..., 2, 3]."""
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    dst[..., 0, 0] = 1.0 - 2.0 * (y * y + z * z)
    dst[..., 0, 1] = 2.0 * (x * y + w * z)
    dst[..., 0, 2] = 2.0 * (x * z - w * y)
    dst[..., 1, 0] = 2.0 * (x * z + w * y)
    dst[..., 1, 1] = 2.0 * (y * z - w * x)
    dst[..., 1, 2] = 1.0 - 2.0 * (x * x + y * y)


def _relative_rot_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`relative_rot_quat`."""
    aw, ax, ay, az = a[..., 0], -a[..., 1], -a[..., 2], -a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def _ig_np(local: np.ndarray) -> np.ndarray:
    return ig_feature(torch.from_numpy(np.ascontiguousarray(local))).numpy()


def _observation_np(sim: SimState, refs: Sequence[RefState], heading, groups: BodyGroups, out: np.ndarray) -> None:
    """`tracking_observation` into `out` (numpy view), block by block in `observation_layout` order."""
    n, nb = sim.root_pos.shape[0], groups.num_bodies
    idx = {g: np.asarray(getattr(groups, g)) for g in ("key", "rotation", "contact")}
    c, s = (t.numpy() for t in heading)
    v = {name: getattr(sim, name).numpy() for name in ("root_pos", "body_pos", "body_rot", "body_linvel",
                                                        "body_angvel")}
    v.update({name: getattr(sim, name).numpy()[:, 0] for name in ("obj_pos", "obj_rot", "obj_linvel", "obj_angvel")})
    block = out.shape[1] // len(refs)
    first = out[:, :block]
    # the simulator-only blocks, written into the first block and copied into the others
    motion = first[:, 1 : 1 + 3 * (5 * nb - 1)].reshape(n, 5 * nb - 1, 3)
    first[:, 0] = v["root_pos"][:, 2]
    _to_heading_np(v["body_pos"][:, 1:] - v["root_pos"][:, None, :], c, s, motion[:, : nb - 1])
    tn = np.empty((n, nb, 2, 3), dtype=out.dtype)
    _tan_norm_np(v["body_rot"], tn)
    _to_heading_np(tn.reshape(n, 2 * nb, 3), c, s, motion[:, nb - 1 : 3 * nb - 1])
    _to_heading_np(v["body_linvel"], c, s, motion[:, 3 * nb - 1 : 4 * nb - 1])
    _to_heading_np(v["body_angvel"], c, s, motion[:, 4 * nb - 1 :])
    at, nc = 1 + 3 * (5 * nb - 1), len(idx["contact"])
    v["contact"] = sim.object_contact.numpy()[:, idx["contact"]].astype(out.dtype)
    first[:, at : at + nc] = v["contact"]
    ig_local = np.empty((n, nb, 3), dtype=out.dtype)
    _to_heading_np(sim.nearest_object_vec.numpy(), c, s, ig_local)
    v["ig"] = _ig_np(ig_local)
    v["obj_vel"] = np.empty((n, 2, 3), dtype=out.dtype)
    _to_heading_np(np.stack([v["obj_linvel"], v["obj_angvel"]], axis=1), c, s, v["obj_vel"])
    for r, ref in enumerate(refs):
        o = out[:, r * block : (r + 1) * block]
        if r:
            o[:, : at + nc] = first[:, : at + nc]
        end = _ref_pieces_np(ref, (c, s), idx, v, o, at + nc)
        assert end == block, (end, block)  # the layout is observation_layout's


def _ref_pieces_np(ref: RefState, heading, idx: dict, v: dict, o: np.ndarray, i: int) -> int:
    """One block's pieces from column i of `o` on (`_block_pieces`; `v`: the simulated quantities); returns the
    column after."""
    c, s = heading
    key, nohand, contact = idx["key"], idx["rotation"], idx["contact"]
    n, nk, nn = o.shape[0], len(key), len(nohand)

    def take(width: int) -> np.ndarray:
        nonlocal i
        i += width
        return o[:, i - width : i]

    ref_key_pos, ref_nohand_rot = ref.body_pos.numpy()[:, key], ref.body_rot.numpy()[:, nohand]
    _to_heading_np(ref_key_pos - v["body_pos"][:, key], c, s, take(3 * nk).reshape(n, nk, 3))  # diff_key_pos
    _tan_norm_np(_relative_rot_np(ref_nohand_rot, v["body_rot"][:, nohand]), take(6 * nn).reshape(n, nn, 2, 3))
    label = ref.contact.numpy()[:, contact]
    take(len(contact))[:] = label * ((label + 1.0) * 0.5 - v["contact"])  # diff_contact
    _to_heading_np(ref_key_pos - v["root_pos"][:, None, :], c, s, take(3 * nk).reshape(n, nk, 3))  # ref_key_pos
    tn = np.empty((n, nn, 2, 3), dtype=o.dtype)
    _tan_norm_np(ref_nohand_rot, tn)
    _to_heading_np(tn.reshape(n, 2 * nn, 3), c, s, take(6 * nn).reshape(n, 2 * nn, 3))  # ref_nohand_rot
    _to_heading_np(ref.body_linvel.numpy()[:, key] - v["body_linvel"][:, key], c, s, take(3 * nk).reshape(n, nk, 3))
    _to_heading_np(ref.body_angvel.numpy()[:, nohand] - v["body_angvel"][:, nohand], c, s,
                   take(3 * nn).reshape(n, nn, 3))
    take(6)[:] = v["obj_vel"].reshape(n, 6)  # obj_linvel | obj_angvel
    _to_heading_np((ref.obj_pos.numpy() - v["obj_pos"])[:, None], c, s, take(3).reshape(n, 1, 3))  # diff_obj_pos
    _tan_norm_np(_relative_rot_np(ref.obj_rot.numpy(), v["obj_rot"]), take(6).reshape(n, 2, 3))  # diff_obj_rot
    _to_heading_np((ref.obj_linvel.numpy() - v["obj_linvel"])[:, None], c, s, take(3).reshape(n, 1, 3))
    _to_heading_np((ref.obj_angvel.numpy() - v["obj_angvel"])[:, None], c, s, take(3).reshape(n, 1, 3))
    take(v["ig"].shape[1] * 3)[:] = v["ig"].reshape(n, -1)
    ref_c, ref_s = heading_cos_sin(ref.root_rot)  # torch: its atan2 rounds by position in the tensor
    ref_local = np.empty((n, nk, 3), dtype=o.dtype)
    _to_heading_np(ref.nearest_object_vec.numpy()[:, key], ref_c.numpy(), ref_s.numpy(), ref_local)
    take(3 * nk)[:] = (_ig_np(ref_local) - v["ig"][:, key]).reshape(n, -1)  # diff_ig
    return i
