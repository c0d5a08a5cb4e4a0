"""Simulator throughput: the batched simulator with full state extraction vs raw MuJoCo stepping of the same
scene, measured in one run. CPU backend: raw = one `mujoco.rollout` call over all steps (same envs and threads).
Warp backend: raw = the backend's captured `mujoco_warp.step` graph on the same worlds, nothing extracted."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import mujoco
import numpy as np
import torch
from mujoco import rollout

from interprior.assets.scene import Scene, SceneConfig, build_scene, standing_pelvis_height
from interprior.data.state import ResetState
from interprior.errors import BackendUnavailable
from interprior.sim.backend import restore_backend, snapshot_backend
from interprior.sim.batched import BatchedSim
from interprior.sim.factory import make_backend
from interprior.sim.mujoco_cpu import MujocoCpuBackend


@dataclass
class SimBenchResult:
    envs: int
    control_steps: int
    substeps: int
    threads: int
    variant: str
    objects: list[str]
    batched_env_steps_per_s: float  # control steps x envs per second, full state extraction every step
    batched_physics_steps_per_s: float
    raw_physics_steps_per_s: float  # MuJoCo steps x envs per second, no extraction
    ratio: float  # batched physics rate / raw physics rate
    backend: str = "cpu"
    device: str = "cpu"
    extra: dict = field(default_factory=dict)  # warp: nconmax, njmax, graph

    def as_dict(self) -> dict:
        out = asdict(self)
        if self.backend == "cpu":  # the CPU result keeps its original keys
            for key in ("backend", "device", "extra"):
                out.pop(key)
        return out


def standing_reset(scene: Scene, n: int) -> ResetState:
    """Zero pose standing on the floor, objects (if any) resting 0.6 m in front of the humanoid."""

    h = standing_pelvis_height(scene.model) + 0.005
    k = scene.layout.num_objects
    d = scene.body.num_dofs
    z3 = torch.zeros(n, 3, dtype=torch.float64)
    obj_pos = torch.zeros(n, k, 3, dtype=torch.float64)
    obj_rot = torch.zeros(n, k, 4, dtype=torch.float64)
    obj_rot[..., 0] = 1.0
    for i, asset in enumerate(scene.config.objects):
        obj_pos[:, i, 0] = 0.6 + 0.5 * float(np.max(asset.extents[:2]))
        obj_pos[:, i, 2] = 0.01 - float(asset.bounds[0, 2])  # meshes are vertex-mean centred: lift by the bottom
    return ResetState(
        root_pos=torch.tensor([[0.0, 0.0, h]], dtype=torch.float64).expand(n, 3),
        root_rot=torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64).expand(n, 4),
        root_linvel=z3, root_angvel=z3,
        dof_pos=torch.zeros(n, d, dtype=torch.float64), dof_vel=torch.zeros(n, d, dtype=torch.float64),
        obj_pos=obj_pos, obj_rot=obj_rot, obj_linvel=torch.zeros_like(obj_pos), obj_angvel=torch.zeros_like(obj_pos),
    )


def random_targets(scene: Scene, n: int, steps: int, seed: int = 0) -> torch.Tensor:
    """[steps, n, D] PD targets: small random actions, so the humanoid moves, loses balance and makes contacts."""
    g = torch.Generator().manual_seed(seed)
    offset = torch.as_tensor(scene.layout.action_offset)
    scale = torch.as_tensor(scene.layout.action_scale)
    actions = 0.1 * torch.randn(steps, n, scene.body.num_dofs, generator=g, dtype=torch.float64)
    return offset + scale * actions.clamp(-1, 1)


def bench_sim(envs: int = 64, steps: int = 100, scene_config: SceneConfig | None = None,
              threads: int | None = None, warmup: int = 5, backend: str = "cpu", device: str | None = None,
              scene: Scene | None = None, repeats: int = 3) -> SimBenchResult:
    scene = scene or build_scene(scene_config or SceneConfig())
    sub = scene.config.substeps
    targets = random_targets(scene, envs, steps + warmup)
    if backend == "warp":
        return _bench_warp(scene, envs, steps, warmup, targets, device)
    if backend != "cpu" or device not in (None, "cpu"):
        problem = f"unknown backend {backend!r}" if backend != "cpu" else f"the cpu backend has no device {device!r}"
        raise BackendUnavailable(problem)
    # Batched simulator with full state extraction after every control step, and raw stepping of the same envs
    # from the same start with the same PD targets (one rollout call, nothing extracted). The two are timed in
    # alternation `repeats` times and the best of each is kept, so background load hits both alike.
    cpu_backend = MujocoCpuBackend(scene.model, envs, sub, nthread=threads)
    sim = BatchedSim(scene, cpu_backend)
    sim.reset(torch.arange(envs), standing_reset(scene, envs))
    for k in range(warmup):
        sim.step(targets=targets[k])
        sim.state()
    start_state = cpu_backend._state.copy()
    start_sensor, start_warm = cpu_backend._sensor.copy(), cpu_backend._warmstart.copy()
    ctrl = np.repeat(targets[warmup:].permute(1, 0, 2).numpy(), sub, axis=1)  # [envs, steps*sub, D]
    datas = [mujoco.MjData(scene.model) for _ in range(cpu_backend.nthread)]
    batched = raw = float("inf")
    with rollout.Rollout(nthread=cpu_backend.nthread) as pool:
        for _ in range(max(1, repeats)):
            cpu_backend._state[:], cpu_backend._sensor[:] = start_state, start_sensor
            cpu_backend._warmstart[:] = start_warm
            t0 = time.perf_counter()
            for k in range(warmup, warmup + steps):
                sim.step(targets=targets[k])
                sim.state()
            batched = min(batched, time.perf_counter() - t0)
            t0 = time.perf_counter()
            pool.rollout([scene.model] * envs, datas, start_state, ctrl, initial_warmstart=start_warm)
            raw = min(raw, time.perf_counter() - t0)
    cpu_backend.close()
    physics_steps = envs * steps * sub
    return SimBenchResult(
        envs=envs, control_steps=steps, substeps=sub, threads=cpu_backend.nthread, variant=scene.body.name,
        objects=[a.name for a in scene.config.objects],
        batched_env_steps_per_s=envs * steps / batched,
        batched_physics_steps_per_s=physics_steps / batched,
        raw_physics_steps_per_s=physics_steps / raw,
        ratio=raw / batched,
    )


def _bench_warp(scene: Scene, envs: int, steps: int, warmup: int, targets: torch.Tensor,
                device: str | None) -> SimBenchResult:
    """Same measurement on MuJoCo Warp. The warmup includes kernel compilation and graph capture."""

    sub = scene.config.substeps
    backend = make_backend(scene.model, envs, sub, backend="warp", device=device)
    targets = targets.to(backend.device, backend.dtype)  # on the device up front: no host copies while timing
    sim = BatchedSim(scene, backend)
    all_envs = torch.arange(envs, device=backend.device)
    sim.reset(all_envs, standing_reset(scene, envs))
    for k in range(warmup):
        sim.step(targets=targets[k])
        sim.state()
    start_qpos, start_qvel = backend.qpos().clone(), backend.qvel().clone()
    _sync(backend.device)
    t0 = time.perf_counter()
    for k in range(warmup, warmup + steps):
        sim.step(targets=targets[k])
        sim.state()
    _sync(backend.device)
    batched = time.perf_counter() - t0
    # Raw stepping: same worlds back at the same start, same targets, nothing extracted.
    backend.reset(all_envs, start_qpos, start_qvel)
    _sync(backend.device)
    t0 = time.perf_counter()
    for k in range(warmup, warmup + steps):
        backend.step(targets[k])
    _sync(backend.device)
    raw = time.perf_counter() - t0
    backend.check_overflow()
    physics_steps = envs * steps * sub
    return SimBenchResult(
        envs=envs, control_steps=steps, substeps=sub, threads=1 if backend.device.type == "cpu" else 0,
        variant=scene.body.name, objects=[a.name for a in scene.config.objects],
        batched_env_steps_per_s=envs * steps / batched,
        batched_physics_steps_per_s=physics_steps / batched,
        raw_physics_steps_per_s=physics_steps / raw,
        ratio=raw / batched,
        backend="warp", device=str(backend.device),
        extra={"nconmax": backend.nconmax, "njmax": backend.njmax, "graph": backend.use_graph},
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def raw_stepping_rate(backend, targets: list[torch.Tensor], repeats: int = 3) -> float:
    """Env-steps/s of raw stepping: `backend.step` over the given PD targets [num_envs, nu] from the envs' current
    states (best of `repeats`, each from the same start), nothing extracted. The envs are put back afterwards."""
    snap = snapshot_backend(backend)
    best = float("inf")
    try:
        for _ in range(max(1, repeats)):
            restore_backend(backend, snap)
            _sync(backend.device)
            start = time.perf_counter()
            for target in targets:
                backend.step(target)
            _sync(backend.device)
            best = min(best, time.perf_counter() - start)
    finally:
        restore_backend(backend, snap)
    return backend.num_envs * len(targets) / best


def bench_table(env_counts: list[int], steps: int = 100, scene_config: SceneConfig | None = None,
                threads: int | None = None, backend: str = "warp", device: str | None = None,
                cpu_env_steps: int = 200_000) -> list[dict]:
    """One row per env count: the chosen backend, and the CPU backend on this machine's cores for the ratio.
    The CPU runs fewer control steps at large env counts (about `cpu_env_steps` env-steps, at least 10 steps):
    its rate barely depends on the count, and its raw rollout holds every step's state in memory."""
    scene = build_scene(scene_config or SceneConfig())
    rows = []
    for envs in env_counts:
        result = bench_sim(envs=envs, steps=steps, threads=threads, backend=backend, device=device, scene=scene)
        cpu_steps = min(steps, max(10, cpu_env_steps // envs))
        cpu = bench_sim(envs=envs, steps=cpu_steps, threads=threads, scene=scene) if backend != "cpu" else result
        rows.append({
            "envs": envs,
            "backend": backend,
            "device": result.device,
            "batched_env_steps_per_s": result.batched_env_steps_per_s,
            "raw_env_steps_per_s": result.raw_physics_steps_per_s / result.substeps,
            "batched_over_raw": result.ratio,
            "cpu_threads": cpu.threads,
            "cpu_control_steps": cpu.control_steps,
            "cpu_batched_env_steps_per_s": cpu.batched_env_steps_per_s,
            "cpu_raw_env_steps_per_s": cpu.raw_physics_steps_per_s / cpu.substeps,
            "speedup_vs_cpu": result.batched_env_steps_per_s / cpu.batched_env_steps_per_s,
        })
    return rows
