"""The motion library: flat storage over clips, lookups that match the clips' own rows, clamped look-ahead,
velocities that never cross a clip boundary."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch

from interprior import schema
from interprior.data.clip import Clip, finite_difference
from interprior.data.intermimic import list_clips, load_clip
from interprior.mdp.motion_library import MotionLibrary
from interprior.mdp.types import RefState

POINTS = torch.randn(64, 3, generator=torch.Generator().manual_seed(9)) * 0.2


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
    lib = MotionLibrary(clips, POINTS)
    assert lib.num_clips == 3 and lib.num_frames == 16 and lib.fps == 30.0
    assert lib.clip_names == ["sub1_box_000", "sub1_chair_001", "sub1_lamp_002"]
    assert lib.lengths.tolist() == [5, 8, 3] and lib.starts.tolist() == [0, 5, 13]


def test_state_equals_clip_rows(clips):
    lib = MotionLibrary(clips, POINTS)
    clip_ids, frame_ids = every_frame(clips)
    state = lib.state(clip_ids, frame_ids)
    assert isinstance(state, RefState)
    assert state.body_pos.shape == (16, schema.NUM_BODIES, 3) and state.body_rot.shape == (16, schema.NUM_BODIES, 4)
    assert state.contact.shape == (16, schema.NUM_BODIES) and state.obj_contact.shape == (16,)
    for name in ("root_pos", "body_pos", "body_rot", "obj_pos", "obj_rot", "contact", "obj_contact"):
        assert torch.allclose(getattr(state, name), torch.cat([getattr(c, name) for c in clips]).float()), name
    # velocities are differenced within each clip, never across a clip boundary
    expected = torch.cat([finite_difference(c.body_pos.double(), c.fps) for c in clips]).float()
    assert torch.allclose(state.body_linvel, expected)
    assert torch.allclose(state.obj_linvel, torch.cat([finite_difference(c.obj_pos.double(), c.fps)
                                                       for c in clips]).float())


def test_frames_past_the_end_are_clamped(clips):
    lib = MotionLibrary(clips, POINTS)
    state = lib.state(torch.tensor([0, 2, 1]), torch.tensor([100, 3, -5]))
    assert torch.equal(state.body_pos[0], clips[0].body_pos[-1])
    assert torch.equal(state.body_pos[1], clips[2].body_pos[-1])
    assert torch.equal(state.body_pos[2], clips[1].body_pos[0])


def test_batch_moves_to_another_device(clips):
    state = MotionLibrary(clips, POINTS).state(torch.tensor([0, 1]), torch.tensor([1, 2]), device="meta")
    assert all(getattr(state, f.name).device.type == "meta" for f in fields(RefState))


def test_bad_library_input(clips):
    with pytest.raises(ValueError, match="at least one clip"):
        MotionLibrary([], POINTS)
    with pytest.raises(ValueError, match="point sets"):
        MotionLibrary(clips, [POINTS, POINTS])
    clips[1].fps = 60.0
    with pytest.raises(ValueError, match="different frame rates"):
        MotionLibrary(clips, POINTS)


def test_library_from_generated_folder(synth_data):
    files = list_clips(synth_data.clips_dir)
    clips = [load_clip(p) for p in files]
    lib = MotionLibrary(clips, POINTS)
    assert lib.num_clips == len(synth_data.rows) == len(files) and lib.clip_names == [p.stem for p in files]
    clip = clips[3]
    state = lib.state(torch.full((clip.num_frames,), 3), torch.arange(clip.num_frames))
    assert torch.equal(state.body_pos, clip.body_pos) and torch.equal(state.obj_rot, clip.obj_rot)


def test_library_from_sample_folder(sample_dir):
    folder = sample_dir / "OMOMO_retarget"
    files = list_clips(folder)
    clips = [load_clip(p) for p in files]
    lib = MotionLibrary(clips, POINTS)
    assert lib.num_clips == 27 and lib.clip_names == [p.stem for p in files]
    clip = clips[5]
    state = lib.state(torch.full((clip.num_frames,), 5), torch.arange(clip.num_frames))
    assert torch.equal(state.body_pos, clip.body_pos) and torch.equal(state.obj_rot, clip.obj_rot)


def test_shared_library_is_reused_only_for_the_same_content(clips):
    """An evaluation building one env per goal type reuses the library; a clip changed in place, other points or
    another clip order build a new one."""
    from dataclasses import replace

    from interprior.mdp.motion_library import shared_motion_library

    points = [POINTS] * len(clips)
    first = shared_motion_library(clips, points)
    assert shared_motion_library(list(clips), [p.clone() for p in points]) is first
    moved = replace(clips[0], obj_pos=clips[0].obj_pos + 0.01)
    other = shared_motion_library([moved, *clips[1:]], points)
    assert other is not first
    assert torch.allclose(other.tracks["obj_pos"][: clips[0].num_frames], first.tracks["obj_pos"][: clips[0].num_frames] + 0.01)
    assert shared_motion_library(clips, [POINTS + 0.1] * len(clips)) is not first
    assert shared_motion_library(clips[::-1], points[::-1]).clip_names == [c.name for c in clips[::-1]]
