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


def push_over(env: TrackingEnv, ids: Tensor, seconds: float = 2.5, push_speed: tuple[float, float] = (2.0, 4.0),
              spin: float = 3.0, generator: torch.Generator | None = None) -> None:
    """Push envs `ids` over where they stand (a random horizontal velocity and spin) and let the physics run for
    `seconds` with every env's PD targets held at its pose when pushed (the others stand held too). Their
    reference frames do not move."""
    g = generator or torch.Generator().manual_seed(0)
    n = len(ids)
    backend = env.sim.backend
    dev_ids = ids.to(env.device)
    qpos, qvel = backend.qpos()[dev_ids].clone(), backend.qvel()[dev_ids].clone()
    angle = 2 * torch.pi * torch.rand(n, generator=g)
    speed = push_speed[0] + (push_speed[1] - push_speed[0]) * torch.rand(n, generator=g)
    push = torch.stack([angle.cos(), angle.sin(), torch.zeros(n)], -1) * speed[:, None]
    qvel[:, 0:3] += push.to(qvel)
    qvel[:, 3:6] += (spin * (2 * torch.rand(n, 3, generator=g) - 1)).to(qvel)
    backend.reset(dev_ids, qpos, qvel)
    hold = env.current_dof_pos().to(torch.float64).clone()
    for _ in range(max(1, round(seconds / env.dt))):
        env.sim.step(targets=hold)
    env.prev = None  # the state moved under the env: read it afresh


def make_fallen_starts(env: TrackingEnv, seconds: float = 2.5, push_speed: tuple[float, float] = (2.0, 4.0),
                       spin: float = 3.0, generator: torch.Generator | None = None) -> FallenStarts:
    """Push every env of `env` over from a random clip frame and let it fall for `seconds`; -> the states that ended
    fallen (a batch of up to `env.num_envs`). PD targets stay at each env's pose when pushed, so the body falls as
    a loosely held whole."""
    env.reset()
    clip_ids, frames = env.clip_ids.clone(), env.frame.clone()
    push_over(env, torch.arange(env.num_envs), seconds, push_speed, spin, generator)
    state = env.sim.state()
    torso = env.groups.torso[0]
    height, rot = state.root_pos[:, 2].cpu(), state.body_rot[:, torso].cpu()
    fallen = is_fallen(height, rot) & torch.isfinite(state.root_pos).all(-1).cpu()
    keep = fallen.nonzero().flatten()
    states = env.reset_state_of(state)
    rows = ResetState(*[getattr(states, f)[keep] for f in ResetState.__dataclass_fields__])
    return FallenStarts(states=rows, clip_ids=clip_ids[keep], frames=frames[keep], pelvis_height=height[keep],
                        tilt=torso_tilt(rot)[keep])
