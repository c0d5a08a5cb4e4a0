"""Fallen starts made in physics (Stage III, getting up): envs start at random clip frames, get a hard push (a
random horizontal velocity and a spin) or are dropped from a tilted pose, and are left to fall with their joints
held loosely at the pose they had; the states that end up fallen (`interprior.mdp.inbetween.is_fallen`: lying,
sitting, kneeling) become starts. No pose is written by hand."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from interprior.data.state import ResetState
from interprior.envs.tracking import TrackingEnv
from interprior.mdp.inbetween import is_fallen, torso_tilt


@dataclass
class FallenStarts:
    states: ResetState  # [n] fallen states
    clip_ids: Tensor  # [n] the clip each came from (its reference for later goals)
    frames: Tensor  # [n] the frame it started falling at
    pelvis_height: Tensor  # [n] m
    tilt: Tensor  # [n] rad, the torso's angle to upright


def make_fallen_starts(env: TrackingEnv, seconds: float = 2.5, push_speed: tuple[float, float] = (2.0, 4.0),
                       spin: float = 3.0, generator: torch.Generator | None = None) -> FallenStarts:
    """Push every env of `env` over and let it fall for `seconds`; -> the states that ended fallen (a batch of up
    to `env.num_envs`). PD targets stay at each env's pose when pushed, so the body falls as a loosely held
    whole."""
    g = generator or torch.Generator().manual_seed(0)
    n = env.num_envs
    env.reset()
    clip_ids, frames = env.clip_ids.clone(), env.frame.clone()
    backend = env.sim.backend
    qpos, qvel = backend.qpos().clone(), backend.qvel().clone()
    angle = 2 * torch.pi * torch.rand(n, generator=g)
    speed = push_speed[0] + (push_speed[1] - push_speed[0]) * torch.rand(n, generator=g)
    push = torch.stack([angle.cos(), angle.sin(), torch.zeros(n)], -1) * speed[:, None]
    qvel[:, 0:3] += push.to(qvel)
    qvel[:, 3:6] += (spin * (2 * torch.rand(n, 3, generator=g) - 1)).to(qvel)
    ids = torch.arange(n, device=env.device)
    backend.reset(ids, qpos, qvel)
    hold = env.current_dof_pos().to(torch.float64).clone()
    for _ in range(max(1, round(seconds / env.dt))):
        env.sim.step(targets=hold)
    state = env.sim.state()
    torso = env.groups.torso[0]
    height, rot = state.root_pos[:, 2].cpu(), state.body_rot[:, torso].cpu()
    fallen = is_fallen(height, rot) & torch.isfinite(state.root_pos).all(-1).cpu()
    keep = fallen.nonzero().flatten()
    states = env.reset_state_of(state)
    rows = ResetState(*[getattr(states, f)[keep] for f in ResetState.__dataclass_fields__])
    return FallenStarts(states=rows, clip_ids=clip_ids[keep], frames=frames[keep], pelvis_height=height[keep],
                        tilt=torso_tilt(rot)[keep])
