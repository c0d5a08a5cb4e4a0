"""Object-dynamics tests of the contact-label inference (`interprior.data.contacts`): is the object airborne,
static, pushed by something other than gravity or sliding friction (conditions (i) and (ii) of the object flag)."""

from __future__ import annotations

import torch
from torch import Tensor

from interprior.data.contact_config import DEFAULT_CONFIG, ContactConfig
from interprior.data.contact_geometry import object_points_z

GRAVITY = 9.81


def second_difference(x: Tensor, fps: float) -> Tensor:
    """Accelerations [T, ...] by central second differences (edge frames copy their neighbour)."""
    if x.shape[0] < 3:
        return torch.zeros_like(x)
    acc = torch.empty_like(x)
    acc[1:-1] = (x[2:] - 2.0 * x[1:-1] + x[:-2]) * fps * fps
    acc[0], acc[-1] = acc[1], acc[-2]
    return acc


def object_dynamics(obj_pos: Tensor, obj_rot: Tensor, points: Tensor, ground_z: float, fps: float,
                    config: ContactConfig = DEFAULT_CONFIG) -> dict[str, Tensor]:
    """Per-frame bool [T] tests on the object track alone: `airborne`, `static`, and the interaction conditions
    `airborne_force` (i) and `ground_push` (ii) of the module docstring."""
    cfg = config
    pos = obj_pos.double()
    num_frames = pos.shape[0]
    low = object_points_z(obj_pos, obj_rot, points).amin(dim=1)
    airborne = (low - ground_z) > cfg.airborne_height
    step = torch.zeros(num_frames, dtype=torch.float64)
    if num_frames > 1:
        step[1:] = (pos[1:] - pos[:-1]).norm(dim=-1)
        step[0] = step[1]
    static = step < cfg.static_step
    acc = second_difference(pos, fps)
    g = torch.tensor([0.0, 0.0, -GRAVITY], dtype=torch.float64)
    airborne_force = airborne & ((acc - g).norm(dim=-1) > cfg.free_fall_tolerance)
    vel = torch.zeros_like(pos)
    if num_frames > 1:
        vel[1:-1] = (pos[2:] - pos[:-2]) * (fps / 2.0)
        vel[0], vel[-1] = (pos[1] - pos[0]) * fps, (pos[-1] - pos[-2]) * fps
    vh = vel[:, :2]
    speed = vh.norm(dim=-1, keepdim=True)
    # sliding friction alone decelerates the object by mu*g against its horizontal velocity
    friction_acc = torch.where(speed > 1e-6, -cfg.friction * GRAVITY * vh / speed.clamp_min(1e-6),
                               torch.zeros_like(vh))
    residual = (acc[:, :2] - friction_acc).norm(dim=-1)
    ground_push = (~airborne) & (~static) & (residual > cfg.friction_tolerance)
    if not cfg.use_ground_test:
        ground_push = torch.zeros_like(ground_push)
    return {"airborne": airborne, "static": static, "airborne_force": airborne_force, "ground_push": ground_push}
