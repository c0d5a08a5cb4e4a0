"""What the G1 should do in every frame of a human clip: the IK targets, made from the source clip at once
(numpy, batched over frames and bodies).

Scale: s = G1 standing pelvis height (`G1_ROOT_HEIGHT`) / the human's (from frames where both feet are planted).
Every human body target p is scaled about the object: horizontally p' = a + s (p - a), a the point of the
object's bounding box nearest to the human pelvis in that frame, vertically p'_z = s p_z (the floor stays). The
G1 thus stands where the human stood relative to the object, its distances to the object's near side shrunk by s,
and walks toward it along the shrunk path. The object keeps its size (objects are rigid assets), its horizontal
path and its rotation; a lifted object's height above its resting height is scaled by s too (otherwise a box the
human holds at its chest would be at the G1's shoulders), and a resting object stays where it was.

Feet: planted (in the source: the foot's lowest point within `GROUND_CONTACT` of the floor and slow; the floor is
lifted to the feet where the clip's feet never come lower, as captured feet often do) means flat on
the floor and held at one place and heading over the whole planted span; in between the foot is lifted at least
just clear of the floor (`LIFT_MIN`), so only planted feet touch it. The centre of mass is kept over the planted
feet. Hands in contact (the object flag and any body of the hand labelled +1, or the palm within `HOLD_DISTANCE`
while the flag is set) are put on the object: the nearest point of the mesh surface to the human palm, in the
object's frame, with the hand's capsule touching it and the palm facing it; the hand moves onto and off the
object over `BLEND_FRAMES`. A free hand follows the scaled human palm, kept out of the object, its palm turned
toward it when near. Head and chest follow the scaled human's (so the G1, bending at the hips where the human
curls its spine, does not put its head into the object).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from interprior import schema
from interprior.assets.g1 import G1_ROOT_HEIGHT
from interprior.data.clip import Clip
from interprior.data.contacts import body_lowest_z, default_geometry
from interprior.data.retarget.robot import FOOT_MARGIN, Robot
from interprior.data.retarget.spans import hold_over_spans, nearest_marked
from interprior.data.retarget.surface import SurfaceDistance
from interprior.data.synth.quality import GROUND_CONTACT
from interprior.rotations import quat_to_matrix

PLANT_SPEED = 0.25  # m/s: a low foot slower than this (ankle, horizontally) is planted
LIFT_MIN = GROUND_CONTACT + 0.005  # m: a foot that is not planted keeps its sole at least this high
BLEND_FRAMES = 8  # frames over which a hand moves onto / off the object
SUPPORT_FRAMES = 8  # frames over which the centre of mass moves from both feet onto one
HOLD_DISTANCE = 0.03  # m: a human palm this near the object while the object flag is set holds it, labelled or not
FACE_DISTANCE = 0.1  # m: a free hand nearer the object than this turns its palm toward it
_I = schema.BODY_INDEX
FEET = ((_I["L_Ankle"], _I["L_Toe"]), (_I["R_Ankle"], _I["R_Toe"]))
WRISTS = (_I["L_Wrist"], _I["R_Wrist"])
HANDS = (schema.LEFT_HAND, schema.RIGHT_HAND)  # wrist and fingers: a hand touches where any of them does
KNEES = (_I["L_Knee"], _I["R_Knee"])
ELBOWS = (_I["L_Elbow"], _I["R_Elbow"])
TRUNK = (_I["Head"], _I["Chest"])


@dataclass
class Targets:
    """Per-frame G1 targets, world frame (metres, rotation matrices). Hand targets are capsule centres."""

    scale: float
    pelvis_pos: np.ndarray  # [T, 3]
    pelvis_rot: np.ndarray  # [T, 3, 3]
    torso_rot: np.ndarray  # [T, 3, 3]
    knee_pos: np.ndarray  # [T, 2, 3]
    elbow_pos: np.ndarray  # [T, 2, 3]
    head_pos: np.ndarray  # [T, 3] centre of the head (the G1's head sphere)
    chest_pos: np.ndarray  # [T, 3] centre of the chest (the G1's torso capsule)
    foot_pos: np.ndarray  # [T, 2, 3] ankle_roll origin
    foot_yaw: np.ndarray  # [T, 2]
    planted: np.ndarray  # [T, 2] bool
    com_xy: np.ndarray  # [T, 2] where the centre of mass should be: over the planted feet
    hand_pos: np.ndarray  # [T, 2, 3]
    hand_normal: np.ndarray  # [T, 2, 3] outward surface normal where the hand touches (world)
    hand_w: np.ndarray  # [T, 2] 0..1: on the object (1) or following the scaled human hand (0)
    palm_w: np.ndarray  # [T, 2] 0..1: how much the palm faces the object (on it, or near it)
    contact: np.ndarray  # [T, 2] bool: the source's contact phases of each hand
    obj_pos: np.ndarray  # [T, 3] the object's path (lifted heights scaled)
    obj_rot: np.ndarray  # [T, 4] wxyz, the source's

    @property
    def num_frames(self) -> int:
        return int(self.pelvis_pos.shape[0])


def build_targets(clip: Clip, mesh: SurfaceDistance, robot: Robot) -> Targets:
    """The G1's targets for the human clip `clip` of the object `mesh` (object frame = mesh frame)."""
    pos = clip.body_pos.double().numpy()
    rot = quat_to_matrix(clip.body_rot.double()).numpy()  # [T, 52, 3, 3]
    low = body_lowest_z(clip.body_pos, clip.body_rot, default_geometry()).numpy()  # [T, 52]
    foot_low = np.stack([low[:, list(f)].min(axis=1) for f in FEET], -1)  # [T, 2]
    foot_low -= max(0.0, float(np.percentile(foot_low.min(axis=1), 5)))  # captured feet that float over the floor
    speed = np.linalg.norm(np.gradient(pos[:, [FEET[0][0], FEET[1][0]], :2], axis=0), axis=-1) * clip.fps
    planted = (foot_low < GROUND_CONTACT) & (speed < PLANT_SPEED)
    scale = G1_ROOT_HEIGHT / standing_height(pos[:, 0, 2], planted.all(axis=1))
    obj_rot = quat_to_matrix(clip.obj_rot.double()).numpy()
    obj_pos = lifted_path(clip.obj_pos.double().numpy(), obj_rot, mesh.vertices, scale)
    anchor = near_face(pos[:, 0], clip.obj_pos.double().numpy(), obj_rot, mesh)[:, None, :2]

    def scaled(p: np.ndarray) -> np.ndarray:  # [T, K, 3]
        return np.concatenate([anchor + scale * (p[..., :2] - anchor), scale * p[..., 2:]], -1)

    foot_pos, foot_yaw = feet(pos, foot_low, planted, scaled, robot.sole_height)
    com_xy = support(foot_pos, foot_yaw, planted, robot.sole_centre)
    hands = hand_targets(clip, pos, rot, mesh, obj_pos, robot, scaled)
    geom = default_geometry()
    centre = 0.5 * (geom.seg_a + geom.seg_b).numpy()[list(TRUNK)]  # [2, 3] head and chest geom centres
    trunk = scaled(pos[:, TRUNK] + np.einsum("tkij,kj->tki", rot[:, TRUNK], centre))
    return Targets(scale=scale, pelvis_pos=scaled(pos[:, :1])[:, 0], pelvis_rot=rot[:, 0],
                   torso_rot=rot[:, _I["Chest"]], knee_pos=scaled(pos[:, list(KNEES)]),
                   elbow_pos=scaled(pos[:, list(ELBOWS)]), head_pos=trunk[:, 0], chest_pos=trunk[:, 1],
                   foot_pos=foot_pos, foot_yaw=foot_yaw, planted=planted, com_xy=com_xy, **hands,
                   obj_pos=obj_pos, obj_rot=clip.obj_rot.double().numpy())


