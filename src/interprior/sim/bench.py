"""Simulator throughput: the batched simulator with full state extraction vs raw MuJoCo stepping of the same
scene (one `mujoco.rollout` call over all steps, same envs and threads), measured in one run."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import mujoco
import numpy as np
import torch
from mujoco import rollout

from interprior import schema
from interprior.assets.scene import Scene, SceneConfig, build_scene
from interprior.sim.batched import BatchedSim, ResetState
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

    def as_dict(self) -> dict:
        return asdict(self)


def standing_reset(scene: Scene, n: int) -> ResetState:
    """Zero pose standing on the floor, objects (if any) resting 0.6 m in front of the humanoid."""
    from interprior.assets.scene import standing_pelvis_height

    h = standing_pelvis_height(scene.model) + 0.005
    k = scene.layout.num_objects
    d = scene.variant.num_dofs
    z3 = torch.zeros(n, 3, dtype=torch.float64)
    obj_pos = torch.zeros(n, k, 3, dtype=torch.float64)
    obj_rot = torch.zeros(n, k, 4, dtype=torch.float64)
    obj_rot[..., 0] = 1.0
    for i, asset in enumerate(scene.config.objects):
        obj_pos[:, i, 0] = 0.6 + 0.5 * float(np.max(asset.extents[:2]))
        obj_pos[:, i, 2] = 0.5 * float(asset.extents[2]) + 0.01
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
    actions = 0.1 * torch.randn(steps, n, scene.variant.num_dofs, generator=g, dtype=torch.float64)
    return offset + scale * actions.clamp(-1, 1)


def bench_sim(envs: int = 64, steps: int = 100, scene_config: SceneConfig | None = None,
              threads: int | None = None, warmup: int = 5) -> SimBenchResult:
    scene = build_scene(scene_config or SceneConfig())
    sub = scene.config.substeps
    targets = random_targets(scene, envs, steps + warmup)
    # Batched simulator with full state extraction after every control step.
    backend = MujocoCpuBackend(scene.model, envs, sub, nthread=threads)
    sim = BatchedSim(scene, backend)
    sim.reset(torch.arange(envs), standing_reset(scene, envs))
    for k in range(warmup):
        sim.step(targets=targets[k])
        sim.state()
    start_state = backend._state.copy()
    t0 = time.perf_counter()
    for k in range(warmup, warmup + steps):
        sim.step(targets=targets[k])
        sim.state()
    batched = time.perf_counter() - t0
    backend.close()
    # Raw stepping: same initial states and PD targets, one rollout call, nothing extracted.
    ctrl = np.repeat(targets[warmup:].permute(1, 0, 2).numpy(), sub, axis=1)  # [envs, steps*sub, D]
    datas = [mujoco.MjData(scene.model) for _ in range(backend.nthread)]
    with rollout.Rollout(nthread=backend.nthread) as pool:
        t0 = time.perf_counter()
        pool.rollout([scene.model] * envs, datas, start_state, ctrl)
        raw = time.perf_counter() - t0
    physics_steps = envs * steps * sub
    return SimBenchResult(
        envs=envs, control_steps=steps, substeps=sub, threads=backend.nthread, variant=scene.variant.name,
        objects=[a.name for a in scene.config.objects],
        batched_env_steps_per_s=envs * steps / batched,
        batched_physics_steps_per_s=physics_steps / batched,
        raw_physics_steps_per_s=physics_steps / raw,
        ratio=raw / batched,
    )
