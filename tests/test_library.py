"""MotionLibrary: flat storage, batched sampling and lookups that match the clips' own rows."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch

from interprior import schema
from interprior.data.clip import Clip, finite_difference
from interprior.data.intermimic import list_clips, load_clip
from interprior.data.library import FrameState, MotionLibrary


def random_clip(name: str, frames: int, seed: int) -> Clip:
    g = torch.Generator().manual_seed(seed)

    def quats(*shape: int) -> torch.Tensor:
        q = torch.randn(*shape, 4, generator=g)
        return q / q.norm(dim=-1, keepdim=True)

    n = schema.NUM_BODIES
    return Clip(
        name=name, fps=30.0,
        root_pos=torch.randn(frames, 3, generator=g), root_rot=quats(frames),
        dof_expmap=torch.randn(frames, schema.NUM_DOFS, generator=g),
        body_pos=torch.randn(frames, n, 3, generator=g), body_rot=quats(frames, n),
        obj_pos=torch.randn(frames, 3, generator=g), obj_rot=quats(frames),
        obj_contact=torch.randint(0, 2, (frames,), generator=g).float(),
        contact=torch.randint(-1, 2, (frames, n), generator=g).float(),
        subject="sub1", object_name=name.split("_")[1],
    )


@pytest.fixture
def clips() -> list[Clip]:
    return [random_clip("sub1_box_000", 5, 0), random_clip("sub1_chair_001", 8, 1), random_clip("sub1_lamp_002", 3, 2)]


def every_frame(clips: list[Clip]) -> tuple[torch.Tensor, torch.Tensor]:
    clip_ids = torch.cat([torch.full((c.num_frames,), i) for i, c in enumerate(clips)])
    frame_ids = torch.cat([torch.arange(c.num_frames) for c in clips])
    return clip_ids, frame_ids


def test_bookkeeping(clips):
    lib = MotionLibrary(clips)
    assert lib.num_clips == 3 and lib.num_frames == 16 and lib.fps == 30.0
    assert lib.clip_names == ["sub1_box_000", "sub1_chair_001", "sub1_lamp_002"]
    assert lib.object_names == ["box", "chair", "lamp"]
    assert lib.lengths.tolist() == [5, 8, 3] and lib.starts.tolist() == [0, 5, 13]
    assert lib.clip_index("sub1_chair_001") == 1


def test_sampling_shapes_ranges_and_determinism(clips):
    lib = MotionLibrary(clips)
    ids = lib.sample_clips(1000, torch.Generator().manual_seed(0))
    assert ids.shape == (1000,) and ids.dtype == torch.long
    assert set(ids.tolist()) == {0, 1, 2}
    assert torch.equal(ids, lib.sample_clips(1000, torch.Generator().manual_seed(0)))
    times = lib.sample_times(ids, torch.Generator().manual_seed(1))
    assert times.shape == (1000,) and times.dtype == torch.long
    assert bool((times >= 0).all()) and bool((times < lib.lengths[ids]).all())
    assert set(times[ids == 1].tolist()) == set(range(8))  # uniform over the whole clip
    truncated = lib.sample_times(ids, torch.Generator().manual_seed(1), truncate_end=4)
    assert bool((truncated < (lib.lengths[ids] - 4).clamp_min(1)).all())
    assert set(truncated[ids == 2].tolist()) == {0}  # a clip shorter than the truncation keeps frame 0


def test_frame_state_equals_clip_rows(clips):
    lib = MotionLibrary(clips)
    clip_ids, frame_ids = every_frame(clips)
    state = lib.frame_state(clip_ids, frame_ids)
    assert state.body_pos.shape == (16, schema.NUM_BODIES, 3) and state.body_rot.shape == (16, schema.NUM_BODIES, 4)
    assert state.contact.shape == (16, schema.NUM_BODIES) and state.obj_contact.shape == (16,)
    for name in ("root_pos", "root_rot", "body_pos", "body_rot", "obj_pos", "obj_rot", "contact", "obj_contact"):
        assert torch.equal(getattr(state, name), torch.cat([getattr(c, name) for c in clips])), name
    # velocities are differenced within each clip, never across a clip boundary
    assert torch.equal(state.body_vel, torch.cat([finite_difference(c.body_pos, c.fps) for c in clips]))
    assert torch.equal(state.obj_vel, torch.cat([finite_difference(c.obj_pos, c.fps) for c in clips]))
    assert torch.equal(state.root_vel, torch.cat([finite_difference(c.root_pos, c.fps) for c in clips]))


def test_frames_past_the_end_are_clamped(clips):
    lib = MotionLibrary(clips)
    state = lib.frame_state(torch.tensor([0, 2, 1]), torch.tensor([100, 3, -5]))
    assert torch.equal(state.body_pos[0], clips[0].body_pos[-1])
    assert torch.equal(state.body_pos[1], clips[2].body_pos[-1])
    assert torch.equal(state.body_pos[2], clips[1].body_pos[0])


def test_batch_moves_to_another_device(clips):
    state = MotionLibrary(clips).frame_state(torch.tensor([0, 1]), torch.tensor([1, 2]))
    moved = state.to("meta")  # a device that exists everywhere; the library itself stays on the CPU
    assert isinstance(moved, FrameState)
    assert all(getattr(moved, f.name).device.type == "meta" for f in fields(FrameState))
    assert state.body_pos.device.type == "cpu"


def test_bad_library_input(clips):
    with pytest.raises(ValueError, match="at least one clip"):
        MotionLibrary([])
    clips[1].fps = 60.0
    with pytest.raises(ValueError, match="different frame rates"):
        MotionLibrary(clips)


def test_library_from_generated_folder(synth_data):
    lib = MotionLibrary.from_path(synth_data.clips_dir)
    files = list_clips(synth_data.clips_dir)
    assert lib.num_clips == len(synth_data.rows) == len(files) and lib.clip_names == [p.stem for p in files]
    assert set(lib.object_names) == {row["object"] for row in synth_data.rows}
    clip = load_clip(files[3])
    ids = torch.full((clip.num_frames,), 3)
    state = lib.frame_state(ids, torch.arange(clip.num_frames))
    assert torch.equal(state.body_pos, clip.body_pos) and torch.equal(state.obj_rot, clip.obj_rot)


def test_library_from_sample_folder(sample_dir):
    folder = sample_dir / "OMOMO_retarget"
    lib = MotionLibrary.from_path(folder)
    files = list_clips(folder)
    assert lib.num_clips == 27 and lib.clip_names == [p.stem for p in files]
    assert set(lib.object_names) == {"largetable", "woodchair"}
    clip = load_clip(files[5])
    ids = torch.full((clip.num_frames,), 5)
    state = lib.frame_state(ids, torch.arange(clip.num_frames))
    assert torch.equal(state.body_pos, clip.body_pos) and torch.equal(state.obj_rot, clip.obj_rot)
