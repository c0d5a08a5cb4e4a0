"""Read and write InterMimic motion files (`torch.save` of a float32 tensor [T, 591], 30 fps, z-up, xyzw).

Every malformed input raises `DataFileError` naming the file and the problem. The one documented defect that is
repaired instead of rejected: frames whose state columns are all zero at the start or end of a clip (the
OMOMO_retarget files have such a frame 0, with only its contact labels filled in). They are dropped and the
repair is recorded in `clip.notes`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from interprior import schema
from interprior.assets.text import printable
from interprior.data.clip import Clip, parse_clip_name
from interprior.data.motion_file import clip_from_motion_dict, is_motion_dict, motion_to_dict
from interprior.errors import DataFileError
from interprior.files import atomic_write
from interprior.rotations import wxyz_to_xyzw, xyzw_to_wxyz

QUAT_NORM_TOLERANCE = 1e-3
MAX_FRAMES_LISTED = 10

# Contact labels (object flag + per-body labels) are not state: the retarget files fill them in zero frames.
CONTACT_COLUMNS = slice(schema.COL_OBJ_CONTACT, schema.COL_CONTACT.stop)  # 330:383
UNUSED_COLUMNS = (schema.COL_UNUSED_A, schema.COL_UNUSED_B)


def _state_column_mask() -> Tensor:
    mask = torch.ones(schema.FILE_COLUMNS, dtype=torch.bool)
    mask[CONTACT_COLUMNS] = False
    return mask


STATE_COLUMNS = _state_column_mask()


# --- reading -------------------------------------------------------------------------------------------------


def load_clip(path: str | Path) -> Clip:
    """Load one motion file into a `Clip` (wxyz quaternions, CPU float32 tensors): an InterMimic file, or a motion
    file of another body (`interprior.data.motion_file`)."""
    path = Path(path)
    data = _read_tensor(path)
    if is_motion_dict(data):
        return clip_from_motion_dict(data, path)
    return clip_from_tensor(data, path)


def clip_from_tensor(data: Tensor, path: str | Path) -> Clip:
    """Check a raw [T, 591] file tensor and split it into a `Clip`. `path` names the file in errors and the clip."""
    path = Path(path)
    notes: list[str] = []
    data = _checked_float_matrix(data, path, notes)
    _check_finite(data, path)
    first, stop = _nonzero_frame_range(data, path, notes)
    data = data[first:stop]
    _check_quaternions(data, path, frame_offset=first)
    _note_unused_columns(data, notes)
    return _split_columns(data, path, notes)


def _read_tensor(path: Path) -> object:
    if not path.exists():
        raise DataFileError(path, "file not found")
    if path.is_dir():
        raise DataFileError(path, "is a folder, expected a .pt motion file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated zips, bad pickles, non-torch files
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataFileError(  # the text of the foreign file (e.g. an array name in a .npz) may hold escapes
            path, f"cannot be read by torch.load (truncated or corrupt file?): {type(err).__name__}: "
            f"{printable(first_line)}"
        ) from err


def _checked_float_matrix(data: object, path: Path, notes: list[str]) -> Tensor:
    if not isinstance(data, Tensor):
        raise DataFileError(path, f"expected a float tensor [T, {schema.FILE_COLUMNS}], got {type(data).__name__}")
    data = data.detach()  # some released files were saved with requires_grad=True
    if data.ndim != 2:
        raise DataFileError(
            path, f"expected a 2-D tensor [T, {schema.FILE_COLUMNS}], got shape {tuple(data.shape)}"
        )
    if data.shape[1] != schema.FILE_COLUMNS:
        raise DataFileError(path, f"expected {schema.FILE_COLUMNS} columns, got {data.shape[1]}")
    if not data.is_floating_point():
        raise DataFileError(path, f"expected a float32 tensor, got {data.dtype}")
    if data.dtype != torch.float32:
        notes.append(f"converted from {data.dtype} to torch.float32")
    if data.shape[0] < 2:
        raise DataFileError(path, f"has {data.shape[0]} frame(s), need at least 2")
    return data.to(torch.float32).contiguous()


def _check_finite(data: Tensor, path: Path) -> None:
    bad = ~torch.isfinite(data)
    if not bad.any():
        return
    nan_count = int(torch.isnan(data).sum())
    inf_count = int(bad.sum()) - nan_count
    frame, col = (int(i) for i in bad.nonzero()[0])
    raise DataFileError(
        path,
        f"contains {nan_count} NaN and {inf_count} inf values; first at frame {frame}, "
        f"column {col} ({describe_column(col)})",
    )


def _nonzero_frame_range(data: Tensor, path: Path, notes: list[str]) -> tuple[int, int]:
    """Frames [first, stop) to keep: leading/trailing all-zero frames go, zero frames inside are an error."""
    zero = (data[:, STATE_COLUMNS] == 0).all(dim=1)
    kept = (~zero).nonzero().flatten()
    if kept.numel() == 0:
        raise DataFileError(path, "every frame is all zero (state columns)")
    first, stop = int(kept[0]), int(kept[-1]) + 1
    inner = zero[first:stop].nonzero().flatten() + first
    if inner.numel():
        raise DataFileError(
            path,
            f"{_count(inner.numel(), 'all-zero frame')} (state columns) in the middle of the clip: "
            f"{'frame' if inner.numel() == 1 else 'frames'} {_list_frames(inner)}",
        )
    if first:
        notes.append(f"dropped {_count(first, 'leading zero frame')} (state columns all zero; file "
                     f"{_span(0, first)})")
    trailing = data.shape[0] - stop
    if trailing:
        notes.append(f"dropped {_count(trailing, 'trailing zero frame')} (state columns all zero; file "
                     f"{_span(stop, data.shape[0])})")
    if stop - first < 2:
        raise DataFileError(path, f"only {stop - first} non-zero frame(s), need at least 2")
    return first, stop


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def _span(start: int, stop: int) -> str:
    return f"frame {start}" if stop - start == 1 else f"frames {start}..{stop - 1}"


def _list_frames(frames: Tensor) -> str:
    listed = ", ".join(str(int(f)) for f in frames[:MAX_FRAMES_LISTED])
    return listed + (", ..." if frames.numel() > MAX_FRAMES_LISTED else "")


def _check_quaternions(data: Tensor, path: Path, frame_offset: int) -> None:
    """Every rotation must be a unit quaternion; report the first bad one (file frame numbering)."""
    quats = torch.cat(
        [
            data[:, schema.COL_ROOT_ROT].unsqueeze(1),
            data[:, schema.COL_OBJ_ROT].unsqueeze(1),
            data[:, schema.COL_BODY_ROT].reshape(-1, schema.NUM_BODIES, 4),
        ],
        dim=1,
    )  # [T, 2 + 52, 4]
    labels = ("root rotation", "object rotation") + tuple(f"rotation of body {n}" for n in schema.BODY_NAMES)
    norms = quats.double().norm(dim=-1)
    bad = (norms - 1.0).abs() > QUAT_NORM_TOLERANCE
    if not bad.any():
        return
    frame, slot = (int(i) for i in bad.nonzero()[0])
    norm = float(norms[frame, slot])
    kind = "zero quaternion" if norm == 0.0 else f"non-unit quaternion (norm {norm:.6g})"
    raise DataFileError(
        path,
        f"{kind} in {labels[slot]} at frame {frame + frame_offset}; {int(bad.sum())} quaternion(s) with "
        f"|norm - 1| > {QUAT_NORM_TOLERANCE:g} in total",
    )


def _note_unused_columns(data: Tensor, notes: list[str]) -> None:
    for cols in UNUSED_COLUMNS:
        if (data[:, cols] != 0).any():
            notes.append(f"unused columns {cols.start}:{cols.stop} are not zero; their values are dropped")


def _split_columns(data: Tensor, path: Path, notes: list[str]) -> Clip:
    subject, object_name = parse_clip_name(path.stem)
    num_frames = data.shape[0]
    return Clip(
        name=path.stem,
        fps=schema.FILE_FPS,
        root_pos=data[:, schema.COL_ROOT_POS].clone(),
        root_rot=xyzw_to_wxyz(data[:, schema.COL_ROOT_ROT]),
        dof_expmap=data[:, schema.COL_DOF].clone(),
        body_pos=data[:, schema.COL_BODY_POS].reshape(num_frames, schema.NUM_BODIES, 3).clone(),
        body_rot=xyzw_to_wxyz(data[:, schema.COL_BODY_ROT].reshape(num_frames, schema.NUM_BODIES, 4)),
        obj_pos=data[:, schema.COL_OBJ_POS].clone(),
        obj_rot=xyzw_to_wxyz(data[:, schema.COL_OBJ_ROT]),
        obj_contact=data[:, schema.COL_OBJ_CONTACT].clone(),
        contact=data[:, schema.COL_CONTACT].clone(),
        subject=subject,
        object_name=object_name,
        source=path,
        notes=notes,
    )


def describe_column(col: int) -> str:
    """What a file column holds, in words (with the body name for per-body columns)."""
    per_body = (
        (schema.COL_BODY_POS, 3, "position of body"),
        (schema.COL_BODY_ROT, 4, "rotation of body"),
        (schema.COL_CONTACT, 1, "contact label of body"),
    )
    for cols, width, what in per_body:
        if cols.start <= col < cols.stop:
            return f"{what} {schema.BODY_NAMES[(col - cols.start) // width]}"
    if schema.COL_DOF.start <= col < schema.COL_DOF.stop:
        return f"dof {schema.DOF_NAMES[col - schema.COL_DOF.start]}"
    named = (
        (schema.COL_ROOT_POS, "root position"), (schema.COL_ROOT_ROT, "root rotation"),
        (schema.COL_OBJ_POS, "object position"), (schema.COL_OBJ_ROT, "object rotation"),
        (slice(schema.COL_OBJ_CONTACT, schema.COL_OBJ_CONTACT + 1), "object contact flag"),
    )
    for cols, what in named:
        if cols.start <= col < cols.stop:
            return what
    return "unused column"


# --- writing -------------------------------------------------------------------------------------------------


def clip_to_tensor(clip: Clip) -> Tensor:
    """The exact file layout: float32 [T, 591], quaternions xyzw, unused columns zero."""
    clip.check_shapes()
    t = clip.num_frames
    data = torch.zeros(t, schema.FILE_COLUMNS, dtype=torch.float32)
    data[:, schema.COL_ROOT_POS] = clip.root_pos
    data[:, schema.COL_ROOT_ROT] = wxyz_to_xyzw(clip.root_rot)
    data[:, schema.COL_DOF] = clip.dof_expmap
    data[:, schema.COL_BODY_POS] = clip.body_pos.reshape(t, -1)
    data[:, schema.COL_OBJ_POS] = clip.obj_pos
    data[:, schema.COL_OBJ_ROT] = wxyz_to_xyzw(clip.obj_rot)
    data[:, schema.COL_OBJ_CONTACT] = clip.obj_contact
    data[:, schema.COL_CONTACT] = clip.contact
    data[:, schema.COL_BODY_ROT] = wxyz_to_xyzw(clip.body_rot).reshape(t, -1)
    return data


def save_clip(clip: Clip, path: str | Path) -> None:
    """Write a clip in the InterMimic file format (a clip of another body: its motion file), atomically (temp file in the same folder, then rename), with the
    mode the umask gives a new file."""
    path = Path(path)
    data = motion_to_dict(clip) if clip.body else clip_to_tensor(clip).detach().cpu()
    try:
        atomic_write(path, lambda f: torch.save(data, f))
    except (OSError, RuntimeError) as err:  # torch reports a failed write as RuntimeError
        raise DataFileError(path, f"cannot write: {printable(str(err))}") from err


# --- finding files -------------------------------------------------------------------------------------------


def list_clips(path: str | Path) -> list[Path]:
    """A .pt file, or the .pt files directly inside a folder (sorted by name)."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(path, "no such file or folder")
    if path.is_file():
        if path.suffix != ".pt":
            raise DataFileError(path, "not a .pt motion file")
        return [path]
    files = sorted(p for p in path.glob("*.pt") if p.is_file())
    if not files:
        raise DataFileError(path, "folder contains no .pt motion files (subfolders are not searched)")
    return files
