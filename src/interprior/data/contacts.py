"""Reference contact labels inferred from kinematics (InterMimic supplementary C.1), for clips that lack them.

The released motion files carry per-body labels {-1, 0, +1} and an object-interaction flag made by InterAct's
converter from SMPL-X *vertices* (intermimic-code-facts §3). We only have the 52 body frames, so each body's
extent is approximated by its collision geom from the humanoid spec (capsule, sphere or box; capsules stretched
with the clip's own bone lengths), placed with the clip's body rotations, and its distance to the object is the
distance from that geom to the object's 1024 surface points (moved by the clip's object pose; 0 when inside).
The floor is the lowest point of the object or of any body geom over the whole clip (as the converter does with
SMPL-X vertices).

Per frame t, with d[b] the distance of body b to the object and d_min = min_b d[b]:

* **interaction** (the object flag) holds when d_min <= `max_interaction_distance` and any of
    (i)   the object is airborne (lowest surface point more than `airborne_height` above the ground) and its
          acceleration is not free fall: |a - g| > `free_fall_tolerance` (g = (0, 0, -9.81));
    (ii)  the object rests on the ground, is not static (moves more than `static_step` per frame) and its
          horizontal acceleration is not what sliding friction alone produces: friction can only *decelerate*
          a sliding object, by mu*g against its velocity, so |a_h + mu*g*v_h/|v_h|| > `friction_tolerance`
          means something else pushes or pulls it (a constant-velocity push gives a residual of mu*g = 8.8 m/s²);
    (iii) d_min < `near_distance`;
  (the converter differs: its free-fall test compares the acceleration with +g, a sign slip that makes "airborne"
  alone count as interaction, and it computes but never uses a ground test; with our thresholds neither matters
  on the samples);
* label **+1** where d[b] < sigma, sigma = d_min + `sigma_margin` when interaction holds, else `near_distance`;
* label **-1** where d[b] > `far_distance` + the body's slack (`FAR_SLACK`: SMPL-X flesh beyond the geoms)
  and the body is not on the ground: for the feet (ankle + toe of
  one side together) "on the ground" means either part lower than `ground_height` above the floor while that
  foot is planted (its toe moves less than `foot_static_step` horizontally per frame; when both feet move, the
  slower one counts as planted), as in the converter; other bodies are never exempt;
* else 0. A -1 wins over +1 (only possible when d_min is within `sigma_margin` of `far_distance`).

Hands follow the converter's SMPL-X segmentation (verified on every OMOMO_new frame): the thumb segments share
the wrist's label (the SMPL-X "hand" part holds palm and thumb) and the 12 other finger segments share one label
(the "fingers" part). With `hand_parts="bodies"` every body gets its own label instead.

Accelerations are second differences of the object position at the clip's frame rate. All operations are
batched over frames (frames are processed in chunks only to bound memory).

Thresholds (`ContactConfig`; one set for every clip, no per-clip tuning). The paper's values (sigma margin 5 mm,
near 1 cm) are for SMPL-X vertices; on collision geoms against 1024 surface points a 1 cm margin and the
converter's 2 cm near distance agree best. The dynamics thresholds (airborne 5 cm, free-fall tolerance 6 m/s²,
static step 5 mm, friction residual 4 m/s²) change nothing measurable on the samples (agreement identical for
airborne heights 0.02-0.10 m and with the ground test off): there the flag is decided by the distance.

Agreement with the stored OMOMO_new labels (27 clips, 5834 frames, subject 2; fraction of frames × bodies with the
same label, and precision / recall of +1):

    group        agreement   +1 precision   +1 recall      paper thresholds, no slack (agreement)
    left hand      93.7 %       89.6 %        95.3 %         91.2 %
    right hand     93.7 %       95.5 %        89.2 %         88.1 %
    feet           99.5 %       (1 stored +1 in the whole set)   99.7 %
    other          97.3 %       47.0 %        56.4 %         95.6 %
    all 52         95.3 %       91.7 %        91.8 %         92.2 %
    object flag    99.2 % of frames                          98.8 %

Per object: largetable (17 clips) all 94.7 %, flag 98.8 %; woodchair (10 clips) all 96.1 %, flag 99.7 %.
Labelling each hand body separately instead of by SMPL-X part drops the hands to 73 % / 71 %.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from interprior import schema
from interprior.data.clip import Clip
from interprior.rotations import quat_apply, quat_apply_inverse, quat_conj, quat_mul, quat_to_matrix

GRAVITY = 9.81

# Extra distance (m) before a body counts as "far" (-1), per body: the SMPL-X segments the released labels were made
# from carry more flesh than the humanoid's collision geoms (thighs and belly most). Calibrated on the 27 OMOMO_new
# sample clips (subject 2, largetable and woodchair; the per-object optima agree to ~1-2 cm), rounded to 5 mm.
# Bodies not listed: 0.
FAR_SLACK: dict[str, float] = {
    "Pelvis": 0.03, "L_Hip": 0.06, "R_Hip": 0.06, "L_Knee": 0.015, "R_Knee": 0.015,
    "Torso": 0.06, "Spine": 0.03, "Neck": 0.015, "Head": 0.02, "L_Thorax": 0.015, "R_Thorax": 0.015,
    "L_Elbow": 0.02, "R_Elbow": 0.02,
}


@dataclass(frozen=True)
class ContactConfig:
    """Thresholds of the inference (metres, seconds). Defaults tuned on the 27 OMOMO_new sample clips (one set
    of values for all clips; see the module docstring and `contact_agreement`)."""

    near_distance: float = 0.02  # (iii) and the fixed +1 threshold outside interaction (paper 0.01, converter 0.02)
    sigma_margin: float = 0.01  # adaptive sigma = d_min + margin (paper: 0.005 on SMPL-X vertices)
    far_distance: float = 0.10  # -1 beyond this (paper: sigma_p = 0.1) plus the body's far slack
    far_slack: tuple[tuple[str, float], ...] = tuple(FAR_SLACK.items())  # (body name, extra metres)
    max_interaction_distance: float = 0.10  # no interaction when every body is farther than this
    airborne_height: float = 0.05  # object's lowest point above the floor by more than this = airborne
    free_fall_tolerance: float = 6.0  # m/s²: |a - g| above this = an external force acts on an airborne object
    static_step: float = 0.005  # m per frame: the object is static when it moves less
    friction: float = schema.FRICTION  # mu of the friction-only test (ii)
    friction_tolerance: float = 4.0  # m/s²: residual acceleration beyond friction that counts as a push
    use_ground_test: bool = True  # condition (ii)
    ground_height: float = 0.10  # a foot part lower than this above the floor may be on the ground
    foot_static_step: float = 0.02  # m per frame (toe, horizontal): a slower foot is planted
    hand_parts: str = "smplx"  # "smplx": converter's segmentation (thumb = wrist, 12 fingers share); "bodies"
    scale_geoms: bool = True  # stretch capsules with the clip's bone lengths (boxes keep their size)
    geom_inflation: float = 0.0  # added to every geom's radius/half-size (SMPL-X flesh vs. collision geoms)
    frame_chunk: int = 64  # frames per batch of the distance computation (memory and speed only)

    def __post_init__(self) -> None:
        if self.hand_parts not in ("smplx", "bodies"):
            raise ValueError(f"hand_parts must be 'smplx' or 'bodies', got {self.hand_parts!r}")
        unknown = [name for name, _ in self.far_slack if name not in schema.BODY_INDEX]
        if unknown:
            raise ValueError(f"far_slack names unknown bodies: {unknown}")

    def far_thresholds(self) -> Tensor:
        """[52] per-body distance beyond which a body is far (-1)."""
        out = torch.full((schema.NUM_BODIES,), self.far_distance, dtype=torch.float64)
        for name, slack in self.far_slack:
            out[schema.BODY_INDEX[name]] += slack
        return out


DEFAULT_CONFIG = ContactConfig()


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
    from interprior.assets.humanoid import humanoid_spec

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
    from interprior.assets.humanoid import default_offsets
    from interprior.data.skeleton import fit_skeleton

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


def second_difference(x: Tensor, fps: float) -> Tensor:
    """Accelerations [T, ...] by central second differences (edge frames copy their neighbour)."""
    if x.shape[0] < 3:
        return torch.zeros_like(x)
    acc = torch.empty_like(x)
    acc[1:-1] = (x[2:] - 2.0 * x[1:-1] + x[:-2]) * fps * fps
    acc[0], acc[-1] = acc[1], acc[-2]
    return acc


# --------------------------------------------------------------------------------------------------------------
# inference
# --------------------------------------------------------------------------------------------------------------
@dataclass
class ContactInference:
    """Everything the inference computed, per frame (for inspection and tests)."""

    labels: Tensor  # [T, 52] float32 {-1, 0, 1}
    interaction: Tensor  # [T] bool (the object flag)
    distance: Tensor  # [T, 52] body-object distance per label part (hand parts merged as labelled)
    min_distance: Tensor  # [T]
    airborne: Tensor  # [T] bool
    static: Tensor  # [T] bool
    airborne_force: Tensor  # [T] bool, condition (i)
    ground_push: Tensor  # [T] bool, condition (ii)
    near: Tensor  # [T] bool, condition (iii)
    on_ground: Tensor  # [T, 52] bool, bodies exempt from -1
    ground_z: float


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


def infer_contact_details(clip: Clip, points: Tensor | np.ndarray,
                          config: ContactConfig = DEFAULT_CONFIG) -> ContactInference:
    """The full inference for one clip against object surface points [P, 3] (object frame)."""
    cfg = config
    pts = torch.as_tensor(np.asarray(points), dtype=torch.float64)
    geometry = clip_geometry(clip, cfg)
    dist = body_object_distances(clip.body_pos, clip.body_rot, clip.obj_pos, clip.obj_rot, pts, geometry,
                                 cfg.frame_chunk)
    if cfg.hand_parts == "smplx":
        dist = merge_hand_parts(dist)
    d_min = dist.amin(dim=1)

    # object dynamics
    body_low = body_lowest_z(clip.body_pos, clip.body_rot, geometry)  # [T, 52]
    obj_low = object_points_z(clip.obj_pos, clip.obj_rot, pts).amin(dim=1)  # [T]
    ground_z = float(torch.minimum(obj_low.min(), body_low.min()))
    dyn = object_dynamics(clip.obj_pos, clip.obj_rot, pts, ground_z, clip.fps, cfg)
    near = d_min < cfg.near_distance
    interaction = (dyn["airborne_force"] | dyn["ground_push"] | near) & (d_min <= cfg.max_interaction_distance)

    # labels
    positive = dist < adaptive_sigma(d_min, interaction, cfg)[:, None]
    on_ground = _feet_on_ground(clip.body_pos, body_low - ground_z, positive, cfg)
    labels = contact_labels(dist, interaction, on_ground, cfg)
    return ContactInference(
        labels=labels, interaction=interaction, distance=dist, min_distance=d_min, airborne=dyn["airborne"],
        static=dyn["static"], airborne_force=dyn["airborne_force"], ground_push=dyn["ground_push"], near=near,
        on_ground=on_ground, ground_z=ground_z,
    )


def object_dynamics(obj_pos: Tensor, obj_rot: Tensor, points: Tensor, ground_z: float, fps: float,
                    config: ContactConfig = DEFAULT_CONFIG) -> dict[str, Tensor]:
    """Per-frame bool [T] tests on the object track alone: `airborne`, `static`, and the interaction conditions
    `airborne_force` (i) and `ground_push` (ii) of the module docstring."""
    cfg = config
    pos = obj_pos.double()
    num_frames = pos.shape[0]
    low = object_points_z(obj_pos, obj_rot, points).amin(dim=1)
    airborne = (low - ground_z) > cfg.airborne_height
    step = torch.zeros(num_frames, dtype=torch.float64)
    if num_frames > 1:
        step[1:] = (pos[1:] - pos[:-1]).norm(dim=-1)
        step[0] = step[1]
    static = step < cfg.static_step
    acc = second_difference(pos, fps)
    g = torch.tensor([0.0, 0.0, -GRAVITY], dtype=torch.float64)
    airborne_force = airborne & ((acc - g).norm(dim=-1) > cfg.free_fall_tolerance)
    vel = torch.zeros_like(pos)
    if num_frames > 1:
        vel[1:-1] = (pos[2:] - pos[:-2]) * (fps / 2.0)
        vel[0], vel[-1] = (pos[1] - pos[0]) * fps, (pos[-1] - pos[-2]) * fps
    vh = vel[:, :2]
    speed = vh.norm(dim=-1, keepdim=True)
    # sliding friction alone decelerates the object by mu*g against its horizontal velocity
    friction_acc = torch.where(speed > 1e-6, -cfg.friction * GRAVITY * vh / speed.clamp_min(1e-6),
                               torch.zeros_like(vh))
    residual = (acc[:, :2] - friction_acc).norm(dim=-1)
    ground_push = (~airborne) & (~static) & (residual > cfg.friction_tolerance)
    if not cfg.use_ground_test:
        ground_push = torch.zeros_like(ground_push)
    return {"airborne": airborne, "static": static, "airborne_force": airborne_force, "ground_push": ground_push}


def adaptive_sigma(min_distance: Tensor, interaction: Tensor, config: ContactConfig = DEFAULT_CONFIG) -> Tensor:
    """[T] +1 threshold: nearest distance + `sigma_margin` during interaction, else `near_distance`."""
    return torch.where(interaction, min_distance + config.sigma_margin,
                       torch.full_like(min_distance, config.near_distance))


def contact_labels(distance: Tensor, interaction: Tensor, on_ground: Tensor,
                   config: ContactConfig = DEFAULT_CONFIG) -> Tensor:
    """[T, 52] float32 labels from per-body distances [T, 52]: +1 below the adaptive sigma, -1 beyond the body's
    far threshold unless `on_ground` [T, 52], else 0 (-1 wins)."""
    d_min = distance.amin(dim=1)
    positive = distance < adaptive_sigma(d_min, interaction, config)[:, None]
    far = config.far_thresholds().to(distance)
    negative = (distance > far) & ~on_ground
    labels = torch.zeros(distance.shape, dtype=torch.float32)
    labels[positive] = 1.0
    labels[negative] = -1.0
    return labels


def _feet_on_ground(body_pos: Tensor, height: Tensor, positive: Tensor, cfg: ContactConfig) -> Tensor:
    """[T, 52] bool: bodies exempt from -1 because they may be on the ground (the feet, per side). `height` [T, 52]
    is each geom's lowest point above the floor, `positive` [T, 52] the +1 test."""
    idx = schema.BODY_INDEX
    num_frames = body_pos.shape[0]
    toes = body_pos[:, [idx["L_Toe"], idx["R_Toe"]], :2].double()  # [T, 2, 2]
    move = torch.zeros(num_frames, 2, dtype=torch.float64)
    if num_frames > 1:
        move[1:] = (toes[1:] - toes[:-1]).norm(dim=-1)
    planted = move < cfg.foot_static_step
    both_moving = ~planted.any(dim=1)
    slower_left = move[:, 0] <= move[:, 1]
    planted[:, 0] |= both_moving & slower_left
    planted[:, 1] |= both_moving & ~slower_left
    planted[0] = True  # the converter has no motion test on the first frame
    out = torch.zeros_like(positive)
    for k, side in enumerate("LR"):
        pair = [idx[f"{side}_Ankle"], idx[f"{side}_Toe"]]
        low = (height[:, pair] <= cfg.ground_height).any(dim=1) & planted[:, k]
        exempt = low | positive[:, pair].any(dim=1)
        out[:, pair] = exempt[:, None]
    return out


