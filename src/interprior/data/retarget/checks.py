"""The figures `interprior data retarget --check` reports for a retargeted G1 clip, measured on the G1's own
collision geometry (from its MJCF: capsules and spheres as points on their axes with a radius) against the
object's triangle mesh (exact signed distance, `surface`), with the definitions of the synthetic generator's
checks (`interprior.data.synth.quality`):

  foot_slide_cm          largest horizontal drift of a foot's sole points while that foot is on the ground (its
                         lowest point within `GROUND_CONTACT` of the floor), from where it touched down
  foot_below_floor_cm    deepest sole point below the floor
  hand_gap_cm            in the contact phases (object flag and the hand's wrist_yaw link labelled +1, i.e. the
                         source's hand labels): how far the hand's capsule is from the object surface
  hand_penetration_cm    deepest hand capsule point inside the object, over all frames (no limit: informative)
  body_penetration_cm    deepest point of any other collision geom inside the object (no limit: informative)
  object_float_cm        per frame the object must rest on the floor or be held by both hands: the smaller of its
                         lowest point's height and the larger of the two hands' gaps; the maximum over frames
  joint_range_excess_deg largest amount by which a hinge angle (derived from the body rotations, as the simulator
                         does) leaves the G1's range
"""

from __future__ import annotations

import numpy as np

from interprior.data.clip import Clip
from interprior.data.convert import joint_angles_from_rotations
from interprior.data.retarget.robot import Robot
from interprior.data.retarget.spans import span_starts
from interprior.data.retarget.surface import SurfaceDistance
from interprior.data.synth.bodygeom import to_object_frame
from interprior.data.synth.quality import GROUND_CONTACT, LIMITS
from interprior.rotations import quat_to_matrix

NEAR = 0.3  # m: capsule points farther than this outside the object's bounding box get a lower bound only
RETARGET_LIMITS = {  # the acceptance limits (cm; degrees)
    "foot_slide_cm": LIMITS["foot_slide_cm"],
    "foot_below_floor_cm": LIMITS["foot_below_floor_cm"],
    "hand_gap_cm": 2.0,
    "object_float_cm": 2.0,  # held: both hands within the hand-gap limit
    "joint_range_excess_deg": LIMITS["joint_range_excess_deg"],
}
FIGURES = ("foot_slide_cm", "foot_below_floor_cm", "hand_gap_cm", "hand_penetration_cm", "body_penetration_cm",
           "object_float_cm", "joint_range_excess_deg")


def _world(clip: Clip, bodies, local: np.ndarray) -> np.ndarray:
    """Body-frame points `local` [K, P, 3] of `bodies` (K) -> world [T, K, P, 3]."""
    rot = quat_to_matrix(clip.body_rot.double()[:, list(bodies)]).numpy()  # [T, K, 3, 3]
    pos = clip.body_pos.double().numpy()[:, list(bodies)]
    return pos[:, :, None] + np.einsum("tkij,kpj->tkpi", rot, local)


def geom_distances(clip: Clip, mesh: SurfaceDistance, robot: Robot) -> np.ndarray:
    """[T, G] signed distance of each collision geom of the G1 to the object surface (negative: inside)."""
    geoms = robot.geoms
    world = _world(clip, geoms.body, geoms.points)  # [T, G, P, 3]
    t, g, p, _ = world.shape
    obj = to_object_frame(world.reshape(t, g * p, 3), clip.obj_pos, clip.obj_rot)
    sd = mesh.signed(obj.reshape(-1, 3), far=NEAR).reshape(t, g, p) - geoms.radius[None, :, None]
    return sd.min(axis=-1)


def foot_figures(clip: Clip, robot: Robot) -> dict:
    world = _world(clip, robot.foot_bodies, np.broadcast_to(robot.sole_points, (2,) + robot.sole_points.shape))
    lowest = world[..., 2].min(axis=-1) - robot.sole_radius  # [T, 2]
    slide = 0.0
    for k in range(2):
        ground = lowest[:, k] < GROUND_CONTACT
        start = span_starts(ground)
        drift = np.linalg.norm(world[:, k, :, :2] - world[start, k, :, :2], axis=-1).max(axis=-1)
        slide = max(slide, float(drift[ground].max(initial=0.0)))
    return {"foot_slide_cm": 100.0 * slide, "foot_below_floor_cm": 100.0 * max(0.0, -float(lowest.min()))}


def joint_excess_deg(clip: Clip, robot: Robot) -> float:
    angles = joint_angles_from_rotations(clip.body_rot, robot.body).numpy()
    excess = np.maximum(robot.ranges[:, 0] - angles, angles - robot.ranges[:, 1]).max()
    return float(np.degrees(max(0.0, excess)))


def clip_figures(clip: Clip, mesh: SurfaceDistance, robot: Robot) -> dict:
    """Every figure of `FIGURES` for a G1 clip of the object `mesh`."""
    sd = geom_distances(clip, mesh, robot)
    hands = list(robot.hand_geoms)
    gap, others = sd[:, hands], np.delete(sd, hands, axis=1)
    wrists = list(robot.hand_bodies)
    contact = (clip.obj_contact.numpy()[:, None] > 0.5) & (clip.contact[:, wrists].numpy() > 0.5)
    rot = quat_to_matrix(clip.obj_rot.double()).numpy()
    lowest = clip.obj_pos.double().numpy()[:, 2] + np.einsum("tj,vj->tv", rot[:, 2, :], mesh.vertices).min(axis=1)
    held = np.clip(gap.max(axis=1), 0.0, None)
    figures = foot_figures(clip, robot)
    figures.update(
        hand_gap_cm=100.0 * float(np.clip(gap[contact], 0.0, None).max(initial=0.0)),
        hand_penetration_cm=100.0 * max(0.0, -float(gap.min())),
        body_penetration_cm=100.0 * max(0.0, -float(others.min())),
        object_float_cm=100.0 * float(np.minimum(np.clip(lowest, 0.0, None), held).max()),
        joint_range_excess_deg=joint_excess_deg(clip, robot),
        contact_frames=int(contact.any(axis=1).sum()),
    )
    return figures


def summarize(rows: list[dict]) -> dict:
    """Per figure over the rows (each with `clip` and `figures`): max (and the clip where it is) and mean."""
    out = {}
    for key in FIGURES:
        values = [(r["figures"][key], r["clip"]) for r in rows if key in r.get("figures", {})]
        if values:
            value, clip = max(values)
            out[key] = {"max": value, "mean": float(np.mean([v for v, _ in values])), "clip": clip}
    return out


def over_limits(figures: dict) -> list[str]:
    """Names of the limits exceeded by one clip's figures or by a summary (its maxima)."""
    bad = []
    for key, limit in RETARGET_LIMITS.items():
        value = figures.get(key)
        value = value["max"] if isinstance(value, dict) else value
        if value is not None and value > limit + 1e-9:
            bad.append(key)
    return bad


def by_group(rows: list[dict], key: str) -> dict:
    """`summarize` per value of `key` in the rows (e.g. the source's skill), with the clip count."""
    out = {}
    for group in dict.fromkeys(r.get(key) for r in rows if r.get(key) is not None):
        mine = [r for r in rows if r.get(key) == group]
        out[group] = {"clips": len(mine), **summarize(mine)}
    return out