def standing_height(pelvis_z: np.ndarray, both_planted: np.ndarray) -> float:
    """The human's standing pelvis height: the 90th percentile over frames with both feet planted (all frames
    when there are none)."""
    z = pelvis_z[both_planted] if both_planted.any() else pelvis_z
    return float(np.percentile(z, 90))


def near_face(pelvis: np.ndarray, obj_pos: np.ndarray, obj_rot: np.ndarray, mesh: SurfaceDistance) -> np.ndarray:
    """[T, 3] the point of the object's bounding box (in its own frame) nearest to the pelvis, at the object's
    height: what body targets are scaled about, so that a body beside the object stays beside it."""
    level = np.concatenate([pelvis[:, :2], obj_pos[:, 2:]], -1)
    local = np.clip(np.einsum("tji,tj->ti", obj_rot, level - obj_pos), mesh.lo, mesh.hi)
    return obj_pos + np.einsum("tij,tj->ti", obj_rot, local)


def lifted_path(obj_pos: np.ndarray, obj_rot: np.ndarray, vertices: np.ndarray, scale: float) -> np.ndarray:
    """The object's path with its lowest point's height above the floor scaled by `scale` (resting: unchanged)."""
    lowest = obj_pos[:, 2] + np.einsum("tj,vj->tv", obj_rot[:, 2, :], vertices).min(axis=1)
    out = obj_pos.copy()
    out[:, 2] -= (1.0 - scale) * np.clip(lowest, 0.0, None)
    return out


def feet(pos, foot_low, planted, scaled, sole_height: float) -> tuple[np.ndarray, np.ndarray]:
    """Ankle_roll targets [T, 2, 3] and headings [T, 2]: the scaled human ankle, flat on the floor and held still
    over each planted span, else lifted to the human foot's clearance (at least `LIFT_MIN`)."""
    ankles, toes = [f[0] for f in FEET], [f[1] for f in FEET]
    xy = scaled(pos[:, ankles])[..., :2]
    toward = pos[:, toes, :2] - pos[:, ankles, :2]
    yaw = np.unwrap(np.arctan2(toward[..., 1], toward[..., 0]), axis=0)
    out_pos, out_yaw = np.empty(xy.shape[:2] + (3,)), np.empty(yaw.shape)
    for k in range(2):
        held = hold_over_spans(np.concatenate([xy[:, k], yaw[:, k, None]], -1), planted[:, k])
        out_pos[:, k, :2], out_yaw[:, k] = held[:, :2], held[:, 2]
    lift = np.where(planted, 0.0, np.maximum(foot_low, LIFT_MIN))
    out_pos[..., 2] = sole_height + FOOT_MARGIN + lift
    return out_pos, out_yaw


