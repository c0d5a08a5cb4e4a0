"""Finger poses: a relaxed hand off contact and a flat hand pressed on a surface, plus the palm contact point.

The humanoid's palm is a thin box on the back of the hand; the thumb base (thenar) and the finger capsules hang
1-2 cm below it. Pressing a hand flat on a face therefore means: the lowest points of all hand geoms lie in one
plane under the palm box (the highest plane the thumb and every finger can stay above, ~3.4 cm under the wrist)
and each finger is straightened until it lies on it. The contact point used for the IK target is the palm
centre projected onto that plane (2 mm short of it: the hand touches without sinking in).

All quantities are computed once from the humanoid spec by forward kinematics in the zero pose, where the wrist
frame is aligned with the world (palm normal = -z, fingers along +y on the left and -y on the right).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from interprior import schema
from interprior.assets.humanoid import default_offsets, humanoid_spec, joint_ranges
from interprior.assets.kinematics import KinematicTree
from interprior.data.contacts import body_lowest_z, default_geometry

FINGERS = ("Index", "Middle", "Pinky", "Ring")
RELAXED_CURL = 0.25  # rad added per finger segment off contact (the zero pose is already slightly curled)
RELAXED_THUMB_CURL = 0.2
CONTACT_CLEARANCE = 0.002  # m: gap left between the hand's lowest plane and the surface (no interpenetration)


def _dof(body: str, axis: int = 0) -> int:
    return (schema.BODY_INDEX[body] - 1) * 3 + axis


def _curl_sign(side: str) -> float:
    """Sign of the x-hinge angle that curls fingers toward the palm (the ranges are mirrored)."""
    return -1.0 if side == "L" else 1.0


def _lowest_below_wrist(angles: np.ndarray, side: str) -> np.ndarray:
    """[N, 52] lowest point of each body's geom below the wrist (wrist-frame z) for N finger configurations."""
    tree = KinematicTree.from_offsets(default_offsets())
    a = torch.as_tensor(angles, dtype=torch.float64)
    n = a.shape[0]
    root = torch.zeros(n, 3, dtype=torch.float64)
    rot = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64).expand(n, 4)
    pos, quat = tree.forward(root, rot, a)
    low = body_lowest_z(pos, quat, default_geometry())
    return (low - pos[:, schema.BODY_INDEX[f"{side}_Wrist"], 2:3]).numpy()


def _grid(lo: float, hi: float, limit: float, count: int) -> np.ndarray:
    return np.linspace(max(lo, -limit), min(hi, limit), count)


@lru_cache(maxsize=2)
def contact_shape(side: str) -> tuple[np.ndarray, float]:
    """(finger angles [153] with only this hand's finger dofs set, plane height below the wrist) for a hand
    pressed flat on a surface: the highest plane that the thumb (swung away from the palm) and every finger can
    stay above, each finger then lying as close to it as its three x-hinges allow (grid search, batched FK)."""
    ranges = joint_ranges()
    idx = schema.BODY_INDEX
    angles = np.zeros(schema.NUM_DOFS)
    # thumb: swing it away from the palm side as far as that raises its lowest point
    d1 = _dof(f"{side}_Thumb1")
    cand = _grid(*ranges[d1], 1.0, 41)
    configs = np.zeros((len(cand), schema.NUM_DOFS))
    configs[:, d1] = cand
    thumb = [idx[f"{side}_Thumb{k}"] for k in "123"]
    thumb_low = _lowest_below_wrist(configs, side)[:, thumb].min(axis=1)
    angles[d1] = cand[int(np.argmax(thumb_low))]
    plane = float(thumb_low.max())
    # fingers: all (MCP, PIP, DIP) combinations on a grid; the four fingers are independent, so one batch of
    # configurations sets every finger to its own k-th combination at once
    count = 15
    combos = np.stack(np.meshgrid(*[np.arange(count)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    configs = np.zeros((len(combos), schema.NUM_DOFS))
    per_finger = {}
    for finger in FINGERS:
        bodies = [idx[f"{side}_{finger}{k}"] for k in "123"]
        dofs = [_dof(schema.BODY_NAMES[b]) for b in bodies]
        values = np.stack([_grid(*ranges[d], 1.0, count)[combos[:, j]] for j, d in enumerate(dofs)], axis=1)
        configs[:, dofs] = values
        per_finger[finger] = (bodies, values)
    low_all = _lowest_below_wrist(configs, side)
    for finger, (bodies, values) in per_finger.items():
        low = low_all[:, bodies]  # [N, 3]
        per_finger[finger] = (bodies, values, low)
        plane = min(plane, float(low.min(axis=1).max()))  # the finger must be able to stay above the plane
    for finger, (bodies, mesh, low) in per_finger.items():
        gaps = low - plane
        cost = np.where(gaps.min(axis=1) >= -1e-9, gaps.sum(axis=1), np.inf)  # flat on the plane, never below
        best = mesh[int(np.argmin(cost))]
        for j, b in enumerate(bodies):
            angles[_dof(schema.BODY_NAMES[b])] = best[j]
    return angles, plane


@lru_cache(maxsize=2)
def relaxed_shape(side: str) -> np.ndarray:
    """Finger angles [153] (this hand only) of a relaxed hand: the zero pose curled a little further."""
    angles = np.zeros(schema.NUM_DOFS)
    curl = _curl_sign(side)
    for finger in FINGERS:
        for k in "123":
            angles[_dof(f"{side}_{finger}{k}")] = curl * RELAXED_CURL
    angles[_dof(f"{side}_Thumb3")] = curl * RELAXED_THUMB_CURL
    lo, hi = joint_ranges().T
    return np.clip(angles, lo, hi)


@lru_cache(maxsize=2)
def palm_contact_point(side: str) -> np.ndarray:
    """[3] wrist-frame point of the hand's contact plane under the palm centre (IK target point)."""
    _, plane = contact_shape(side)

    geom = humanoid_spec()["bodies"][schema.BODY_INDEX[f"{side}_Wrist"]]["geoms"][0]
    x, y = geom["pos"][0], geom["pos"][1]
    return np.array([x, y, plane - CONTACT_CLEARANCE])


def finger_angles(grip: np.ndarray) -> np.ndarray:
    """[T, 153] finger dofs (other dofs zero) blending relaxed (grip 0) and flat-on-surface (grip 1) hands."""
    grip = np.asarray(grip, dtype=np.float64)[:, None]
    out = np.zeros((grip.shape[0], schema.NUM_DOFS))
    for side in "LR":
        relaxed = relaxed_shape(side)
        contact, _ = contact_shape(side)
        out += relaxed + grip * (contact - relaxed)
    return out


FINGER_DOFS: tuple[int, ...] = tuple(
    d for b in schema.FINGER_BODIES for d in range((b - 1) * 3, b * 3)
)
