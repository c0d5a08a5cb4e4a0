"""Physical State Initialization buffer: scoring, acceptance, eviction, decay, sampling."""

import pytest
import torch

from interprior.mdp.psi import PsiBuffer, PsiConfig

NO_DECAY = PsiConfig(decay=0.0)


def _record(buf, clip, start, end, rollout=300, length=200, value=1.0, dim=4):
    """One finished episode whose stored state at step j is `value` (first entry j, to check which frame)."""
    steps = rollout + 1
    traj = torch.full((1, steps, dim), float(value))
    traj[0, :, 1] = torch.arange(steps, dtype=torch.float32) + start  # the frame each state belongs to
    return buf.record(torch.tensor([clip]), torch.tensor([start]), torch.tensor([end]), torch.tensor([length]),
                      rollout, traj)


def test_starts_with_motion_capture_only():
    buf = PsiBuffer(num_clips=2, max_len=50, slots=3, state_dim=4)
    assert buf.scores.shape == (2, 50, 3) and buf.states.shape == (2, 50, 2, 4)
    assert torch.all(buf.scores[..., 0] == 1) and torch.all(buf.scores[..., 1:] == 0)
    slots = buf.sample(torch.zeros(100, dtype=torch.long), torch.arange(100) % 50, torch.Generator().manual_seed(0))
    assert torch.all(slots == 0)
    with pytest.raises(ValueError):
        PsiBuffer(1, 10, slots=1, state_dim=4)


def test_score_formula_accepts_above_half_and_rejects_at_or_below():
    buf = PsiBuffer(num_clips=2, max_len=200, slots=3, state_dim=4, config=NO_DECAY)
    # start 0, fell at 60, rollout 100 (end_max = min(200, 100) = 100): score(t) = (60 - t) / (100 - t)
    written = _record(buf, clip=1, start=0, end=60, rollout=100)
    t = torch.arange(200)
    expected = torch.where((t >= 10) & (t < 50), (60 - t).float() / (100 - t).float(), torch.zeros(()))
    accepted = expected > 0.5  # t = 10..19 (t = 20 scores exactly 0.5: rejected)
    assert written == 10 and accepted.nonzero().flatten().tolist() == list(range(10, 20))
    stored = buf.scores[1, :, 1:].amax(-1)
    assert torch.allclose(stored, torch.where(accepted, expected, torch.zeros(())))
    assert torch.all(buf.states[1, 10:20, 0, 1] == torch.arange(10, 20))  # the state of frame t went to frame t
    assert torch.all(buf.scores[0, :, 1:] == 0)  # other clip untouched
    assert torch.all(buf.scores[..., 0] == 1)


def test_full_rollout_scores_one_and_edges_are_skipped():
    buf = PsiBuffer(num_clips=1, max_len=400, slots=3, state_dim=4, config=NO_DECAY)
    written = _record(buf, 0, start=20, end=320, rollout=300, length=400)  # survived the whole rollout
    assert written == 300 - 20
    assert torch.all(buf.scores[0, 30:310, 1] == 1.0)
    assert torch.all(buf.scores[0, :30, 1:] == 0) and torch.all(buf.scores[0, 310:, 1:] == 0)


def test_short_and_failed_episodes_are_ignored():
    buf = PsiBuffer(num_clips=1, max_len=200, slots=3, state_dim=4)
    assert _record(buf, 0, 0, 30, rollout=40) == 0  # 30 frames: not longer than 30
    assert _record(buf, 0, 0, 60, rollout=300) == 0  # (60 - t) / (200 - t) <= 0.5 everywhere
    assert torch.all(buf.scores[..., 1:] == 0)


def test_best_env_per_frame_wins():
    buf = PsiBuffer(num_clips=1, max_len=200, slots=3, state_dim=4, config=NO_DECAY)
    traj = torch.zeros(3, 101, 4)
    traj[0, :, 0], traj[1, :, 0], traj[2, :, 0] = 1.0, 2.0, 3.0
    # same clip and start, ends 80 / 95 / 70 (rollout 100): env 1 scores highest at every frame it covers
    written = buf.record(torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long),
                         torch.tensor([80, 95, 70]), torch.tensor([200, 200, 200]), 100, traj)
    assert written == 85 - 10  # frames 10..84, each written once
    assert torch.all(buf.states[0, 10:85, 0, 0] == 2.0) and torch.all(buf.scores[0, 10:85, 2] == 0)
    assert torch.allclose(buf.scores[0, 10:85, 1], (95 - torch.arange(10, 85)).float() / (100 - torch.arange(10, 85)))