def support(foot_pos: np.ndarray, foot_yaw: np.ndarray, planted: np.ndarray, sole_centre: float) -> np.ndarray:
    """[T, 2] the centre of the soles of the planted feet; a foot's share grows over `SUPPORT_FRAMES` after it
    touches down and shrinks over as many before it lifts, so the weight is on the stance foot alone before the
    other one leaves the floor (both feet count equally when neither is planted)."""
    centre = foot_pos[..., :2] + sole_centre * np.stack([np.cos(foot_yaw), np.sin(foot_yaw)], -1)
    share = np.stack([np.clip(nearest_marked(~planted[:, k])[1] / SUPPORT_FRAMES, 0.0, 1.0) for k in range(2)], -1)
    share = np.where(share.sum(-1, keepdims=True) > 1e-6, share, 1.0)
    return (share[..., None] * centre).sum(1) / share.sum(-1, keepdims=True)


def hand_targets(clip: Clip, pos, rot, mesh: SurfaceDistance, obj_pos: np.ndarray, robot: Robot, scaled) -> dict:
    """Hand capsule centre targets, surface normals, blend weights and contact phases (see the module docstring)."""
    palm = default_geometry().box_center[list(WRISTS)].numpy()  # [2, 3] palm centre in each wrist frame
    palm_world = pos[:, WRISTS] + np.einsum("tkij,kj->tki", rot[:, WRISTS], palm)
    obj_rot = quat_to_matrix(clip.obj_rot.double()).numpy()
    local = np.einsum("tji,tkj->tki", obj_rot, palm_world - clip.obj_pos.double().numpy()[:, None])
    flag = clip.obj_contact.numpy()[:, None] > 0.5
    contact = flag & np.stack([(clip.contact[:, list(hand)] > 0.5).any(-1).numpy() for hand in HANDS], -1)
    surface, normal, sd = closest_surface(mesh, local.reshape(-1, 3))
    holds = contact | (flag & (sd.reshape(contact.shape) < HOLD_DISTANCE))  # labelled, or touching unlabelled
    on_object = surface.reshape(local.shape) + normal.reshape(local.shape) * robot.hand_radius[None, :, None]
    free_local = np.einsum("tji,tkj->tki", obj_rot, scaled(palm_world) - obj_pos[:, None])
    free_local, free_normal, facing = outside(free_local, mesh, robot.hand_radius)
    out = {"hand_pos": np.empty_like(local), "hand_normal": np.empty_like(local), "hand_w": np.empty(contact.shape),
           "palm_w": np.empty(contact.shape), "contact": contact}
    for k in range(2):
        near, gap = nearest_marked(holds[:, k])
        w = np.clip(1.0 - gap / BLEND_FRAMES, 0.0, 1.0)[:, None]
        out["hand_w"][:, k], out["palm_w"][:, k] = w[:, 0], np.maximum(w[:, 0], facing[:, k])
        target = w * on_object[near, k] + (1.0 - w) * free_local[:, k]
        out["hand_pos"][:, k] = obj_pos + np.einsum("tij,tj->ti", obj_rot, target)
        toward = normal.reshape(local.shape)[near, k] if holds[:, k].any() else free_normal[:, k]
        out["hand_normal"][:, k] = np.einsum("tij,tj->ti", obj_rot, toward)
    return out


def outside(local: np.ndarray, mesh: SurfaceDistance, radius: np.ndarray) -> tuple[np.ndarray, ...]:
    """Free hand targets [T, 2, 3] (object frame) moved out of the object where they are inside it or nearer than
    the hand's radius; the outward normal of the nearest surface point; how much the palm should face it (1 at
    the surface, 0 from `FACE_DISTANCE` on)."""
    surface, normal, sd = closest_surface(mesh, local.reshape(-1, 3))
    surface, normal, sd = surface.reshape(local.shape), normal.reshape(local.shape), sd.reshape(local.shape[:2])
    pushed = np.where((sd < radius[None])[..., None], surface + normal * radius[None, :, None], local)
    return pushed, normal, np.clip(1.0 - (sd - radius[None]) / FACE_DISTANCE, 0.0, 1.0)


def closest_surface(mesh: SurfaceDistance, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest points of the mesh surface [N, 3] to `points` [N, 3] (object frame), the outward unit normal
    there (the direction away from the surface toward an outside point; the face normal when nearly on it) and
    the signed distances [N]."""
    near, sd, face = mesh.nearest(points)
    off = points - near
    dist = np.linalg.norm(off, axis=-1, keepdims=True)
    away = np.where(sd[:, None] < 0, -off, off) / np.maximum(dist, 1e-12)
    return near, np.where(dist > 1e-3, away, face), sd
