"""Measured quality of a clip against its object mesh: the numbers `interprior data synth --check` reports.

All distances use the humanoid's collision geoms (`interprior.data.contacts.default_geometry`, placed with the
clip's body rotations) and the exact signed distance to the object's triangle mesh (`meshdist`):

  foot_below_floor_cm   deepest point of a foot geom below z = 0 (0 when never below)
  foot_slide_cm         largest horizontal drift of a foot (ankle and toe) while it is on the ground (its lowest
                        point within 1 cm of the floor), measured from where it touched down
  hand_gap_cm           in frames with the object flag, for every hand labelled +1: how far the hand (nearest of
                        its palm box and 15 finger capsules) is from the object surface
  hand_penetration_cm   deepest point of any hand geom inside the object, over all frames
  body_penetration_cm   deepest point of any other body geom inside the object, over all frames
  object_float_cm       per frame the object must rest on the floor or be held by both hands: the smaller of
                        (its lowest point's height) and (the larger of the two hands' gaps); the maximum over frames
  object_below_floor_cm deepest object point below z = 0
  joint_range_excess_deg largest amount by which a joint angle (derived from the body rotations, as the simulator
                        does) leaves the humanoid's hinge range
  grip_slip_cm          during each contact span of a hand (object flag and the hand labelled +1), largest drift of
                        its palm centre in the object frame (the object moves rigidly with the hands when this is ~0)
  hf_body_mm            RMS of body positions minus their 5-frame moving average (high-frequency energy)
  finger_curl_deg       mean |finger hinge angle| (0 for flat, uncurled hands)

`quality_report(clip, obj)` accepts a `SynthObject`, a trimesh, or a mesh file path for `obj`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from interprior import schema
from interprior.assets.humanoid import joint_ranges
from interprior.assets.objects import read_mesh
from interprior.data.clip import Clip
from interprior.data.contacts import body_lowest_z, default_geometry
from interprior.data.convert import joint_angles_from_rotations
from interprior.data.synth.bodygeom import geom_signed_distances, to_object_frame
from interprior.data.synth.meshdist import MeshDistance
from interprior.rotations import quat_apply, quat_to_matrix

GROUND_CONTACT = 0.01  # m: a foot this close to the floor is on the ground
HAND_BODIES = (schema.LEFT_HAND, schema.RIGHT_HAND)
LIMITS = {  # the acceptance thresholds, for `passes`
    "foot_below_floor_cm": 1.0, "foot_slide_cm": 2.0, "hand_gap_cm": 1.0, "object_float_cm": 1.0,
    "object_below_floor_cm": 1.0, "joint_range_excess_deg": 0.01,  # numerical round trip only
}


def mesh_distance(obj):
    """Something with `signed(points, far)` and `vertices`: a SynthObject's own analytic distance, or the exact
    distance to a triangle mesh (trimesh or mesh file)."""
    if isinstance(obj, MeshDistance) or hasattr(obj, "signed"):
        return obj
    if isinstance(obj, (str, Path)):
        return MeshDistance.from_mesh(read_mesh(obj))
    return MeshDistance.from_mesh(obj)


def _foot_slide(body_pos: torch.Tensor, low: torch.Tensor) -> float:
    worst = 0.0
    idx = schema.BODY_INDEX
    for side in "LR":
        pair = [idx[f"{side}_Ankle"], idx[f"{side}_Toe"]]
        xy = body_pos[:, pair, :2].double().numpy()  # [T, 2, 2]
        ground = (low[:, pair].amin(dim=1) < GROUND_CONTACT).numpy()
        start = None
        for t in range(len(ground) + 1):
            if t < len(ground) and ground[t]:
                if start is None:
                    start = t
                continue
            if start is not None:
                drift = np.linalg.norm(xy[start:t] - xy[start], axis=-1).max()
                worst = max(worst, float(drift))
                start = None
    return worst


def _moving_average_residual(x: np.ndarray, width: int = 5) -> float:
    if x.shape[0] <= width:
        return 0.0
    kernel = np.ones(width) / width
    smooth = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="valid"), 0, x)
    half = width // 2
    return float(np.sqrt(np.mean((x[half:-half] - smooth) ** 2)))


def quality_report(clip: Clip, obj) -> dict:
    """Numbers describing how clean a clip is (see the module docstring). `obj`: SynthObject, trimesh or path."""
    md = mesh_distance(obj)
    g = default_geometry()
    low = body_lowest_z(clip.body_pos, clip.body_rot, g)  # [T, 52]
    feet = list(schema.FEET)
    report: dict = {"clip": clip.name, "frames": clip.num_frames}
    report["foot_below_floor_cm"] = 100.0 * max(0.0, -float(low[:, feet].min()))
    report["foot_slide_cm"] = 100.0 * _foot_slide(clip.body_pos, low)

    # hands and other bodies against the object
    hand_bodies = [b for part in HAND_BODIES for b in part]
    sd, owner = geom_signed_distances(clip, md)  # [T, K], [K]
    is_hand = np.isin(owner, hand_bodies)
    hand_gap = np.stack([sd[:, np.isin(owner, part)].min(axis=1) for part in HAND_BODIES], axis=1)  # [T, 2]
    flag = clip.obj_contact.numpy() > 0.5
    wrist = [schema.BODY_INDEX["L_Wrist"], schema.BODY_INDEX["R_Wrist"]]
    labelled = (clip.contact[:, wrist].numpy() > 0.5) & flag[:, None]
    report["hand_gap_cm"] = 100.0 * float(np.clip(hand_gap[labelled], 0.0, None).max()) if labelled.any() else 0.0
    report["hand_penetration_cm"] = 100.0 * max(0.0, -float(sd[:, is_hand].min()))
    report["body_penetration_cm"] = 100.0 * max(0.0, -float(sd[:, ~is_hand].min()))
    report["contact_frames"] = int(flag.sum())

    # object support
    verts = md.vertices
    m = quat_to_matrix(clip.obj_rot.double()).numpy()
    obj_z = clip.obj_pos.double().numpy()[:, 2][:, None] + np.einsum("tj,vj->tv", m[:, 2, :], verts)
    lowest = obj_z.min(axis=1)
    held = np.clip(hand_gap.max(axis=1), 0.0, None)
    report["object_float_cm"] = 100.0 * float(np.minimum(np.clip(lowest, 0.0, None), held).max())
    report["object_below_floor_cm"] = 100.0 * max(0.0, -float(lowest.min()))

    # rigid grip: palm centres in the object frame during each contact span
    palm = torch.zeros(2, 3, dtype=torch.float64)
    palm[0], palm[1] = g.box_center[wrist[0]], g.box_center[wrist[1]]
    palm_world = clip.body_pos.double()[:, wrist] + quat_apply(clip.body_rot.double()[:, wrist], palm.expand(
        clip.num_frames, 2, 3))
    palm_local = to_object_frame(palm_world.numpy(), clip.obj_pos, clip.obj_rot)
    slip = 0.0
    for k in range(2):  # each hand over the spans where it is labelled on the object
        edges = np.flatnonzero(np.diff(np.concatenate([[0], labelled[:, k].astype(int), [0]])))
        for a, b in zip(edges[::2], edges[1::2]):
            slip = max(slip, float(np.linalg.norm(palm_local[a:b, k] - palm_local[a, k], axis=-1).max()))
    report["grip_slip_cm"] = 100.0 * slip

    # joint ranges, smoothness, fingers

    angles = joint_angles_from_rotations(clip.body_rot).numpy()
    angles = (angles + np.pi) % (2 * np.pi) - np.pi
    lim = joint_ranges()
    excess = np.maximum(lim[:, 0] - angles, angles - lim[:, 1]).max()
    report["joint_range_excess_deg"] = float(np.degrees(max(0.0, excess)))
    report["hf_body_mm"] = 1000.0 * _moving_average_residual(clip.body_pos.double().numpy().reshape(clip.num_frames, -1))
    fingers = [d for b in schema.FINGER_BODIES for d in range((b - 1) * 3, b * 3)]
    report["finger_curl_deg"] = float(np.degrees(np.abs(angles[:, fingers]).mean()))
    return report


METRICS = ("foot_below_floor_cm", "foot_slide_cm", "hand_gap_cm", "hand_penetration_cm", "body_penetration_cm",
           "object_float_cm", "object_below_floor_cm", "joint_range_excess_deg", "grip_slip_cm", "hf_body_mm",
           "finger_curl_deg")


def summarize(reports: list[dict]) -> dict:
    """Maximum of every metric over the reports (and the clip where it happens)."""
    out = {}
    for key in METRICS:
        values = [(r[key], r["clip"]) for r in reports if key in r]
        if values:
            value, clip = max(values)
            out[key] = {"max": value, "clip": clip}
    return out


def summarize_by_skill(rows: list[dict]) -> dict:
    """Per skill (manifest rows with `skill`, `seconds` and `quality`): clips, shortest and longest clip (s), and
    the maximum of every metric over its clips (`summarize`)."""
    out = {}
    for skill in dict.fromkeys(r["skill"] for r in rows):
        mine = [r for r in rows if r["skill"] == skill]
        seconds = [r["seconds"] for r in mine]
        out[skill] = {"clips": len(mine), "seconds": [min(seconds), max(seconds)],
                      **summarize([r["quality"] for r in mine])}
    return out


def passes(summary_or_report: dict) -> list[str]:
    """Names of the acceptance limits that are exceeded (empty when the clip or the set is clean)."""
    bad = []
    for key, limit in LIMITS.items():
        value = summary_or_report.get(key)
        value = value["max"] if isinstance(value, dict) else value
        if value is not None and value > limit + 1e-9:
            bad.append(key)
    return bad