def _points_of(asset) -> np.ndarray:
    return np.asarray(asset.surface_points if hasattr(asset, "surface_points") else asset, dtype=np.float64)


def infer_contacts(clip: Clip, asset, config: ContactConfig = DEFAULT_CONFIG) -> tuple[Tensor, Tensor]:
    """Reference contact labels [T, 52] float32 {-1, 0, +1} and object flag [T] float32 {0, 1} for a clip.

    `asset` is an `ObjectAsset` (its 1024 `surface_points` are used) or an array of object-frame points [P, 3]."""
    result = infer_contact_details(clip, _points_of(asset), config)
    return result.labels, result.interaction.to(torch.float32)


def with_inferred_contacts(clip: Clip, asset, config: ContactConfig = DEFAULT_CONFIG) -> Clip:
    """A copy of the clip whose contact labels and object flag are the inferred ones (a note says so)."""
    labels, flag = infer_contacts(clip, asset, config)
    return replace(clip, contact=labels, obj_contact=flag,
                   notes=list(clip.notes) + ["contact labels inferred from kinematics (interprior.data.contacts)"])


def has_contact_labels(clip: Clip) -> bool:
    """False when every label column and the object flag are zero (a file without labels)."""
    return bool(clip.contact.ne(0).any() or clip.obj_contact.ne(0).any())


