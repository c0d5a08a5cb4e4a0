"""Reading and writing InterMimic motion files: every bad input is a DataFileError naming file and problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from interprior import schema
from interprior.data.intermimic import clip_to_tensor, list_clips, load_clip, save_clip
from interprior.errors import DataFileError

IDENTITY_XYZW = torch.tensor([0.0, 0.0, 0.0, 1.0])


def synthetic_tensor(frames: int = 8) -> torch.Tensor:
    """A valid file tensor: a rigid body walking along x with identity rotations and some contact labels."""
    data = torch.zeros(frames, schema.FILE_COLUMNS)
    t = torch.arange(frames, dtype=torch.float32)
    root = torch.stack([0.01 * t, torch.zeros_like(t), torch.full_like(t, 0.9)], dim=1)
    offsets = torch.linspace(-0.5, 0.5, schema.NUM_BODIES * 3).reshape(schema.NUM_BODIES, 3)
    offsets[0] = 0.0
    offsets[list(schema.FEET), 2] = -0.8
    data[:, schema.COL_ROOT_POS] = root
    data[:, schema.COL_ROOT_ROT] = IDENTITY_XYZW
    data[:, schema.COL_DOF] = 0.01
    data[:, schema.COL_BODY_POS] = (root[:, None, :] + offsets).reshape(frames, -1)
    data[:, schema.COL_BODY_ROT] = IDENTITY_XYZW.repeat(schema.NUM_BODIES)
    data[:, schema.COL_OBJ_POS] = torch.tensor([0.5, 0.0, 0.3])
    data[:, schema.COL_OBJ_ROT] = torch.tensor([0.0, 0.0, 0.6, 0.8])
    data[::2, schema.COL_OBJ_CONTACT] = 1.0
    data[:, schema.COL_CONTACT] = torch.tensor([-1.0, 0.0, 1.0]).repeat(schema.NUM_BODIES)[: schema.NUM_BODIES]
    return data


def write(tmp_path: Path, data: object, name: str = "sub3_box_001.pt") -> Path:
    path = tmp_path / name
    torch.save(data, path)
    return path


def load_error(path: Path) -> DataFileError:
    with pytest.raises(DataFileError) as info:
        load_clip(path)
    err = info.value
    assert err.path == path
    assert str(path) in str(err)  # the message names the file
    return err


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(torch.int32)


# --- good input -----------------------------------------------------------------------------------------------


def test_load_synthetic_clip(tmp_path):
    path = write(tmp_path, synthetic_tensor(8))
    clip = load_clip(path)
    clip.check_shapes()
    assert clip.num_frames == 8 and clip.fps == 30.0
    assert (clip.name, clip.subject, clip.object_name, clip.source) == ("sub3_box_001", "sub3", "box", path)
    assert torch.equal(clip.root_rot[0], torch.tensor([1.0, 0.0, 0.0, 0.0]))  # xyzw -> wxyz
    assert torch.equal(clip.obj_rot[0], torch.tensor([0.8, 0.0, 0.0, 0.6]))
    assert clip.notes == []


def test_requires_grad_is_detached(tmp_path):
    path = write(tmp_path, synthetic_tensor().requires_grad_(True))
    clip = load_clip(path)
    assert not clip.body_pos.requires_grad and not clip.root_rot.requires_grad


def test_save_load_round_trip_is_bit_exact(tmp_path):
    raw = synthetic_tensor(8)
    clip = load_clip(write(tmp_path, raw))
    out = tmp_path / "out" / "copy.pt"
    save_clip(clip, out)
    assert torch.equal(bits(torch.load(out, weights_only=True)), bits(raw))
    assert sorted(p.name for p in out.parent.iterdir()) == ["copy.pt"]  # no temp file left behind
    assert torch.equal(bits(clip_to_tensor(load_clip(out))), bits(raw))


def test_save_overwrites_atomically(tmp_path):
    path = write(tmp_path, synthetic_tensor(8))
    clip = load_clip(path).slice(0, 5)
    save_clip(clip, path)
    assert load_clip(path).num_frames == 5


def test_leading_and_trailing_zero_frames_are_dropped(tmp_path):
    raw = synthetic_tensor(10)
    raw[:2] = 0.0
    raw[:2, schema.COL_CONTACT] = -1.0  # contact labels do not count as state (as in OMOMO_retarget)
    raw[-1] = 0.0
    clip = load_clip(write(tmp_path, raw))
    assert clip.num_frames == 7
    assert torch.equal(clip.root_pos, raw[2:9, schema.COL_ROOT_POS])
    assert any("dropped 2 leading zero frames" in note for note in clip.notes)
    assert any("dropped 1 trailing zero frame" in note for note in clip.notes)


# --- bad input ------------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    err = load_error(tmp_path / "nope.pt")
    assert "not found" in err.problem


def test_truncated_file(tmp_path):
    path = write(tmp_path, synthetic_tensor(20))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    err = load_error(path)
    assert "truncated or corrupt" in err.problem


def test_not_a_tensor(tmp_path):
    err = load_error(write(tmp_path, {"motion": synthetic_tensor()}))
    assert "expected a float tensor" in err.problem and "dict" in err.problem


def test_wrong_ndim(tmp_path):
    err = load_error(write(tmp_path, synthetic_tensor().reshape(2, 4, -1)))
    assert "2-D" in err.problem and "(2, 4, 591)" in err.problem


def test_wrong_column_count(tmp_path):
    err = load_error(write(tmp_path, synthetic_tensor()[:, :590]))
    assert "expected 591 columns, got 590" in err.problem


def test_too_few_frames(tmp_path):
    err = load_error(write(tmp_path, synthetic_tensor()[:1]))
    assert "1 frame(s), need at least 2" in err.problem


def test_nan(tmp_path):
    raw = synthetic_tensor()
    raw[5, 170] = float("nan")
    raw[6, 0] = float("nan")
    err = load_error(write(tmp_path, raw))
    assert "2 NaN" in err.problem and "first at frame 5" in err.problem
    assert "column 170 (position of body L_Knee)" in err.problem  # 170 = 162 + 3 * 2 + 2: body 2, z


def test_inf(tmp_path):
    raw = synthetic_tensor()
    raw[3, schema.COL_OBJ_POS.start] = float("inf")
    err = load_error(write(tmp_path, raw))
    assert "1 inf" in err.problem and "frame 3" in err.problem and "object position" in err.problem


def test_zero_quaternion(tmp_path):
    raw = synthetic_tensor()
    wrist = schema.COL_BODY_ROT.start + 4 * schema.BODY_INDEX["L_Wrist"]
    raw[3, wrist : wrist + 4] = 0.0
    err = load_error(write(tmp_path, raw))
    assert "zero quaternion" in err.problem and "L_Wrist" in err.problem and "frame 3" in err.problem


@pytest.mark.parametrize(
    "cols, what", [(schema.COL_ROOT_ROT, "root rotation"), (schema.COL_OBJ_ROT, "object rotation")]
)
def test_non_unit_quaternion(tmp_path, cols, what):
    raw = synthetic_tensor()
    raw[4, cols] *= 1.1
    err = load_error(write(tmp_path, raw))
    assert "non-unit quaternion (norm 1.1" in err.problem and what in err.problem and "frame 4" in err.problem


def test_zero_frame_in_the_middle(tmp_path):
    raw = synthetic_tensor(10)
    raw[4:6] = 0.0
    err = load_error(write(tmp_path, raw))
    assert "2 all-zero frames (state columns) in the middle" in err.problem and "frames 4, 5" in err.problem


def test_all_frames_zero(tmp_path):
    err = load_error(write(tmp_path, torch.zeros(5, schema.FILE_COLUMNS)))
    assert "every frame is all zero" in err.problem


def test_integer_tensor(tmp_path):
    err = load_error(write(tmp_path, torch.zeros(5, schema.FILE_COLUMNS, dtype=torch.int64)))
    assert "float32" in err.problem and "int64" in err.problem


def test_folder_given_as_file(tmp_path):
    err = load_error(tmp_path)
    assert "is a folder" in err.problem


# --- finding files --------------------------------------------------------------------------------------------


def test_list_clips(tmp_path):
    for name in ("sub1_b_002.pt", "sub1_a_001.pt"):
        write(tmp_path, synthetic_tensor(), name)
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_clips(tmp_path)] == ["sub1_a_001.pt", "sub1_b_002.pt"]
    assert list_clips(tmp_path / "sub1_a_001.pt") == [tmp_path / "sub1_a_001.pt"]
    for bad, problem in ((tmp_path / "missing", "no such file"), (tmp_path / "notes.txt", "not a .pt")):
        with pytest.raises(DataFileError, match=problem):
            list_clips(bad)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFileError, match="no .pt motion files") as info:
        list_clips(empty)
    assert info.value.path == empty


# --- real data ------------------------------------------------------------------------------------------------


def _check_round_trip_is_bit_exact(path: Path, tmp_path: Path) -> None:
    raw = torch.load(path, map_location="cpu", weights_only=True).detach()
    out = tmp_path / path.name
    save_clip(load_clip(path), out)
    again = torch.load(out, map_location="cpu", weights_only=True)
    assert again.dtype == torch.float32 and again.shape == raw.shape
    assert torch.equal(bits(again), bits(raw))  # every column, bit for bit
    assert torch.equal(bits(clip_to_tensor(load_clip(out))), bits(raw))


def test_generated_clip_round_trip_is_bit_exact(tmp_path, synth_data):
    _check_round_trip_is_bit_exact(synth_data.path("sub0_cylinder_003"), tmp_path)


@pytest.mark.parametrize("folder", ["OMOMO", "OMOMO_new"])
def test_real_clip_round_trip_is_bit_exact(tmp_path, folder, sample_dir):
    _check_round_trip_is_bit_exact(sample_dir / folder / "sub2_largetable_000.pt", tmp_path)


def test_retarget_clip_drops_leading_zero_frame(sample_dir):
    path = sample_dir / "OMOMO_retarget" / "sub2_woodchair_003.pt"
    raw = torch.load(path, map_location="cpu", weights_only=True).detach()
    clip = load_clip(path)
    assert clip.num_frames == raw.shape[0] - 1
    assert clip.notes == ["dropped 1 leading zero frame (state columns all zero; file frame 0)"]
    assert torch.equal(clip.body_pos[0].flatten(), raw[1, schema.COL_BODY_POS])
    assert (clip.subject, clip.object_name) == ("sub2", "woodchair")
