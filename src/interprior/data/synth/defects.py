"""Capture-like defects injected into a finished clip (`interprior data synth --defects ...`).

Each defect changes the kinematics only (contact labels stay as annotated, as in captured data) and is written
into `clip.notes` and the clip name (`sub0_box_000-floating-jitter`: the object is still the second-to-last
`_` part). Parameters are drawn from their own random stream, so the clean clip of the same seed is unchanged.

* floating     for ~40 % of the clip (around the longest contact span) the object is lifted 3-6 cm and moved
               2-4 cm away from one hand: off that hand while held, above the floor while resting;
* penetration  for ~40 % of the clip (around the first grasp) the object sinks 3-5 cm: into the floor while it
               rests, and moves 2-4 cm into one hand while held;
* jitter       white noise on the root (5 mm), every body joint (0.02 rad) and the object (5 mm, 0.02 rad);
* flat-hands   finger curl removed: every finger joint at 0 (the skeleton's rest pose, as in body-only capture).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from interprior import schema
from interprior.data.clip import Clip
from interprior.data.convert import joint_angles_from_rotations
from interprior.data.synthetic import clip_from_joint_angles
from interprior.rotations import axis_angle_to_quat, quat_mul, quat_normalize

DEFECTS: tuple[str, ...] = ("floating", "penetration", "jitter", "flat-hands")
RAMP_SECONDS = 0.3


def _window(clip: Clip, rng: np.random.Generator, share: float = 0.4, at_start: bool = False) -> np.ndarray:
    """[T] weights 0..1: a raised-cosine window over ~`share` of the clip, centred on the longest contact span
    (or on its start: half resting, half held; anywhere when there is no contact)."""
    T = clip.num_frames
    flag = clip.obj_contact.numpy() > 0.5
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flag.astype(int), [0]])))
    spans = list(zip(edges[::2], edges[1::2]))
    longest = max(spans, key=lambda s: s[1] - s[0]) if spans else None
    if longest is None:
        mid = int(rng.integers(T // 4, 3 * T // 4 + 1))
    else:
        mid = int(longest[0]) if at_start else int((longest[0] + longest[1]) // 2)
    half = max(2, int(share * T / 2))
    t = np.arange(T)
    ramp = max(1, int(RAMP_SECONDS * clip.fps))
    dist = np.abs(t - mid) - (half - ramp)
    return np.where(dist <= 0, 1.0, np.where(dist < ramp, 0.5 * (1 + np.cos(np.pi * dist / ramp)), 0.0))


def _offset_object(clip: Clip, offset: np.ndarray) -> Clip:
    return replace(clip, obj_pos=clip.obj_pos + torch.as_tensor(offset, dtype=clip.obj_pos.dtype))


def _toward_hand(clip: Clip, side: str) -> np.ndarray:
    """[T, 2] horizontal unit vectors from the object's origin toward a wrist."""
    palm = clip.body_pos[:, schema.BODY_INDEX[f"{side}_Wrist"], :2].double().numpy()
    toward = palm - clip.obj_pos[:, :2].double().numpy()
    return toward / np.maximum(np.linalg.norm(toward, axis=1, keepdims=True), 1e-9)


def floating(clip: Clip, rng: np.random.Generator) -> tuple[Clip, str]:
    """Object raised and moved away from one hand (a rigid offset between two clamping hands necessarily brings
    the other hand closer)."""
    height, away = rng.uniform(0.03, 0.06), rng.uniform(0.02, 0.04)
    side = "L" if rng.random() < 0.5 else "R"
    w = _window(clip, rng)
    offset = np.zeros((clip.num_frames, 3))
    offset[:, :2] = -away * _toward_hand(clip, side) * w[:, None]
    offset[:, 2] = height * w
    note = (f"floating (object raised {100 * height:.1f} cm and {100 * away:.1f} cm off the "
            f"{'left' if side == 'L' else 'right'} hand over {w.mean():.0%} of the clip)")
    return _offset_object(clip, offset), note


