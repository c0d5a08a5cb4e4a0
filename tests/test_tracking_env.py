"""Stage I env and trainer on the synthetic box clips of tests/conftest.py (small: a few envs, tiny networks)."""

import dataclasses

import pytest
import torch


@pytest.fixture(scope="module")
def clips(synth_data):
    """The two synthetic box clips, shortest first."""
    return synth_data.clips("box", shortest=2)


def _tiny_config(clips, data, num_envs, horizon, minibatch, hidden, total_samples):
    """CPU preset shrunk to seconds: few envs, a tiny network, PSI off."""
    from interprior.train.expert import DataSelection, ExpertConfig, cpu_preset

    cfg = cpu_preset(ExpertConfig())
    cfg.data = DataSelection(data=str(data.clips_dir), objects=str(data.objects_dir), object_name="box",
                             clips=tuple(c.name for c in clips))
    cfg.env = dataclasses.replace(cfg.env, num_envs=num_envs, psi_slots=1)
    cfg.ppo.horizon, cfg.ppo.minibatch_size, cfg.ppo.epochs = horizon, minibatch, 1
    cfg.model.hidden = hidden
    cfg.total_samples = total_samples
    return cfg


def _env(clips, data, **kw):
    from interprior.envs.tracking import TrackingConfig, TrackingEnv

    cfg = TrackingConfig(num_envs=4, **kw)
    return TrackingEnv(clips, data.objects_dir, cfg)


def test_observation_and_step_shapes(clips, synth_data):
    env = _env(clips, synth_data)
    env.reset()
    obs = env.observe()
    assert obs.shape == (4, 3198) and torch.isfinite(obs).all()
    for _ in range(3):
        step = env.step(torch.zeros(4, env.act_dim))
    reward = step.reward
    assert reward.shape == (4,) and torch.all((reward >= 0) & (reward <= 1))
    assert {"rp", "rop", "rhand_free"} <= set(step.terms)
    assert step.obs.shape == (4, 3198) and step.state.body_pos.shape[0] == 4


def test_reward_and_tracking_observation_can_be_skipped(clips, synth_data):
    """compute_reward / compute_tracking_obs off: the same simulation and terminations, a zero reward and an
    empty observation (a goal policy run alone reads neither)."""
    steps = {}
    for on in (True, False):
        env = _env(clips, synth_data, init="start", init_noise_pos=0.0, init_noise_rot=0.0, perturb_prob=0.0,
                   randomize_dynamics=False, psi_slots=1, compute_reward=on, compute_tracking_obs=on)
        env.reset()
        for _ in range(4):
            steps[on] = env.step(0.3 * torch.ones(4, env.act_dim))
    assert torch.equal(steps[True].state.body_pos, steps[False].state.body_pos)
    assert torch.equal(steps[True].terminated, steps[False].terminated)
    assert steps[True].reward.gt(0).any() and steps[False].reward.eq(0).all() and steps[False].terms == {}
    assert steps[True].obs.shape == (4, 3198) and steps[False].obs.shape == (4, 0)


def test_residual_zero_action_replays_the_reference(clips, synth_data):
    """Residual mode with a = 0 drives the PD targets with the next reference frame: the start of the episode
    tracks far better than absolute mode's T-pose targets."""
    errors = {}
    for mode in ("residual", "absolute"):
        env = _env(clips, synth_data, action_mode=mode, init="start", init_noise_pos=0.0, init_noise_rot=0.0,
                   perturb_prob=0.0, randomize_dynamics=False, psi_slots=1)
        env.reset()
        for _ in range(8):
            env.step(torch.zeros(4, env.act_dim))
        ref = env.ref.state(env.clip_ids, env.frame)
        errors[mode] = float((env.prev.body_pos - ref.body_pos).norm(dim=-1).mean())
    assert errors["residual"] < 0.08 < errors["absolute"]