# --------------------------------------------------------------------------------------------------------------
# agreement with stored labels
# --------------------------------------------------------------------------------------------------------------
def _default_groups() -> dict[str, tuple[int, ...]]:
    hands = set(schema.LEFT_HAND) | set(schema.RIGHT_HAND) | set(schema.FEET)
    return {
        "left_hand": schema.LEFT_HAND,
        "right_hand": schema.RIGHT_HAND,
        "feet": schema.FEET,
        "other": tuple(i for i in range(schema.NUM_BODIES) if i not in hands),
    }


BODY_GROUPS: dict[str, tuple[int, ...]] = _default_groups()


@dataclass
class AgreementCounts:
    """Counts over frames × bodies of one group (add them up over clips, then read the rates)."""

    agree: int = 0
    total: int = 0
    true_positive: int = 0  # pred +1 and stored +1
    predicted_positive: int = 0
    stored_positive: int = 0

    def __add__(self, other: "AgreementCounts") -> "AgreementCounts":
        return AgreementCounts(*(getattr(self, k) + getattr(other, k) for k in
                                 ("agree", "total", "true_positive", "predicted_positive", "stored_positive")))

    @property
    def agreement(self) -> float:
        return self.agree / self.total if self.total else float("nan")

    @property
    def precision(self) -> float:
        return self.true_positive / self.predicted_positive if self.predicted_positive else float("nan")

    @property
    def recall(self) -> float:
        return self.true_positive / self.stored_positive if self.stored_positive else float("nan")

    def as_dict(self) -> dict:
        return {"agreement": self.agreement, "precision": self.precision, "recall": self.recall,
                "count": self.total}


