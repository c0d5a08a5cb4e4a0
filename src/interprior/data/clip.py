"""The one clip type used everywhere in the package (CPU tensors, quaternions wxyz)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor

from interprior import schema


@dataclass
class Clip:
    """One human-object interaction clip. Shapes use T frames; rotations are wxyz unit quaternions.

    `dof_expmap` keeps the file's dof columns exactly as stored (Isaac Gym exp-maps): informational only;
    joint angles for MuJoCo are always derived from `body_rot` (see `interprior.data.convert`).
    """

    name: str
    fps: float
    root_pos: Tensor  # [T, 3]
    root_rot: Tensor  # [T, 4]
    dof_expmap: Tensor  # [T, 3 (B - 1)]; SMPL-X files: B = 52 bodies, 153 values
    body_pos: Tensor  # [T, B, 3]
    body_rot: Tensor  # [T, B, 4]
    obj_pos: Tensor  # [T, 3]
    obj_rot: Tensor  # [T, 4]
    obj_contact: Tensor  # [T]   {0, 1}
    contact: Tensor  # [T, B] labels {-1, 0, +1}
    subject: str | None = None
    object_name: str | None = None
    source: Path | None = None
    body: str | None = None  # the embodiment of a body other than SMPL-X (its motion file names it); None: SMPL-X
    notes: list[str] = field(default_factory=list)  # defects repaired on load, in words

    @property
    def num_frames(self) -> int:
        return int(self.root_pos.shape[0])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def slice(self, start: int, stop: int) -> "Clip":
        s = slice(start, stop)
        return replace(
            self,
            root_pos=self.root_pos[s], root_rot=self.root_rot[s], dof_expmap=self.dof_expmap[s],
            body_pos=self.body_pos[s], body_rot=self.body_rot[s], obj_pos=self.obj_pos[s],
            obj_rot=self.obj_rot[s], obj_contact=self.obj_contact[s], contact=self.contact[s],
            notes=list(self.notes),
        )

    def check_shapes(self, num_bodies: int = schema.NUM_BODIES) -> None:
        """Every track has T frames and `num_bodies` body rows (SMPL-X's 52 unless another body is named);
        `dof_expmap` three values per non-root body."""
        t, nb = self.num_frames, num_bodies
        expected = {
            "root_pos": (t, 3), "root_rot": (t, 4), "dof_expmap": (t, 3 * (nb - 1)),
            "body_pos": (t, nb, 3), "body_rot": (t, nb, 4),
            "obj_pos": (t, 3), "obj_rot": (t, 4), "obj_contact": (t,), "contact": (t, nb),
        }
        for key, shape in expected.items():
            got = tuple(getattr(self, key).shape)
            if got != shape:
                raise ValueError(f"clip {self.name}: {key} has shape {got}, expected {shape}")


def parse_clip_name(stem: str) -> tuple[str | None, str | None]:
    """`sub2_largetable_000` -> ("sub2", "largetable"): subject prefix and the second-to-last `_` part."""
    parts = stem.split("_")
    subject = parts[0] if parts[0].startswith("sub") else None
    obj = parts[-2] if len(parts) >= 3 else None
    return subject, obj


def finite_difference(x: Tensor, fps: float) -> Tensor:
    """Velocities by central differences (one-sided at the ends), same length as x."""
    if x.shape[0] < 2:
        return torch.zeros_like(x)
    v = torch.empty_like(x)
    v[1:-1] = (x[2:] - x[:-2]) * (fps / 2.0)
    v[0] = (x[1] - x[0]) * fps
    v[-1] = (x[-1] - x[-2]) * fps
    return v
