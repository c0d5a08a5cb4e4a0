"""Running mean/variance observation normaliser (rl_games ``normalize_input``: clamp ±5).

Statistics are float64 buffers (so they travel in the module's ``state_dict`` and with ``.to(device)``).
Under ``torch.distributed`` the batch moments are summed over ranks before the update, so every rank applies
the same update and the statistics stay identical (given identical starting values, e.g. after
``broadcast_module``).
"""

from __future__ import annotations

import torch
from torch import nn

from interprior.distributed import all_reduce_sum_


class RunningNorm(nn.Module):
    """``y = clamp((x - mean) / sqrt(var + eps), -clamp, clamp)`` over the last dimension of size ``size``."""

    def __init__(self, size: int, clamp: float = 5.0, eps: float = 1e-5):
        super().__init__()
        self.size = int(size)
        self.clamp = float(clamp)
        self.eps = float(eps)
        self.register_buffer("mean", torch.zeros(self.size, dtype=torch.float64))
        self.register_buffer("var", torch.ones(self.size, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor, spread: torch.Tensor | None = None) -> None:
        """Fold a batch ``[..., size]`` into the statistics (batch moments reduced across ranks first). `spread`
        [size]: x holds fewer columns, statistic j takes the moments of x's column spread[j] (repeated columns
        measured once)."""
        width = self.size if spread is None else x.shape[-1]
        x = x.detach().reshape(-1, width).to(self.mean.device)
        # one all-reduce for count, sum and sum of squares. The batch moments are taken in the input's precision
        # (centred, so float32 is accurate for a rollout) and combined in float64.
        count = x.shape[0]
        if count:
            b_var, b_mean = torch.var_mean(x, dim=0, correction=0)
            b_var, b_mean = b_var.double(), b_mean.double()
            if spread is not None:
                b_var, b_mean = b_var[spread], b_mean[spread]
        else:
            b_var = b_mean = torch.zeros_like(self.mean)
        moments = torch.cat(
            [
                torch.tensor([float(count)], dtype=torch.float64, device=x.device),
                b_mean * count,
                (b_var + b_mean**2) * count,
            ]
        )
        all_reduce_sum_(moments)
        n = moments[0]
        if n.item() == 0:
            return
        b_mean = moments[1 : 1 + self.size] / n
        b_var = (moments[1 + self.size :] / n - b_mean**2).clamp_min(0.0)
        # Chan et al. parallel combination of (count, mean, M2)
        total = self.count + n
        delta = b_mean - self.mean
        m2 = self.var * self.count + b_var * n + delta**2 * self.count * n / total
        self.mean += delta * n / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def forward(self, x: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised `x`; `columns`: x holds only these columns of the statistics (in this order)."""
        mean, var = (self.mean, self.var) if columns is None else (self.mean[columns], self.var[columns])
        mean = mean.to(x.dtype)
        std = torch.sqrt(var + self.eps).to(x.dtype)
        y = x - mean
        if y.requires_grad or torch.jit.is_tracing():
            return (y / std).clamp(-self.clamp, self.clamp)
        # the same operations in place: a rollout's worth of observations is tens of MB, fresh copies cost more
        # than the arithmetic
        return y.div_(std).clamp_(-self.clamp, self.clamp)

    def extra_repr(self) -> str:
        return f"size={self.size}, clamp={self.clamp}"
