"""Running mean/variance observation normaliser (rl_games ``normalize_input``: clamp ±5).

Statistics are float64 buffers (so they travel in the module's ``state_dict`` and with ``.to(device)``).
Under ``torch.distributed`` the batch moments are summed over ranks before the update, so every rank applies
the same update and the statistics stay identical (given identical starting values, e.g. after
``broadcast_module``).
"""

from __future__ import annotations

import torch
from torch import nn

from interprior.train.distributed import all_reduce_sum_


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
    def update(self, x: torch.Tensor) -> None:
        """Fold a batch ``[..., size]`` into the statistics (batch moments reduced across ranks first)."""
        x = x.detach().reshape(-1, self.size).to(self.mean.device, torch.float64)
        # one all-reduce for count, sum and sum of squares; squares around the local mean for accuracy
        local_mean = x.mean(0) if x.shape[0] else torch.zeros_like(self.mean)
        moments = torch.cat(
            [
                torch.tensor([float(x.shape[0])], dtype=torch.float64, device=x.device),
                x.sum(0),
                ((x - local_mean) ** 2).sum(0) + x.shape[0] * local_mean**2,
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.mean.to(x.dtype)
        std = torch.sqrt(self.var + self.eps).to(x.dtype)
        return ((x - mean) / std).clamp(-self.clamp, self.clamp)

    def extra_repr(self) -> str:
        return f"size={self.size}, clamp={self.clamp}"
