"""Body geometry and distances for the contact-label inference (`interprior.data.contacts`).

Each body's extent is approximated by its collision geom from the humanoid spec (capsule, sphere or box; capsules
stretched with the clip's own bone lengths), placed with the clip's body rotations; its distance to the object is
the distance from that geom to the object's surface points (moved by the clip's object pose; 0 when inside).
Hand bodies can be merged into the converter's SMPL-X parts (`merge_hand_parts`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from interprior import schema
from interprior.assets.humanoid import default_offsets, humanoid_spec
from interprior.data.clip import Clip
from interprior.data.contact_config import DEFAULT_CONFIG, ContactConfig
from interprior.data.skeleton import fit_skeleton
from interprior.rotations import quat_apply, quat_apply_inverse, quat_conj, quat_mul, quat_to_matrix


# --------------------------------------------------------------------------------------------------------------
# body geometry
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BodyGeometry:
    """One primitive per body, in the body frame. Capsules and spheres are segments a-b with a radius (a == b for
    spheres); boxes have a centre, half sizes and a rotation (wxyz)."""

    seg_a: Tensor  # [52, 3]
    seg_b: Tensor  # [52, 3]
    radius: Tensor  # [52]
    is_box: Tensor  # [52] bool
    box_center: Tensor  # [52, 3]
    box_half: Tensor  # [52, 3]
    box_quat: Tensor  # [52, 4]

    def scaled(self, scale: Tensor) -> "BodyGeometry":
        """Capsule segments stretched per body with the clip's bones (radii keep). Boxes (feet, palms) keep the
        spec's size: the files' toe and finger offsets are 25-35 % longer than the spec's for the sample subject,
        and stretching the foot boxes by that pushed the toes into table legs (object-flag agreement 97.7 % with
        stretched boxes, 99.2 % without, on the OMOMO_new samples)."""
        s = scale.to(self.seg_a.dtype)
        return replace(self, seg_a=self.seg_a * s[:, None], seg_b=self.seg_b * s[:, None])

    def inflated(self, amount: float) -> "BodyGeometry":
        if amount == 0.0:
            return self
        return replace(self, radius=self.radius + amount, box_half=self.box_half + amount)


@lru_cache(maxsize=1)
def _default_geometry_np() -> tuple:
    n = schema.NUM_BODIES
    a, b, r = np.zeros((n, 3)), np.zeros((n, 3)), np.zeros(n)
    is_box, c, h = np.zeros(n, bool), np.zeros((n, 3)), np.zeros((n, 3))
    q = np.tile(np.array([1.0, 0.0, 0.0, 0.0]), (n, 1))
    for i, body in enumerate(humanoid_spec()["bodies"]):
        geoms = body["geoms"]
        if len(geoms) != 1:
            raise RuntimeError(f"humanoid spec: body {body['name']} has {len(geoms)} geoms, expected 1")
        g = geoms[0]
        if g["type"] == "capsule":
            a[i], b[i], r[i] = g["fromto"][:3], g["fromto"][3:], g["size"][0]
        elif g["type"] == "sphere":
            a[i] = b[i] = g.get("pos", [0.0, 0.0, 0.0])
            r[i] = g["size"][0]
        elif g["type"] == "box":
            is_box[i], c[i], h[i] = True, g["pos"], g["size"]
            q[i] = g.get("quat", [1.0, 0.0, 0.0, 0.0])
        else:
            raise RuntimeError(f"humanoid spec: unsupported geom type {g['type']}")
    return a, b, r, is_box, c, h, q


def default_geometry() -> BodyGeometry:
    a, b, r, is_box, c, h, q = _default_geometry_np()
    t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731  (copies: the cached arrays stay intact)
    return BodyGeometry(t(a), t(b), t(r), torch.tensor(is_box), t(c), t(h), t(q))


def geom_scale(body_pos: Tensor, body_rot: Tensor) -> Tensor:
    """[52] stretch factor per body from the clip's bone lengths (median over frames) relative to the spec:
    mean ratio of the bones to its children (or from its parent for leaves), clipped to [0.5, 2]."""
    fitted = fit_skeleton(body_pos, body_rot).offsets.norm(dim=-1)  # [52]
    base = torch.as_tensor(default_offsets()).norm(dim=-1).clamp_min(1e-6)
    ratio = fitted / base
    scale = torch.ones(schema.NUM_BODIES, dtype=torch.float64)
    parents = torch.as_tensor(schema.BODY_PARENTS)
    for i in range(schema.NUM_BODIES):  # 52 bodies, once per clip
        children = (parents == i).nonzero().flatten()
        bones = children if children.numel() else torch.tensor([i])
        bones = bones[bones != 0]
        if bones.numel():
            scale[i] = ratio[bones].mean().clamp(0.5, 2.0)
    return scale


def clip_geometry(clip: Clip, config: ContactConfig = DEFAULT_CONFIG) -> BodyGeometry:
    geometry = default_geometry()
    if config.scale_geoms:
        geometry = geometry.scaled(geom_scale(clip.body_pos, clip.body_rot))
    return geometry.inflated(config.geom_inflation)


# --------------------------------------------------------------------------------------------------------------
# distances
# --------------------------------------------------------------------------------------------------------------
def body_object_distances(body_pos: Tensor, body_rot: Tensor, obj_pos: Tensor, obj_rot: Tensor, points: Tensor,
                          geometry: BodyGeometry, frame_chunk: int = 64) -> Tensor:
    """[T, 52] distance (m, >= 0; 0 when overlapping) from each body's geom to the nearest object surface point.

    body_pos [T, 52, 3], body_rot [T, 52, 4] (wxyz), obj_pos [T, 3], obj_rot [T, 4], points [P, 3] in the object
    frame. Work happens in the object frame (points stay fixed, coordinates stay small), float64."""
    dt = torch.float64
    pts = torch.as_tensor(points, dtype=dt)
    g = geometry
    num_frames = body_pos.shape[0]
    out = torch.empty(num_frames, schema.NUM_BODIES, dtype=dt)
    caps = (~g.is_box).nonzero().flatten()
    boxes = g.is_box.nonzero().flatten()
    pts_sq = pts.square().sum(-1)  # [P]
    chunk = max(1, int(frame_chunk))
    for start in range(0, num_frames, chunk):
        s = slice(start, start + chunk)
        bpos, brot = body_pos[s].to(dt), body_rot[s].to(dt)
        opos, orot = obj_pos[s].to(dt)[:, None, :], obj_rot[s].to(dt)[:, None, :]
        n = bpos.shape[0]

        def to_obj(local: Tensor, idx: Tensor) -> Tensor:  # body-frame point [len(idx), 3] -> object frame [n, k, 3]
            world = bpos[:, idx] + quat_apply(brot[:, idx], local[idx].expand(n, -1, -1))
            return quat_apply_inverse(orot.expand(-1, len(idx), -1), world - opos)

        if caps.numel():
            a, b = to_obj(g.seg_a, caps), to_obj(g.seg_b, caps)  # [n, C, 3]
            u = b - a
            uu = u.square().sum(-1, keepdim=True)  # [n, C, 1]
            pu = u @ pts.T - (a * u).sum(-1, keepdim=True)  # (p - a)·u  [n, C, P]
            pa_sq = pts_sq - 2.0 * (a @ pts.T) + a.square().sum(-1, keepdim=True)  # |p - a|²
            t = torch.where(uu > 1e-18, pu / uu.clamp_min(1e-18), torch.zeros_like(pu)).clamp(0.0, 1.0)
            d_sq = (pa_sq - 2.0 * t * pu + t.square() * uu).clamp_min(0.0)
            out[s, caps] = (d_sq.amin(-1).sqrt() - g.radius[caps]).clamp_min(0.0)
        if boxes.numel():
            centre = to_obj(g.box_center, boxes)  # [n, K, 3]
            rot = quat_mul(quat_conj(orot.expand(-1, len(boxes), -1)), quat_mul(brot[:, boxes], g.box_quat[boxes]))
            m = quat_to_matrix(rot)  # [n, K, 3, 3] box axes in the object frame
            local = torch.einsum("nkji,nkpj->nkpi", m, pts[None, None] - centre[:, :, None])  # [n, K, P, 3]
            q = local.abs() - g.box_half[boxes][None, :, None]
            sdf = q.clamp_min(0.0).norm(dim=-1) + q.amax(-1).clamp_max(0.0)
            out[s, boxes] = sdf.amin(-1).clamp_min(0.0)
    return out


def body_lowest_z(body_pos: Tensor, body_rot: Tensor, geometry: BodyGeometry) -> Tensor:
    """[T, 52] world height of each body geom's lowest point."""
    dt = torch.float64
    g = geometry
    pos, rot = body_pos.to(dt), body_rot.to(dt)
    n = pos.shape[0]
    a = pos + quat_apply(rot, g.seg_a.expand(n, -1, -1))
    b = pos + quat_apply(rot, g.seg_b.expand(n, -1, -1))
    low = torch.minimum(a[..., 2], b[..., 2]) - g.radius
    m = quat_to_matrix(quat_mul(rot, g.box_quat.expand(n, -1, -1)))  # [T, 52, 3, 3]
    centre = pos + quat_apply(rot, g.box_center.expand(n, -1, -1))
    box_low = centre[..., 2] - (m[..., 2, :].abs() * g.box_half).sum(-1)
    return torch.where(g.is_box, box_low, low)