def contact_agreement_counts(pred: Tensor, stored: Tensor,
                             groups: Mapping[str, Sequence[int]] | None = None) -> dict[str, AgreementCounts]:
    groups = BODY_GROUPS if groups is None else groups
    pred, stored = pred.round(), stored.round()
    out = {}
    for name, bodies in groups.items():
        p, s = pred[:, list(bodies)], stored[:, list(bodies)]
        out[name] = AgreementCounts(
            agree=int((p == s).sum()), total=int(p.numel()), true_positive=int(((p > 0) & (s > 0)).sum()),
            predicted_positive=int((p > 0).sum()), stored_positive=int((s > 0).sum()),
        )
    return out


def contact_agreement(pred: Tensor, stored: Tensor,
                      groups: Mapping[str, Sequence[int]] | None = None) -> dict[str, dict]:
    """Per body group (default: left_hand, right_hand, feet, other): fraction of frames × bodies whose labels
    agree, and precision / recall of the +1 label (pred against stored). Labels [T, 52]."""
    return {k: v.as_dict() for k, v in contact_agreement_counts(pred, stored, groups).items()}


# --------------------------------------------------------------------------------------------------------------
# labelling files (the `interprior data contacts` command)
# --------------------------------------------------------------------------------------------------------------
def object_surface_points(objects_dir, name: str) -> np.ndarray:
    """The object's 1024 surface points (object frame), exactly `load_object(...).surface_points`, without the
    convex decomposition (mesh read + seeded sampling only)."""
    from interprior.assets.objects import find_object_mesh, read_mesh, sample_surface_points

    return sample_surface_points(read_mesh(find_object_mesh(objects_dir, name)))


