"""Backend choice: `make_backend(..., backend="cpu" | "warp")`, with a one-line error when warp can't run here."""

from __future__ import annotations

from interprior.errors import BackendUnavailable
from interprior.sim.mujoco_cpu import MujocoCpuBackend

BACKENDS = ("cpu", "warp")


def warp_device_problem(device: str) -> str | None:
    """Why MuJoCo Warp cannot run on `device` here (None when it can)."""
    try:
        import mujoco_warp  # noqa: F401
        import warp as wp
    except ImportError as exc:
        return f"MuJoCo Warp is not installed ({exc.name}; pip install 'interprior[warp]')"
    wp.config.log_level = max(wp.config.log_level, wp.LOG_WARNING)
    if device == "cpu":
        return None
    if not device.startswith("cuda"):
        return f"unknown device {device!r} (use cuda, cuda:N or cpu)"
    count = wp.get_cuda_device_count()
    index = int(device.split(":")[1]) if ":" in device else 0
    if count == 0:
        return f"no CUDA device for MuJoCo Warp (asked for {device})"
    if index >= count:
        return f"CUDA device {device} does not exist ({count} found)"
    return None


def make_backend(model, num_envs: int, substeps: int, backend: str = "cpu", device: str | None = None,
                 threads: int | None = None, **warp_options):
    """A SimBackend for the compiled scene model. cpu: MuJoCo C engine on `threads` threads (device must be
    cpu or None). warp: MuJoCo Warp on `device` (default cuda:0; "cpu" runs warp's CPU device, slow, for tests);
    `warp_options` go to MujocoWarpBackend (nconmax, njmax, graph)."""
    if backend == "cpu":
        if device not in (None, "cpu"):
            raise BackendUnavailable(f"the cpu backend runs on the CPU only (got --device {device}); "
                                     "use --backend warp for GPUs")

        return MujocoCpuBackend(model, num_envs, substeps, nthread=threads)
    if backend == "warp":
        device = device or "cuda:0"
        problem = warp_device_problem(device)
        if problem:
            raise BackendUnavailable(f"{problem}; use --backend cpu")
        from interprior.sim.mujoco_warp import MujocoWarpBackend

        return MujocoWarpBackend(model, num_envs, substeps, device=device, **warp_options)
    raise BackendUnavailable(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
