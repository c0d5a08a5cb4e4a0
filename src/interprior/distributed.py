"""Thin helpers around ``torch.distributed`` for ``torchrun`` launches (one process per GPU).

Without ``torchrun`` (no ``RANK``/``WORLD_SIZE`` in the environment) everything here is a no-op: rank 0 of a
world of 1. With ``torchrun`` each process holds its own share of the environments and clips (:func:`shard`),
parameters are broadcast once from rank 0 (:func:`broadcast_module`) and gradients are averaged after every
backward pass (:func:`average_gradients`), so all ranks keep identical weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None  # None when not distributed


def is_distributed() -> bool:
    """True when a process group with more than one process is up."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0 (or not distributed): the process that prints, logs and writes checkpoints."""
    return rank() == 0


def init_distributed(device: str | torch.device | None = None) -> DistInfo:
    """Join the process group described by torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``).

    ``device``: ``None`` picks ``cuda:<LOCAL_RANK>`` when CUDA is available, else CPU; pass ``"cpu"`` to force
    CPU on a GPU machine. The backend is NCCL for CUDA and gloo for CPU. Not launched by torchrun → no process
    group, rank 0 of 1. Calling it again after the group is up just returns the current info.
    """
    launched = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    local_rank = int(os.environ.get("LOCAL_RANK", 0)) if launched else 0
    if device is None:
        dev = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device(f"cuda:{local_rank}")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not launched:
        return DistInfo(0, 1, 0, dev, None)
    if not dist.is_available():
        raise RuntimeError("launched by torchrun but this torch build has no torch.distributed")
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not dist.is_initialized():
        kwargs = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(backend=backend, **kwargs)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev, dist.get_backend())


def cleanup() -> None:
    """Tear the process group down (call at the end of a torchrun script)."""
    if dist.is_available() and dist.is_initialized():
        # all ranks reach this point before any tears its group down: a rank that exits while a peer's gloo
        # threads still talk to it aborts ("terminate called without an active exception")
        dist.barrier()
        dist.destroy_process_group()


def exit_process(code: int = 0) -> None:
    """End a torchrun worker without interpreter finalization: gloo's worker threads can still hold tensors then,
    and releasing them while Python shuts down aborts the process now and then (SIGABRT, "terminate called
    without an active exception"; pytorch/pytorch#179291) after all work is done."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shard(n_items: int, rank: int, world: int) -> range:
    """Contiguous, balanced share of ``range(n_items)`` for ``rank``.

    The first ``n_items % world`` ranks get one item more than the others."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} not in a world of {world}")
    base, extra = divmod(n_items, world)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))


@torch.no_grad()
def broadcast_module(model: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers to every rank (so all ranks start equal)."""
    if not is_distributed():
        return
    for t in list(model.parameters()) + list(model.buffers()):
        dist.broadcast(t.data, src=src)


def all_reduce_sum_(t: torch.Tensor) -> torch.Tensor:
    """In-place sum over ranks (no-op when not distributed); returns ``t``."""
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_mean_(t: torch.Tensor) -> torch.Tensor:
    """In-place mean over ranks (no-op when not distributed); returns ``t``."""
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= dist.get_world_size()
    return t


@torch.no_grad()
def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Average ``.grad`` over ranks with one flat all-reduce per dtype/device (missing grads count as zero)."""
    if not is_distributed():
        return
    params = [p for p in params if p.requires_grad]
    groups: dict[tuple, list[torch.nn.Parameter]] = {}
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        groups.setdefault((p.grad.dtype, p.grad.device), []).append(p)
    for group in groups.values():
        flat = torch.cat([p.grad.reshape(-1) for p in group])
        all_reduce_mean_(flat)
        offset = 0
        for p in group:
            n = p.grad.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n