def label_files(path, objects_dir, out_dir=None, in_place: bool = False, force: bool = False,
                config: ContactConfig = DEFAULT_CONFIG):
    """Infer labels for the clips at `path` (a .pt file or a folder) and write them; yields one report dict per
    clip. Clips whose label columns and object flag are all zero are labelled; clips with labels are relabelled
    only with `force` (their stored labels are compared with the inferred ones either way) and otherwise copied
    unchanged into `out_dir` (left alone with `in_place`). Writes are atomic (`save_clip`).

    Exactly one of `out_dir` / `in_place` must be given; `out_dir` must not be the folder the inputs live in."""
    import shutil
    from pathlib import Path

    from interprior.data.intermimic import list_clips, load_clip, save_clip
    from interprior.errors import DataFileError, InterpriorError

    if (out_dir is None) == (not in_place):
        raise ValueError("give exactly one of out_dir or in_place=True")
    files = list_clips(path)
    if out_dir is not None:
        out_dir = Path(out_dir)
        sources = {f.resolve().parent for f in files}
        if out_dir.exists() and out_dir.resolve() in sources:
            raise DataFileError(out_dir, "is the input folder: refusing to overwrite inputs (use --in-place)")
    points_cache: dict[str, np.ndarray] = {}
    for file in files:
        row: dict = {"file": str(file), "clip": file.stem}
        try:
            clip = load_clip(file)
            row["frames"] = clip.num_frames
            name = clip.object_name
            if name is None:
                raise DataFileError(file, "cannot tell the object from the file name (expected subX_<object>_NNN.pt)")
            had = has_contact_labels(clip)
            row["had_labels"] = had
            target = file if in_place else out_dir / file.name
            row["output"] = str(target)
            if name not in points_cache:
                points_cache[name] = object_surface_points(objects_dir, name)
            result = infer_contact_details(clip, points_cache[name], config)
            if had:
                _add_agreement(row, result, clip)
            if force or not had:
                labelled = replace(clip, contact=result.labels, obj_contact=result.interaction.to(torch.float32))
                save_clip(labelled, target)
                row["action"] = "relabelled" if had else "labelled"
                row["object_flag_fraction"] = float(result.interaction.float().mean())
                if clip.notes:
                    row["notes"] = list(clip.notes)
            elif in_place:
                row["action"] = "kept (has labels; --force relabels)"
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, target)
                row["action"] = "copied unchanged (has labels; --force relabels)"
        except InterpriorError as err:
            row["action"] = "error"
            row["error"] = str(err)
        yield row