def test_evicts_lowest_simulated_slot_never_mocap():
    buf = PsiBuffer(num_clips=1, max_len=200, slots=3, state_dim=4, config=NO_DECAY)
    t = 50
    _record(buf, 0, 0, 199, rollout=199, value=1.0)  # score 1 everywhere inside
    _record(buf, 0, 0, 199, rollout=199, value=2.0)  # fills the second simulated slot
    assert buf.states[0, t, :, 0].tolist() == [1.0, 2.0]
    buf.scores[0, t, 1:] = torch.tensor([0.9, 0.7])
    # a new state with score 0.6 (> 0.5) replaces the lowest slot (0.7) even though it scores lower itself
    _record(buf, 0, 0, 80, rollout=100, value=3.0)  # score(50) = 30 / 50 = 0.6
    assert buf.states[0, t, :, 0].tolist() == [1.0, 3.0]
    assert torch.allclose(buf.scores[0, t], torch.tensor([1.0, 0.9, 0.6]))
    for value in (4.0, 5.0, 6.0):  # repeated writes rotate through the simulated slots only
        _record(buf, 0, 0, 199, rollout=199, value=value)
    assert torch.all(buf.scores[..., 0] == 1.0)
    assert set(buf.states[0, t, :, 0].tolist()) <= {4.0, 5.0, 6.0}


def test_decay_applies_to_simulated_slots_only():
    buf = PsiBuffer(num_clips=1, max_len=200, slots=3, state_dim=4)  # default decay 1e-5
    _record(buf, 0, 0, 199, rollout=199)
    assert torch.allclose(buf.scores[0, 50], torch.tensor([1.0, 1.0 - 1e-5, 0.0]))
    buf2 = PsiBuffer(num_clips=1, max_len=200, slots=3, state_dim=4, config=PsiConfig(decay=0.1))
    _record(buf2, 0, 0, 199, rollout=199)
    for _ in range(3):
        _record(buf2, 0, 0, 20, rollout=199)  # ignored episodes still decay the buffer
    assert torch.allclose(buf2.scores[0, 50], torch.tensor([1.0, 0.9 ** 4, 0.0]))
    assert torch.all(buf2.scores[..., 0] == 1.0)


def test_sampling_is_proportional_to_score():
    buf = PsiBuffer(num_clips=2, max_len=10, slots=3, state_dim=4)
    buf.scores[1, 5] = torch.tensor([1.0, 0.5, 0.25])
    n = 20000
    slots = buf.sample(torch.ones(n, dtype=torch.long), torch.full((n,), 5), torch.Generator().manual_seed(0))
    share = torch.bincount(slots, minlength=3).float() / n
    expected = torch.tensor([4.0, 2.0, 1.0]) / 7.0
    sigma = (expected * (1 - expected) / n).sqrt()
    assert torch.all((share - expected).abs() < 4 * sigma), (share, expected)
    again = buf.sample(torch.ones(n, dtype=torch.long), torch.full((n,), 5), torch.Generator().manual_seed(0))
    assert torch.equal(slots, again)  # the generator fixes the draw


def test_apply_uses_stored_state_for_simulated_slots():
    buf = PsiBuffer(num_clips=1, max_len=20, slots=2, state_dim=3)
    buf.scores[0, 4, 1] = 1e6  # slot 1 almost surely drawn at frame 4
    buf.states[0, 4, 0] = torch.tensor([7.0, 8.0, 9.0])
    mocap = torch.zeros(2, 3)
    out = buf.apply(mocap, torch.tensor([0, 0]), torch.tensor([4, 3]), torch.Generator().manual_seed(0),
                    pack=lambda s: s.clone(), unpack=lambda v: v)
    assert out[0].tolist() == [7.0, 8.0, 9.0] and out[1].tolist() == [0.0, 0.0, 0.0]


