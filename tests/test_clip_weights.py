"""Failure-weighted clip sampling (`interprior.mdp.clip_weights`): pure tensor bookkeeping, no simulator."""

import pytest
import torch

from interprior.mdp.clip_weights import ClipFailureRates


def test_rates_follow_finished_episodes_as_a_moving_average():
    rates = ClipFailureRates(3, ema_rate=0.5)
    assert torch.equal(rates.rates, torch.ones(3, dtype=torch.float64))
    rates.update(torch.tensor([0, 1]), torch.tensor([False, True]))
    assert rates.rates.tolist() == [0.5, 1.0, 1.0]
    # two episodes of clip 0 in one batch = one after the other with the batch's failure share
    rates.update(torch.tensor([0, 0]), torch.tensor([True, False]))
    assert rates.rates[0].item() == pytest.approx(0.5 * 0.25 + 0.5 * 0.75)
    rates.update(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.bool))
    assert rates.rates[2].item() == 1.0


def test_probabilities_mix_uniform_and_failure_share():
    rates = ClipFailureRates(4)
    rates.rates = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    p = rates.probabilities(0.8)
    assert p.sum().item() == pytest.approx(1.0)
    assert p.tolist() == pytest.approx([0.05 + 0.8, 0.05, 0.05, 0.05])
    assert rates.probabilities(0.0).tolist() == [0.25] * 4
    rates.rates.zero_()  # nothing fails: uniform
    assert rates.probabilities(0.8).tolist() == [0.25] * 4


def test_sampling_draws_the_failing_clips_more_often():
    rates = ClipFailureRates(2)
    rates.rates = torch.tensor([0.9, 0.1], dtype=torch.float64)
    ids = rates.sample(4000, 0.5, torch.Generator().manual_seed(0))
    share = (ids == 0).double().mean().item()
    assert share == pytest.approx(0.25 + 0.5 * 0.9, abs=0.03)
    assert rates.sample(0, 0.5).shape == (0,)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="at least one clip"):
        ClipFailureRates(0)
    with pytest.raises(ValueError, match="ema_rate"):
        ClipFailureRates(2, ema_rate=0.0)
