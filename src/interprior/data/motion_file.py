"""Motion files of any body (`interprior-motion-1`): what a body other than SMPL-X (the toy body of the tests, a
robot) is stored in, since InterMimic's [T, 591] layout is SMPL-X's 52 bodies.

The file is a `torch.save` of a dict: ``format`` ("interprior-motion-1"), ``body`` (the embodiment's name, see
`interprior.assets.embodiment`), ``fps``, and float32 tensors, quaternions **xyzw** like InterMimic's files:

| key | shape | meaning |
|---|---|---|
| root_pos, root_rot | [T, 3], [T, 4] | the root body's world pose |
| body_pos, body_rot | [T, B, 3], [T, B, 4] | every body's world pose, in the embodiment's body order |
| obj_pos, obj_rot | [T, 3], [T, 4] | the object's world pose |
| obj_contact | [T] | 1 where the object is touched |
| contact | [T, B] | per-body contact labels: -1 far, 0 unknown, +1 in contact |

Joint angles are never stored: they follow from the body rotations, as for InterMimic's files.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from interprior.assets.bodies import embodiment
from interprior.data.clip import Clip, parse_clip_name
from interprior.errors import DataFileError, InterpriorError
from interprior.rotations import wxyz_to_xyzw, xyzw_to_wxyz

FORMAT = "interprior-motion-1"
TRACKS = ("root_pos", "root_rot", "body_pos", "body_rot", "obj_pos", "obj_rot", "obj_contact", "contact")
QUATERNIONS = ("root_rot", "body_rot", "obj_rot")


def is_motion_dict(data: object) -> bool:
    return isinstance(data, dict) and data.get("format") == FORMAT


def motion_to_dict(clip: Clip) -> dict:
    """The file's content for `clip` (whose `body` names its embodiment)."""
    if not clip.body:
        raise ValueError(f"clip {clip.name}: a motion file needs the clip's body name")
    clip.check_shapes(int(clip.body_pos.shape[1]))
    out: dict = {"format": FORMAT, "body": clip.body, "fps": float(clip.fps)}
    for key in TRACKS:
        value = getattr(clip, key).detach().cpu().float()
        out[key] = wxyz_to_xyzw(value) if key in QUATERNIONS else value
    return out


def clip_from_motion_dict(data: dict, path: str | Path) -> Clip:
    """Check a motion file's dict and make its `Clip`; every problem is a `DataFileError` naming the file."""
    path = Path(path)
    missing = [k for k in ("body", "fps") + TRACKS if k not in data]
    if missing:
        raise DataFileError(path, f"{FORMAT} file lacks {', '.join(missing)}")
    tracks: dict[str, Tensor] = {}
    for key in TRACKS:
        value = data[key]
        if not isinstance(value, Tensor) or not value.is_floating_point():
            raise DataFileError(path, f"{key} must be a float tensor, got {type(value).__name__}")
        if not torch.isfinite(value).all():
            raise DataFileError(path, f"{key} holds NaN or infinite values")
        value = value.float()
        tracks[key] = xyzw_to_wxyz(value) if key in QUATERNIONS else value
    try:
        body = embodiment(str(data["body"]))
    except InterpriorError as err:  # an unknown body, or one not fetched yet
        raise DataFileError(path, str(err)) from err
    fps = data["fps"]
    if not isinstance(fps, (int, float)) or not fps > 0:
        raise DataFileError(path, f"fps must be a positive number, got {fps!r}")
    frames, bodies = tracks["root_pos"].shape[0], body.num_bodies
    if frames < 2:
        raise DataFileError(path, f"needs at least 2 frames, got {frames}")
    subject, object_name = parse_clip_name(path.stem)
    clip = Clip(name=path.stem, fps=float(fps), dof_expmap=torch.zeros(frames, 3 * (bodies - 1)), subject=subject,
                object_name=object_name, source=path, body=str(data["body"]), **tracks)
    try:
        clip.check_shapes(bodies)
    except ValueError as err:
        raise DataFileError(path, str(err)) from err
    return clip
