"""Failure-weighted clip sampling: episodes start more often on the clips the policy still fails.

With a few hundred clips and a CPU budget of a few million samples, uniform clip sampling spends most samples on
skills the expert has mastered (touching, lifting) while the hard ones (walking 4 m and turning, pushing) stall.
Each clip keeps a running failure rate: the share of its recent episodes that ended early (any termination; a
timeout or the clip's end is a success). A reset draws its clip from

    p(clip) = (1 - share) / num_clips + share · rate(clip) / Σ rate,

so `share` = 0 is uniform sampling and every clip keeps at least (1 - share) / num_clips. Rates start at 1 (all
equal: the first draws are uniform) and follow finished episodes with an exponential moving average per episode.
Batched: one scatter per step, no per-clip loop.
"""

from __future__ import annotations

import torch
from torch import Tensor

EMA_RATE = 0.05  # weight of one finished episode in its clip's failure rate (about the last 20 episodes)


class ClipFailureRates:
    """Running failure rate per clip ([num_clips] float64, CPU)."""

    def __init__(self, num_clips: int, ema_rate: float = EMA_RATE):
        if num_clips < 1:
            raise ValueError("ClipFailureRates needs at least one clip")
        if not 0.0 < ema_rate <= 1.0:
            raise ValueError(f"ema_rate must be in (0, 1], got {ema_rate}")
        self.ema_rate = float(ema_rate)
        self.rates = torch.ones(num_clips, dtype=torch.float64)

    def update(self, clip_ids: Tensor, failed: Tensor) -> None:
        """Fold in finished episodes: `clip_ids` [E] long, `failed` [E] bool. A clip with k episodes in this batch,
        f of them failed, moves as if the k came one after the other with failure share f / k:
        rate ← rate·(1-a)^k + (f/k)·(1 - (1-a)^k)."""
        clip_ids = torch.as_tensor(clip_ids, dtype=torch.long).cpu()
        failed = torch.as_tensor(failed).cpu().to(torch.float64)
        if clip_ids.numel() == 0:
            return
        count = torch.zeros_like(self.rates).index_add_(0, clip_ids, torch.ones_like(failed))
        fails = torch.zeros_like(self.rates).index_add_(0, clip_ids, failed)
        keep = (1.0 - self.ema_rate) ** count
        share = fails / count.clamp_min(1.0)
        self.rates = self.rates * keep + share * (1.0 - keep)

    def probabilities(self, share: float) -> Tensor:
        """[num_clips] sampling probabilities: `share` of the mass ∝ the failure rates, the rest uniform (all
        uniform while no clip fails)."""
        n = self.rates.shape[0]
        uniform = torch.full_like(self.rates, 1.0 / n)
        total = float(self.rates.sum())
        if share <= 0.0 or total <= 0.0:
            return uniform
        return (1.0 - share) * uniform + share * self.rates / total

    def sample(self, n: int, share: float, generator: torch.Generator | None = None) -> Tensor:
        """[n] clip ids drawn from :meth:`probabilities`."""
        if n == 0:
            return torch.zeros(0, dtype=torch.long)
        return torch.multinomial(self.probabilities(share), n, replacement=True, generator=generator)
