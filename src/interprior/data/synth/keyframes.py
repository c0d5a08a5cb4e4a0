"""Keyframe postures (joint angles [153]) that the IK's posture regulariser pulls toward.

The IK only pins feet, hands and the centre of mass; everything else comes from these postures, so they decide
what the motion looks like. They are written as offsets from a quiet standing pose and blended by three scalar
channels: `crouch` (0 standing .. ~1.2 deep hip-hinge squat), `hold` (arms carrying something in front) and
`push` (arms reaching forward). Left-side values are given; the right side mirrors x and z hinges.
"""

from __future__ import annotations

import numpy as np

from interprior import schema

# Hip and knee flexion stay below 85° (see ik.MAX_MIDDLE_ANGLE), so depth also comes from pitching the pelvis and
# rounding the spine: at crouch 1 a balanced squat-stoop with the shoulders ~0.85 m above the floor.
PELVIS_PITCH_PER_CROUCH = 0.4
_CROUCH = {"Hip": (0.12, -1.45, 0.0), "Knee": (0.0, 1.45, 0.0), "Shoulder": (0.0, 0.0, -0.9),
           "Elbow": (0.0, 0.0, -0.2)}
_CROUCH_CENTRE = {"Torso": (0.0, 0.45, 0.0), "Spine": (0.0, 0.45, 0.0), "Chest": (0.0, 0.36, 0.0),
                  "Neck": (0.0, -0.45, 0.0), "Head": (0.0, -0.35, 0.0)}
_HOLD = {"Shoulder": (0.25, 0.0, -0.45), "Elbow": (0.0, 0.0, -1.1)}
_HOLD_CENTRE = {"Torso": (0.0, -0.05, 0.0)}  # lean back a little against the load
_PUSH = {"Shoulder": (0.35, 0.0, -0.7), "Elbow": (0.0, 0.0, 0.15)}


def _dof(body: str, axis: int) -> int:
    return (schema.BODY_INDEX[body] - 1) * 3 + axis


def _add(q: np.ndarray, sided: dict, centre: dict, amount) -> None:
    amount = np.asarray(amount)
    for part, values in sided.items():
        for axis, v in enumerate(values):
            for side, sign in (("L", 1.0), ("R", -1.0)):
                q[..., _dof(f"{side}_{part}", axis)] += amount * v * (sign if axis != 1 else 1.0)
    for body, values in centre.items():
        for axis, v in enumerate(values):
            q[..., _dof(body, axis)] += amount * v


def standing() -> np.ndarray:
    """[153] quiet standing: arms down beside the body, elbows slightly bent, palms facing the thighs."""
    q = np.zeros(schema.NUM_DOFS)
    _add(q, {"Shoulder": (-1.3, 0.0, -0.1), "Elbow": (0.0, 0.0, -0.2)}, {}, 1.0)
    return q


def posture(crouch, hold, push) -> np.ndarray:
    """[T, 153] blended postures for per-frame channel values [T]."""
    crouch, hold, push = (np.asarray(x, dtype=np.float64) for x in (crouch, hold, push))
    q = np.tile(standing(), crouch.shape + (1,))
    _add(q, _CROUCH, _CROUCH_CENTRE, crouch)
    _add(q, _HOLD, _HOLD_CENTRE, hold)
    _add(q, _PUSH, {}, push)
    # flat feet: the ankle undoes pelvis pitch + hip + knee flexion in the sagittal plane
    for side in "LR":
        sagittal = q[..., _dof(f"{side}_Hip", 1)] + q[..., _dof(f"{side}_Knee", 1)]
        q[..., _dof(f"{side}_Ankle", 1)] = -(pelvis_pitch(crouch) + sagittal)
    return q


def pelvis_pitch(crouch) -> np.ndarray:
    return PELVIS_PITCH_PER_CROUCH * np.asarray(crouch, dtype=np.float64)