def _add_agreement(row: dict, result: ContactInference, clip: Clip) -> None:
    groups = dict(BODY_GROUPS)
    groups["all"] = tuple(range(schema.NUM_BODIES))
    counts = contact_agreement_counts(result.labels, clip.contact, groups)
    row["agreement"] = {k: v.as_dict() for k, v in counts.items()}
    row["agreement_counts"] = {k: vars(v).copy() for k, v in counts.items()}
    row["object_flag_agreement"] = float((result.interaction.float() == clip.obj_contact.round()).float().mean())
    row["object_flag_agree_frames"] = int((result.interaction.float() == clip.obj_contact.round()).sum())


def summarize_agreement(rows: Sequence[dict]) -> dict:
    """Agreement over all clips of a `label_files` run that had labels (frames × bodies pooled)."""
    totals: dict[str, AgreementCounts] = {}
    flag_agree = flag_frames = 0
    for row in rows:
        for group, c in row.get("agreement_counts", {}).items():
            totals[group] = totals.get(group, AgreementCounts()) + AgreementCounts(**c)
        if "object_flag_agree_frames" in row:
            flag_agree += row["object_flag_agree_frames"]
            flag_frames += row["frames"]
    out = {k: v.as_dict() for k, v in totals.items()}
    if flag_frames:
        out["object_flag"] = {"agreement": flag_agree / flag_frames, "count": flag_frames}
    return out