def test_training_resumes_with_same_step_count(clips, synth_data, tmp_path):
    from interprior.train.expert import ExpertTrainer

    cfg = _tiny_config(clips, synth_data, num_envs=4, horizon=4, minibatch=16, hidden=(32, 32), total_samples=32)
    cfg.env = dataclasses.replace(cfg.env, psi_slots=2, psi_update_prob=1.0)  # PSI on: it must survive a resume
    first = ExpertTrainer(cfg, tmp_path / "run")
    first.train()
    assert first.iteration == 2 and first.samples == 32
    cfg.total_samples = 48  # asking for more continues the same run
    second = ExpertTrainer(cfg, tmp_path / "run")
    assert second.iteration == 2 and second.samples == 32
    for a, b in zip(first.model.parameters(), second.model.parameters()):
        assert torch.equal(a, b)
    # the env's random stream and the PSI buffer resume as they were saved
    assert torch.equal(first.env.generator.get_state(), second.env.generator.get_state())
    assert first.env.psi is not None
    assert torch.equal(first.env.psi.states, second.env.psi.states)
    assert torch.equal(first.env.psi.scores, second.env.psi.scores)
    second.train()
    assert second.iteration == 3 and len(second.history) == 3
    # the synthetic set's skills (its synth.json): failure rates per skill, each the mean over its clips
    assert second.skill_names and set(second.skill_failure()) == {f"clips/failure/{s}" for s in second.skill_names}
    assert all(0.0 <= v <= 1.0 for v in second.skill_failure().values())