def object_points_z(obj_pos: Tensor, obj_rot: Tensor, points: Tensor) -> Tensor:
    """[T, P] world heights of the object surface points."""
    m = quat_to_matrix(obj_rot.double())  # [T, 3, 3]
    return obj_pos.double()[:, 2:3] + m[:, 2, :] @ torch.as_tensor(points, dtype=torch.float64).T


# --------------------------------------------------------------------------------------------------------------
# SMPL-X hand parts
# --------------------------------------------------------------------------------------------------------------
def _hand_segments() -> list[tuple[list[int], list[int]]]:
    """(members, labelled) pairs: a part's distance is the min over members, and the label goes to `labelled`."""
    parts = []
    for side in ("L", "R"):
        idx = schema.BODY_INDEX
        palm = [idx[f"{side}_Wrist"]] + [idx[f"{side}_Thumb{k}"] for k in "123"]
        fingers = [idx[f"{side}_{f}{k}"] for f in ("Index", "Middle", "Pinky", "Ring") for k in "123"]
        parts += [(palm, palm), (fingers, fingers)]
    return parts


def merge_hand_parts(distance: Tensor) -> Tensor:
    """Replace each hand body's distance by that of its SMPL-X part (palm+thumb, or the 12 other fingers)."""
    out = distance.clone()
    for members, labelled in _hand_segments():
        out[:, labelled] = distance[:, members].amin(dim=1, keepdim=True)
    return out
