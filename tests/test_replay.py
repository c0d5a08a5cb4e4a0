"""Kinematic and physics replay: on the generated clips (always) and on the OMOMO sample releases (where present)."""

from interprior.data.intermimic import list_clips, load_clip
from interprior.eval.replay import kinematic_replay, physics_replay


def test_kinematic_replay_fitted_skeleton_every_generated_clip(synth_data):
    for clip in synth_data.clips():
        report, _, _ = kinematic_replay(clip, skeleton="fitted")
        assert report.inconsistent_bodies == []
        assert report.body_error_max_cm < 0.01, report  # made on the default humanoid: the fit is exact


def test_physics_replay_baseline_falls_on_a_generated_clip(synth_data):
    clip = synth_data.clips("cylinder")[0]
    report, _, qpos = physics_replay(clip, synth_data.objects_dir, record=True)
    assert report.fell and 10 < report.frames_before_fall < clip.num_frames
    assert report.e_h_cm > 0 and report.e_o_cm is not None and report.e_o_cm >= 0
    assert qpos.shape[0] == report.frames_simulated + 1


def test_kinematic_replay_fitted_skeleton_every_omomo_new_clip(sample_dir):
    paths = list_clips(sample_dir / "OMOMO_new")
    assert len(paths) == 27
    for path in paths:
        report, _, _ = kinematic_replay(load_clip(path), skeleton="fitted")
        assert report.inconsistent_bodies == []
        assert report.body_error_mean_cm < 0.5 and report.body_error_max_cm < 1.0, report


def test_kinematic_replay_first_release_names_bad_bodies_and_meets_bar_elsewhere(sample_dir):
    for path in list_clips(sample_dir / "OMOMO")[::6]:
        report, _, _ = kinematic_replay(load_clip(path), skeleton="fitted")
        assert set(report.inconsistent_bodies) == {f"{s}_Index{i}" for s in "LR" for i in (1, 2, 3)}
        assert report.body_error_max_cm > 1.0  # the contradicting bodies really are off
        assert report.consistent_error_mean_cm < 0.5 and report.consistent_error_max_cm < 1.0


def test_kinematic_replay_default_shape_is_close_but_not_exact(sample_dir):
    report, _, _ = kinematic_replay(load_clip(sample_dir / "OMOMO_new" / "sub2_largetable_000.pt"), skeleton="default")
    assert 0.5 < report.body_error_mean_cm < 10.0


def test_retarget_clip_replays_after_dropping_zero_frame(sample_dir):
    clip = load_clip(sample_dir / "OMOMO_retarget" / "sub2_largetable_000.pt")
    assert any("zero frame" in n for n in clip.notes)
    report, _, _ = kinematic_replay(clip)
    assert report.body_error_max_cm < 1.0


def test_physics_replay_baseline_falls_and_reports_errors(sample_dir):
    clip = load_clip(sample_dir / "OMOMO_new" / "sub2_largetable_000.pt")
    report, _, qpos = physics_replay(clip, sample_dir / "objects", record=True)
    assert report.fell and 10 < report.frames_before_fall < clip.num_frames
    assert report.e_h_cm > 0 and report.e_o_cm is not None and report.e_o_cm >= 0
    assert qpos.shape[0] == report.frames_simulated + 1
