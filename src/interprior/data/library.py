"""Many clips in CPU memory as one flat frame axis, for batched sampling of reference states.

Clip i owns the flat frames `starts[i] : starts[i] + lengths[i]`. Velocities are precomputed per clip (central
differences, so they never cross a clip boundary). Lookups gather rows with one index tensor: no Python loop
over the batch. The library stays on the CPU (motions can be large); move a batch with `FrameState.to(device)`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from interprior.data.clip import Clip, finite_difference
from interprior.data.intermimic import list_clips, load_clip

# Per-frame clip tensors stored in the library, concatenated over clips.
FRAME_FIELDS = ("root_pos", "root_rot", "body_pos", "body_rot", "obj_pos", "obj_rot", "contact", "obj_contact")


@dataclass
class FrameState:
    """Reference state of a batch of (clip, frame) pairs; B = batch size, quaternions wxyz."""

    root_pos: Tensor  # [B, 3]
    root_rot: Tensor  # [B, 4]
    root_vel: Tensor  # [B, 3]
    body_pos: Tensor  # [B, 52, 3]
    body_rot: Tensor  # [B, 52, 4]
    body_vel: Tensor  # [B, 52, 3]
    obj_pos: Tensor  # [B, 3]
    obj_rot: Tensor  # [B, 4]
    obj_vel: Tensor  # [B, 3]
    contact: Tensor  # [B, 52] labels {-1, 0, +1}
    obj_contact: Tensor  # [B]   {0, 1}

    def to(self, device: torch.device | str) -> "FrameState":
        return FrameState(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


class MotionLibrary:
    def __init__(self, clips: Sequence[Clip]):
        if not clips:
            raise ValueError("MotionLibrary needs at least one clip")
        fps = {float(c.fps) for c in clips}
        if len(fps) != 1:
            raise ValueError(f"clips have different frame rates {sorted(fps)}; resample them first")
        self.num_bodies = int(clips[0].body_pos.shape[1])  # every clip is of the same body
        for clip in clips:
            clip.check_shapes(self.num_bodies)
        self.fps = fps.pop()
        self.clip_names: list[str] = [c.name for c in clips]
        self.object_names: list[str | None] = [c.object_name for c in clips]
        self.subjects: list[str | None] = [c.subject for c in clips]
        self.sources: list[Path | None] = [c.source for c in clips]
        self.lengths = torch.tensor([c.num_frames for c in clips], dtype=torch.long)
        self.starts = torch.cumsum(self.lengths, 0) - self.lengths
        self.frames = {name: torch.cat([getattr(c, name).detach().cpu() for c in clips]) for name in FRAME_FIELDS}
        # Per clip, so a difference never spans two clips.
        self.frames["root_vel"] = torch.cat([finite_difference(c.root_pos, c.fps) for c in clips])
        self.frames["body_vel"] = torch.cat([finite_difference(c.body_pos, c.fps) for c in clips])
        self.frames["obj_vel"] = torch.cat([finite_difference(c.obj_pos, c.fps) for c in clips])

    @classmethod
    def from_path(cls, path: str | Path) -> "MotionLibrary":
        """All clips of a .pt file or a folder of .pt files; a bad file raises `DataFileError`."""
        return cls([load_clip(p) for p in list_clips(path)])

    @property
    def num_clips(self) -> int:
        return len(self.clip_names)

    @property
    def num_frames(self) -> int:
        return int(self.lengths.sum())

    def clip_index(self, name: str) -> int:
        return self.clip_names.index(name)

    def sample_clips(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """[n] clip ids, uniform over clips."""
        return torch.randint(self.num_clips, (n,), generator=generator)

    def sample_times(
        self, clip_ids: Tensor, generator: torch.Generator | None = None, truncate_end: int = 0
    ) -> Tensor:
        """A uniform frame index per clip id, in [0, length - truncate_end) (at least frame 0)."""
        usable = (self.lengths[clip_ids] - truncate_end).clamp_min(1)
        u = torch.rand(clip_ids.shape, generator=generator, dtype=torch.float64)
        return (u * usable).long().clamp_max(usable - 1)

    def flat_index(self, clip_ids: Tensor, frame_ids: Tensor) -> Tensor:
        """Rows in the flat frame axis; frames past either end of a clip are clamped to it (for look-ahead)."""
        clip_ids = torch.as_tensor(clip_ids, dtype=torch.long)
        frame_ids = torch.as_tensor(frame_ids, dtype=torch.long)
        last = self.lengths[clip_ids] - 1
        return self.starts[clip_ids] + torch.minimum(frame_ids.clamp_min(0), last)

    def frame_state(self, clip_ids: Tensor, frame_ids: Tensor) -> FrameState:
        """Reference state at (clip_ids[b], frame_ids[b]) for every b; both broadcast to the batch shape."""
        rows = self.flat_index(clip_ids, frame_ids)
        return FrameState(**{name: values[rows] for name, values in self.frames.items()})
