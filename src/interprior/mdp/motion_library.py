"""The motion library: every clip's reference motion in simulator coordinates, precomputed once, flat over frames
on the CPU (clip i owns the rows `starts[i] : starts[i] + lengths[i]`), gathered per env per step with one index
tensor as a `RefState` (or a `ResetState` for resets).

Everything the observation, reward, termination and reset kernels need from the data is derived here, on the
CPU, with velocities by central differences inside each clip: joint angles from body rotations (never the file's
exp-maps), body and object linear/angular velocities, and the reference interaction-graph vectors (each body to
its nearest reference object surface point, the same definition as the simulator's, found by the same exact
KD-tree search, one tree per distinct object).
"""

from __future__ import annotations

import hashlib
from dataclasses import fields
from typing import Sequence

import torch
from torch import Tensor

from interprior.assets.embodiment import SMPLX, Embodiment
from interprior.data.clip import Clip, finite_difference
from interprior.data.convert import ClipMotion, angular_velocity
from interprior.data.state import ResetState
from interprior.mdp.types import RefState
from interprior.sim.nearest import SurfaceIndex

_FIELDS = ("root_pos", "root_rot", "body_pos", "body_rot", "body_linvel", "body_angvel", "dof_pos", "dof_vel",
           "obj_pos", "obj_rot", "obj_linvel", "obj_angvel", "contact", "obj_contact", "nearest_object_vec")


def _clip_tracks(clip: Clip, surface: SurfaceIndex, body: Embodiment) -> dict[str, Tensor]:
    motion = ClipMotion(clip, body)
    fps = clip.fps
    body_pos = clip.body_pos.double()
    body_rot = clip.body_rot.double()
    obj_pos, obj_rot = motion.obj_pos, motion.obj_rot
    nearest = surface.vectors(body_pos, obj_pos.double(), obj_rot.double())
    return {
        "root_pos": motion.root_pos, "root_rot": motion.root_rot,
        "body_pos": body_pos, "body_rot": body_rot,
        "body_linvel": finite_difference(body_pos, fps), "body_angvel": angular_velocity(body_rot, fps),
        "dof_pos": motion.wrapped_angles(slice(None)), "dof_vel": motion.joint_vel,
        "obj_pos": obj_pos, "obj_rot": obj_rot, "obj_linvel": motion.obj_linvel, "obj_angvel": motion.obj_angvel,
        "contact": clip.contact.double(), "obj_contact": clip.obj_contact.double(),
        "nearest_object_vec": nearest,
    }


class MotionLibrary:
    """Clips flat over frames (CPU, float32). `state(clip_ids, frames)` gathers a batch.
    `object_points`: the object-frame surface points [P, 3] of the clips' object, or one [P, 3] per clip when the
    clips use different objects. `body`: the `Embodiment` the clips are of (SMPL-X by default)."""

    def __init__(self, clips: Sequence[Clip], object_points: Tensor | Sequence[Tensor], body: Embodiment = SMPLX):
        if not clips:
            raise ValueError("a motion library needs at least one clip")
        fps = {float(c.fps) for c in clips}
        if len(fps) != 1:
            raise ValueError(f"clips have different frame rates {sorted(fps)}; resample them first")
        for clip in clips:
            clip.check_shapes(body.num_bodies)
        self.fps = fps.pop()
        self.clip_names: list[str] = [c.name for c in clips]
        self.lengths = torch.tensor([c.num_frames for c in clips], dtype=torch.long)
        self.starts = torch.cumsum(self.lengths, 0) - self.lengths
        per_clip = ([torch.as_tensor(p).float() for p in object_points] if isinstance(object_points, (list, tuple))
                    else [torch.as_tensor(object_points).float()] * len(clips))
        if len(per_clip) != len(clips):
            raise ValueError(f"{len(per_clip)} point sets for {len(clips)} clips")
        self.object_points = per_clip[0]
        # a tree per distinct point set: clips of one object share it (its build is the costly part)
        trees: dict[bytes, SurfaceIndex] = {}
        for pts in per_clip:
            key = pts.numpy().tobytes()
            if key not in trees:
                trees[key] = SurfaceIndex(pts)
        tracks = [_clip_tracks(c, surface, body) for c, surface in zip(clips, (trees[p.numpy().tobytes()] for p in per_clip))]
        self.tracks = {k: torch.cat([t[k] for t in tracks]).float() for k in _FIELDS}

    @property
    def num_clips(self) -> int:
        return len(self.clip_names)

    @property
    def num_frames(self) -> int:
        return int(self.lengths.sum())

    def flat(self, clip_ids: Tensor, frames: Tensor) -> Tensor:
        """Flat frame index, frames clamped into the clip (look-ahead past the end repeats the last frame)."""
        clip_ids = clip_ids.cpu()
        last = self.lengths[clip_ids] - 1
        return self.starts[clip_ids] + torch.minimum(frames.cpu().clamp_min(0), last)

    def state(self, clip_ids: Tensor, frames: Tensor, device=None) -> RefState:
        idx = self.flat(clip_ids, frames)
        return RefState(**{k: self.tracks[k][idx].to(device or "cpu") for k in _FIELDS if k != "dof_vel"})

    def reset_state(self, clip_ids: Tensor, frames: Tensor, body, num_objects: int = 1) -> ResetState:
        """The reset state of the given frames; `body` (an `Embodiment`) says which hinges are simulated."""
        idx = self.flat(clip_ids, frames)
        t = self.tracks
        dof = list(body.dof_index)
        obj = lambda x: x[idx][:, None, :].expand(-1, num_objects, -1).clone()  # noqa: E731
        return ResetState(
            root_pos=t["root_pos"][idx], root_rot=t["root_rot"][idx],
            root_linvel=t["body_linvel"][idx, 0], root_angvel=t["body_angvel"][idx, 0],
            dof_pos=t["dof_pos"][idx][:, dof], dof_vel=t["dof_vel"][idx][:, dof],
            obj_pos=obj(t["obj_pos"]), obj_rot=obj(t["obj_rot"]),
            obj_linvel=obj(t["obj_linvel"]), obj_angvel=obj(t["obj_angvel"]),
        )


_LAST_BUILT: list[tuple[str, MotionLibrary]] = []  # the last library built and its content key


def _content_key(clips: Sequence[Clip], object_points: Sequence[Tensor], body: Embodiment) -> str:
    digest = hashlib.sha1(f"{body!r}|{len(clips)}".encode())
    for clip, pts in zip(clips, object_points):
        digest.update(f"{clip.name}|{clip.fps}".encode())
        for f in fields(clip):
            value = getattr(clip, f.name)
            if isinstance(value, Tensor):
                digest.update(f"{f.name}{value.dtype}{tuple(value.shape)}".encode())
                digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        digest.update(torch.as_tensor(pts).float().contiguous().numpy().tobytes())
    return digest.hexdigest()


def shared_motion_library(clips: Sequence[Clip], object_points: Sequence[Tensor], body: Embodiment = SMPLX
                          ) -> MotionLibrary:
    """`MotionLibrary(clips, object_points, body)`, reusing the last one built when the clips (by content), their
    points and the body are the same: an evaluation builds an env per goal type and latent over the same clips, and
    the tracks of a few hundred clips take tens of seconds to derive. Libraries are never changed after they are
    built, so sharing one is safe; only the last is kept (a training env holds it anyway)."""
    key = _content_key(clips, object_points, body)
    if _LAST_BUILT and _LAST_BUILT[0][0] == key:
        return _LAST_BUILT[0][1]
    library = MotionLibrary(clips, list(object_points), body)
    _LAST_BUILT[:] = [(key, library)]
    return library