def test_a_resumed_run_continues_exactly(clips, synth_data, tmp_path):
    """Two iterations, a stop, a resume and a third give bit for bit the run of three in one go: the checkpoint
    holds the episodes under way (simulator with its warm start, counters, PSI trajectories, both random streams)."""
    from interprior.train.expert import ExpertTrainer

    def config(samples):
        cfg = _tiny_config(clips, synth_data, num_envs=4, horizon=4, minibatch=16, hidden=(32, 32),
                           total_samples=samples)
        cfg.env = dataclasses.replace(cfg.env, psi_slots=2, psi_update_prob=1.0, episode_length=6,
                                      clip_weighting=0.5)
        return cfg

    whole = ExpertTrainer(config(48), tmp_path / "whole")
    whole.train(bench=False)
    ExpertTrainer(config(32), tmp_path / "split").train(bench=False)
    resumed = ExpertTrainer(config(48), tmp_path / "split")
    resumed.train(bench=False)
    assert resumed.iteration == whole.iteration == 3
    for a, b in zip(whole.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(whole.env.psi.states, resumed.env.psi.states)
    assert torch.equal(whole.env.clip_failure.rates, resumed.env.clip_failure.rates)
    assert torch.equal(whole.env.sim.backend.qpos(), resumed.env.sim.backend.qpos())
    assert [h["reward"] for h in whole.history] == [h["reward"] for h in resumed.history]


def test_resets_favour_the_clips_that_fail(clips, synth_data):
    """With clip_weighting, a clip whose episodes keep ending early is drawn far more often; without it, uniformly.
    Finished episodes feed the rates."""
    weighted = _env(clips, synth_data, clip_weighting=0.9, psi_slots=1)
    weighted.clip_failure.update(torch.tensor([0] * 40 + [1] * 40), torch.tensor([True] * 40 + [False] * 40))
    counts = torch.bincount(weighted._sample_starts(2000)[0], minlength=2)
    assert counts[0] > 4 * counts[1] > 0  # p ≈ 0.05 + 0.9·0.89 = 0.85 vs 0.15 (uniform: 0.5 each)
    uniform = _env(clips, synth_data, psi_slots=1)
    uniform.clip_failure.rates = weighted.clip_failure.rates.clone()
    counts = torch.bincount(uniform._sample_starts(2000)[0], minlength=2)
    assert abs(int(counts[0]) - 1000) < 120
    before = weighted.clip_failure.rates.clone()
    weighted.reset()
    for _ in range(30):  # zero actions in absolute mode: the humanoid falls, the episodes fail
        weighted.step(torch.zeros(4, weighted.act_dim))
    assert bool(weighted.clip_failure.rates[1] > before[1])


def test_tracking_evaluation_and_cli(clips, synth_data, tmp_path, capsys):
    import json

    from interprior.cli import main
    from interprior.train.expert import ExpertTrainer

    cfg = _tiny_config(clips[:1], synth_data, num_envs=2, horizon=2, minibatch=4, hidden=(16,), total_samples=4)
    ExpertTrainer(cfg, tmp_path / "run").train(bench=False)
    capsys.readouterr()  # training's own progress output
    assert main(["eval", "tracking", "--checkpoint", str(tmp_path / "run"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    row = out["clips"][0]
    assert row["clip"] == clips[0].name and 1 <= row["duration"] < row["frames"]
    assert row["e_h_cm"] > 0 and row["baseline_duration"] > 0 and 1 <= row["pd_duration"] < row["frames"]
    assert out["summary"]["success_rate"] in (0.0, 1.0)
    # like-for-like errors over the frames both lasted: the longer run's are cut to the shorter's duration
    assert row["common_frames"] == min(row["duration"], row["pd_duration"])
    if row["duration"] == row["common_frames"]:
        assert row["e_h_cm_common"] == pytest.approx(row["e_h_cm"]) and row["e_o_cm_common"] == pytest.approx(row["e_o_cm"])
    if row["pd_duration"] == row["common_frames"]:
        assert row["pd_e_h_cm_common"] == pytest.approx(row["pd_e_h_cm"])
    from interprior.eval.tracking import format_table

    table = format_table(out["clips"], out["summary"])
    assert clips[0].name in table and "PD replay, same rules: duration" in table and "frames both lasted" in table
    assert row["ended_by"] in ("end", "fall", "body", "object", "interaction_graph", "hand_contact", "non_finite")
    # an exported expert is one file that evaluates to the same numbers
    assert main(["train", "export", "--checkpoint", str(tmp_path / "run"), "--out", str(tmp_path / "x.pt")]) == 0
    capsys.readouterr()
    assert main(["eval", "tracking", "--checkpoint", str(tmp_path / "x.pt"), "--json", "--no-baseline"]) == 0
    again = json.loads(capsys.readouterr().out)["clips"][0]
    assert (again["duration"], again["e_h_cm"]) == (row["duration"], row["e_h_cm"])
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main(["eval", "tracking", "--checkpoint", str(tmp_path / "junk.pt")]) == 2
    assert "junk.pt" in capsys.readouterr().err


def test_evaluation_video_of_a_short_clip(clips, synth_data, tmp_path):
    """write_videos (what `interprior demo` and `eval tracking --video` write): one MP4 per clip, a frame per
    recorded physics frame, on a 12-frame piece of a clip."""
    av = pytest.importorskip("av")
    from interprior.envs.tracking import TrackingConfig
    from interprior.errors import RenderingUnavailable
    from interprior.eval.tracking import compare_with_baseline, write_videos
    from interprior.viz.render import ensure_gl

    try:
        ensure_gl()
    except RenderingUnavailable as err:
        pytest.skip(f"offscreen OpenGL unavailable on this machine: {err}")
    short = clips[0].slice(0, 12)
    _, _, env, tracks = compare_with_baseline(None, [short], synth_data.objects_dir, TrackingConfig(threads=1),
                                              baseline=False, record=True)
    paths = write_videos(tmp_path / "videos", [short], env, tracks)
    assert paths == [tmp_path / "videos" / f"{short.name}.mp4"]
    with av.open(str(paths[0])) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == len(tracks[short.name]) > 1
    assert all(f.std() > 10.0 for f in frames)  # a picture, not a blank frame


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_interrupted_training_keeps_a_checkpoint(clips, synth_data, tmp_path, stop):
    import os
    import signal

    from interprior.train.expert import ExpertTrainer

    cfg = _tiny_config(clips[:1], synth_data, num_envs=2, horizon=2, minibatch=4, hidden=(16,), total_samples=100)
    trainer = ExpertTrainer(cfg, tmp_path / "run")
    real_update, calls = trainer.ppo.update, []

    def update_then_interrupt(buffer):
        calls.append(1)
        if len(calls) == 3:
            if stop == "sigterm":  # what `kill PID` sends to a background run
                os.kill(os.getpid(), signal.SIGTERM)
            raise KeyboardInterrupt
        return real_update(buffer)

    trainer.ppo.update = update_then_interrupt
    with pytest.raises(KeyboardInterrupt):
        trainer.train(bench=False)
    resumed = ExpertTrainer(cfg, tmp_path / "run")
    assert resumed.iteration == 2 and resumed.samples == 8


def test_new_run_starts_from_another_experts_weights(clips, synth_data, tmp_path, capsys):
    from interprior.errors import InterpriorError
    from interprior.train.expert import ExpertTrainer

    cfg = _tiny_config(clips[:1], synth_data, num_envs=2, horizon=2, minibatch=4, hidden=(16,), total_samples=8)
    source = ExpertTrainer(cfg, tmp_path / "a")
    source.train(bench=False)
    tuned = dataclasses.replace(cfg, init=str(tmp_path / "a"))
    tuned.env = dataclasses.replace(cfg.env, reward=dataclasses.replace(cfg.env.reward, op=50.0))
    fine = ExpertTrainer(tuned, tmp_path / "b")
    assert fine.samples == 0 and fine.iteration == 0
    for a, b in zip(source.model.state_dict().values(), fine.model.state_dict().values()):
        assert torch.equal(a, b)  # weights and observation statistics
    # a resumed run keeps its own weights, whatever init says; thread counts may change between resumes
    fine.train(bench=False)
    again = ExpertTrainer(dataclasses.replace(tuned, init=None, torch_threads=1), tmp_path / "b")
    assert again.samples == 8 and not torch.equal(again.model.actor[0].weight, source.model.actor[0].weight)
    other = dataclasses.replace(tuned, model=dataclasses.replace(cfg.model, hidden=(8,)))
    with pytest.raises(InterpriorError, match="init .*does not fit"):
        ExpertTrainer(other, tmp_path / "c")
    with pytest.raises(InterpriorError, match="--init: .*missing.*no such run directory"):
        ExpertTrainer(dataclasses.replace(cfg, init=str(tmp_path / "missing")), tmp_path / "d")


def test_delta_student_labels_reproduce_the_residual_experts_targets(clips, synth_data):
    """A delta-action student's label, applied from the current pose, is the PD target the residual expert chose."""
    from interprior.envs.tracking import TrackingConfig
    from interprior.train.teacher import expert_labels

    env = _env(clips, synth_data, action_mode="delta", residual_scale=0.5)
    env.reset()
    for step in range(3):
        mu = 0.3 * torch.randn(4, env.act_dim, generator=torch.Generator().manual_seed(step))
        label = expert_labels(env, TrackingConfig(action_mode="residual", residual_scale=0.5), mu)
        current = env.current_dof_pos().double()
        rows = env.ref.flat(env.clip_ids, env.frame + 1)
        ref_next = env.ref.tracks["dof_pos"][rows][:, env.body.dof_index].double()
        unclamped = label.abs() < 1
        assert unclamped.float().mean() > 0.9
        want = ref_next + 0.5 * mu.double().clamp(-1, 1)
        diff = ((current + 0.5 * label.double()) - want)[unclamped].abs()
        assert float(diff.max()) < 1e-5, (step, float(diff.max()), diff.argmax())
        env.step(label)
        assert env.prev is not None and torch.isfinite(env.prev.dof_pos).all()
    with pytest.raises(Exception, match="delta"):
        _env(clips, synth_data, action_mode="sideways")
