"""The narrow simulator interface every backend implements (MuJoCo C on CPU now, MuJoCo Warp on GPU next).

A backend only moves raw MuJoCo arrays: it resets chosen envs to given qpos/qvel, steps all envs with PD targets
for `substeps` physics steps, reports the envs whose step diverged (`interprior.sim.divergence`), and exposes
qpos, qvel and sensordata as batched torch tensors. Everything derived (body states, contacts, features) is
computed once, device-agnostically, in `interprior.sim.batched`.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor


class SimBackend(Protocol):
    num_envs: int
    device: torch.device
    dtype: torch.dtype

    def reset(self, env_ids: Tensor, qpos: Tensor, qvel: Tensor) -> None:
        """Set qpos [len(env_ids), nq] and qvel [len(env_ids), nv] of the chosen envs; velocities of the free
        joints follow MuJoCo's convention (linear in world, angular in the body frame)."""

    def step(self, ctrl: Tensor) -> None:
        """Apply PD targets ctrl [num_envs, nu] for `substeps` physics steps."""

    def diverged(self) -> Tensor:
        """[num_envs] bool: envs whose last `step` diverged (NaN, inf or huge state; MuJoCo instability). The
        backend has already put them back to the model's default state (qpos0, at rest), so no NaN is read."""

    def qpos(self) -> Tensor:  # [num_envs, nq]
        ...

    def qvel(self) -> Tensor:  # [num_envs, nv]
        ...

    def sensordata(self) -> Tensor:  # [num_envs, nsensordata], values of the last physics step
        ...


def snapshot_backend(backend):
    """What `restore_backend` needs to put a backend's envs back exactly (CPU) or at the same qpos/qvel (others)."""
    if hasattr(backend, "snapshot"):
        return backend.snapshot()
    return backend.qpos().clone(), backend.qvel().clone()


def restore_backend(backend, snap) -> None:
    if hasattr(backend, "restore"):
        backend.restore(snap)
    else:
        backend.reset(torch.arange(backend.num_envs, device=backend.device), *snap)
