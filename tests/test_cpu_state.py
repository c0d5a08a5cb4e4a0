"""CPU state extraction (numpy + MuJoCo's C kinematics, `sim.cpu_state`) equals the torch path field by field."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch

from interprior.assets.bodies import embodiment
from interprior.assets.scene import SceneConfig, build_scene
from interprior.sim.batched import BatchedSim, SimState
from interprior.sim.bench import random_targets, standing_reset
from interprior.sim.mujoco_cpu import MujocoCpuBackend


def _assert_same(a: SimState, b: SimState, tol: float = 1e-9) -> None:
    for f in fields(SimState):
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert x.shape == y.shape and x.dtype == y.dtype, f.name
        if x.dtype == torch.bool:
            assert torch.equal(x, y), f.name
        else:
            assert (x - y).abs().max().item() <= tol if x.numel() else True, (f.name, (x - y).abs().max())


def test_cpu_state_matches_torch_kinematics_full_humanoid():
    scene = build_scene(SceneConfig(body=embodiment("full")))
    n = 3
    sim = BatchedSim(scene, MujocoCpuBackend(scene.model, n, scene.config.substeps, nthread=1), torch.float64)
    sim.reset(torch.arange(n), standing_reset(scene, n))
    targets = random_targets(scene, n, 12, seed=1)
    for t in targets:
        sim.step(targets=t)
    assert sim.cpu_reader is not None
    _assert_same(sim._state_cpu(None), sim._state_torch(None))
    ids = torch.tensor([2, 0])
    _assert_same(sim._state_cpu(ids), sim._state_torch(ids))


@pytest.fixture(scope="module")
def mixed(synth_data):
    return [synth_data.clips(name, shortest=1)[0] for name in ("box", "cylinder")]


def test_cpu_state_matches_torch_path_with_objects_and_contacts(mixed, synth_data):
    from interprior.envs.tracking import TrackingConfig, TrackingEnv

    cfg = TrackingConfig(num_envs=4, action_mode="residual", init="start", init_noise_pos=0.0, init_noise_rot=0.0,
                         perturb_prob=0.0, psi_slots=1, threads=1)
    env = TrackingEnv(mixed, synth_data.objects_dir, cfg)
    env.reset_to(torch.arange(4), torch.tensor([1, 0, 0, 1]), torch.tensor([0, 10, 40, 60]))
    for _ in range(15):
        env.step(torch.zeros(4, env.act_dim))
    sim = env.sim
    sim.out_dtype = torch.float64
    a, b = sim._state_cpu(None), sim._state_torch(None)
    assert a.ground_contact.any()  # feet on the floor: the contact fields are exercised
    _assert_same(a, b)
    ids = torch.tensor([3, 1])
    _assert_same(sim._state_cpu(ids), sim._state_torch(ids))
    sim.out_dtype = torch.float32
    _assert_same(sim._state_cpu(None), sim._state_torch(None), tol=1e-6)
    assert sim.state().body_pos.dtype == torch.float32