def penetration(clip: Clip, rng: np.random.Generator) -> tuple[Clip, str]:
    depth, into_hand = rng.uniform(0.03, 0.05), rng.uniform(0.02, 0.04)
    w = _window(clip, rng, at_start=True)
    side = "L" if rng.random() < 0.5 else "R"
    offset = np.zeros((clip.num_frames, 3))
    offset[:, :2] = into_hand * _toward_hand(clip, side) * w[:, None]
    offset[:, 2] = -depth * w
    note = (f"penetration (object {100 * depth:.1f} cm into the floor and {100 * into_hand:.1f} cm toward the "
            f"{'left' if side == 'L' else 'right'} hand over {w.mean():.0%})")
    return _offset_object(clip, offset), note


def _refk(clip: Clip, angles: torch.Tensor, root_pos: torch.Tensor, root_rot: torch.Tensor) -> Clip:
    """The clip with new joint angles / root, body poses by forward kinematics on the default skeleton."""

    out = clip_from_joint_angles(clip.name, root_pos, root_rot, angles, clip.obj_pos, clip.obj_rot, fps=clip.fps)
    return replace(clip, root_pos=out.root_pos, root_rot=out.root_rot, dof_expmap=out.dof_expmap,
                   body_pos=out.body_pos, body_rot=out.body_rot)


def _angles(clip: Clip) -> torch.Tensor:
    return joint_angles_from_rotations(clip.body_rot)


def jitter(clip: Clip, rng: np.random.Generator) -> tuple[Clip, str]:
    T = clip.num_frames
    n = lambda *shape, s: torch.as_tensor(rng.normal(0.0, s, size=shape))  # noqa: E731
    angles = _angles(clip)
    body = [d for d in range(schema.NUM_DOFS) if (d // 3 + 1) not in schema.FINGER_BODIES]
    angles[:, body] += n(T, len(body), s=0.02)
    root_pos = clip.root_pos.double() + n(T, 3, s=0.005)
    root_rot = quat_normalize(quat_mul(axis_angle_to_quat(n(T, 3, s=0.01)), clip.body_rot[:, 0].double()))
    out = _refk(clip, angles, root_pos, root_rot)
    obj_rot = quat_normalize(quat_mul(axis_angle_to_quat(n(T, 3, s=0.02)), clip.obj_rot.double())).float()
    out = replace(out, obj_pos=clip.obj_pos + n(T, 3, s=0.005).float(), obj_rot=obj_rot)
    return out, "jitter (noise: root 5 mm / 0.01 rad, joints 0.02 rad, object 5 mm / 0.02 rad)"


def flat_hands(clip: Clip, rng: np.random.Generator) -> tuple[Clip, str]:
    angles = _angles(clip)
    fingers = [d for b in schema.FINGER_BODIES for d in range((b - 1) * 3, b * 3)]
    angles[:, fingers] = 0.0
    return _refk(clip, angles, clip.root_pos.double(), clip.body_rot[:, 0].double()), "flat-hands (finger curl removed)"


FUNCTIONS = {"floating": floating, "penetration": penetration, "jitter": jitter, "flat-hands": flat_hands}


def apply_defects(clip: Clip, defects, rng: np.random.Generator) -> Clip:
    """The clip with the named defects applied in a fixed order; name suffixed with them, notes record them."""
    names = [d for d in DEFECTS if d in set(defects)]
    notes = list(clip.notes)
    for name in names:
        clip, note = FUNCTIONS[name](clip, rng)
        notes.append(f"injected defect: {note}")
    if not names:
        return clip
    return replace(clip, name=f"{clip.name}-{'-'.join(names)}", notes=notes)


def defect_rng(seed: int, index: int) -> np.random.Generator:
    """The defects' own stream for clip `index` of `seed` (the clean clip uses default_rng([seed, index]))."""
    return np.random.default_rng([int(seed), int(index), 1])