def test_state_callback_is_called_for_winners_only():
    buf = PsiBuffer(num_clips=1, max_len=200, slots=2, state_dim=2, config=NO_DECAY)
    calls = []

    def states(episodes, steps):
        calls.append(len(steps))
        return torch.stack([episodes.float(), steps.float()], -1)

    written = buf.record(torch.tensor([0, 0]), torch.tensor([0, 5]), torch.tensor([90, 105]),
                         torch.tensor([200, 200]), 100, states, steps=101)
    assert calls == [written] and written == 95 - 10  # frames 10..94 (env 0: 10..79, env 1: 15..94)
    assert buf.states[0, 50, 0].tolist() == [1.0, 45.0]  # t = 50: env 1 (start 5) scores 1, env 0 only 40/50
    assert buf.states[0, 12, 0].tolist() == [0.0, 12.0]  # only env 0 covers t = 12
    with pytest.raises(ValueError):
        buf.record(torch.tensor([0]), torch.tensor([0]), torch.tensor([100]), torch.tensor([200]), 100, states)


def test_sparse_update_probability():
    never = PsiBuffer(1, 200, 2, 4, config=PsiConfig(update_prob=0.0))
    always = PsiBuffer(1, 200, 2, 4, config=PsiConfig(update_prob=1.0))
    args = (torch.tensor([0]), torch.tensor([0]), torch.tensor([199]), torch.tensor([200]), 199, torch.ones(1, 200, 4))
    assert never.update(*args) is None and torch.all(never.scores[..., 1] == 0)
    assert always.update(*args) == 179
    some = PsiBuffer(1, 200, 2, 4, config=PsiConfig(update_prob=0.3))
    g = torch.Generator().manual_seed(1)
    runs = sum(some.update(*args, generator=g) is not None for _ in range(2000))
    assert abs(runs / 2000 - 0.3) < 0.04 and some.num_updates == runs


def test_hybrid_start_frames():
    buf = PsiBuffer(num_clips=3, max_len=40, slots=3, state_dim=4, clip_lengths=torch.tensor([40, 34, 20]))
    g = torch.Generator().manual_seed(0)
    # clip 0, rollout 30: frames 0..9; frame 3 already holds two good simulated states -> weight 1/3, others 1
    buf.scores[0, 3, 1:] = 1.0
    n = 30000
    frames = buf.sample_start_frames(torch.zeros(n, dtype=torch.long), 30, g, start_prob=0.0)
    assert int(frames.max()) == 9
    share = torch.bincount(frames, minlength=10).float() / n
    expected = torch.ones(10)
    expected[3] = 1.0 / 3.0
    expected /= expected.sum()
    assert torch.all((share - expected).abs() < 4 * (expected * (1 - expected) / n).sqrt())
    # start_prob = 1: always frame 0; clips not longer than the rollout start at 0; clip 1 has 4 candidates
    assert torch.all(buf.sample_start_frames(torch.zeros(50, dtype=torch.long), 30, g, start_prob=1.0) == 0)
    assert torch.all(buf.sample_start_frames(torch.full((50,), 2), 30, g, start_prob=0.0) == 0)
    assert set(buf.sample_start_frames(torch.ones(500, dtype=torch.long), 30, g, start_prob=0.0).tolist()) == \
        {0, 1, 2, 3}
    mixed = buf.sample_start_frames(torch.zeros(n, dtype=torch.long), 30, g, start_prob=0.5)
    assert abs(float((mixed == 0).float().mean()) - (0.5 + 0.5 * float(expected[0]))) < 0.02


def test_frames_past_clip_end_are_clamped_and_checkpoint_round_trip():
    buf = PsiBuffer(num_clips=2, max_len=50, slots=2, state_dim=4, clip_lengths=torch.tensor([50, 30]))
    buf.scores[1, 29, 1] = 0.7
    assert buf.scores_at(torch.tensor([1]), torch.tensor([45])).tolist() == [[1.0, pytest.approx(0.7)]]
    state = buf.state_dict()
    other = PsiBuffer(num_clips=2, max_len=50, slots=2, state_dim=4, clip_lengths=torch.tensor([50, 30]))
    other.load_state_dict(state)
    assert torch.equal(other.scores, buf.scores)
    with pytest.raises(ValueError):
        PsiBuffer(num_clips=2, max_len=50, slots=3, state_dim=4).load_state_dict(state)
