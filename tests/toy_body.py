"""Clips of bodies other than SMPL-X (the toy body, the G1): kinematic motions made by the body's own forward
kinematics, with an object of the synthetic data set resting in front of it."""

from __future__ import annotations

import math

import torch

from interprior.assets.bodies import embodiment
from interprior.assets.kinematics import KinematicTree
from interprior.assets.objects import load_object
from interprior.assets.scene import SceneConfig, build_scene, standing_pelvis_height
from interprior.data.clip import Clip

TOY = embodiment("toy")


def standing_clips(body, objects_dir, count: int = 2, frames: int = 45, object_name: str = "box",
                   pose: dict | None = None, swing: dict | None = None, height: float | None = None) -> list[Clip]:
    """`count` clips of `body` in `pose` (hinge name -> angle) swaying the `swing` hinges (name -> amplitude) and
    stepping slowly forward beside a resting object; its root at `height` (default: its zero pose's standing
    height), motion by its own forward kinematics."""
    tree = KinematicTree.of_body(body)
    if height is None:
        height = standing_pelvis_height(build_scene(SceneConfig(body=body)).model, body.num_bodies) + 0.005
    points = torch.as_tensor(load_object(objects_dir, object_name).surface_points, dtype=torch.float64)
    t = torch.arange(frames, dtype=torch.float64) / 30.0
    clips = []
    for i in range(count):
        angles = torch.zeros(frames, body.num_full_dofs, dtype=torch.float64)
        for name, angle in (pose or {}).items():
            angles[:, body.dof_names.index(name)] = angle
        phase = 2.0 * math.pi * (0.5 + 0.25 * i) * t
        for name, amplitude in (swing or {}).items():
            angles[:, body.dof_names.index(name)] += amplitude * torch.sin(phase)
        root_pos = torch.stack([0.05 * (i + 1) * t, torch.zeros_like(t), torch.full_like(t, height)], -1)
        root_rot = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64).expand(frames, 4)
        body_pos, body_rot = tree.forward(root_pos, root_rot, angles)
        obj_pos = torch.tensor([0.9, 0.0, 0.002 - float(points[:, 2].min())], dtype=torch.float64).expand(frames, 3)
        clips.append(Clip(
            name=f"sub0_{object_name}_{i:03d}", fps=30.0, root_pos=root_pos.float(), root_rot=root_rot.float(),
            dof_expmap=torch.zeros(frames, 3 * (body.num_bodies - 1)), body_pos=body_pos.float(),
            body_rot=body_rot.float(), obj_pos=obj_pos.float(), obj_rot=root_rot.float(),
            obj_contact=torch.zeros(frames), contact=-torch.ones(frames, body.num_bodies), subject="sub0",
            object_name=object_name, body=body.name,
        ))
    return clips


def toy_clips(objects_dir, count: int = 2, frames: int = 45, object_name: str = "box") -> list[Clip]:
    """The toy body swaying its arms about z."""
    swing = {"arm_l_z": 0.4, "arm_r_z": -0.4, "hand_l_z": 0.3, "hand_r_z": -0.3}
    return standing_clips(TOY, objects_dir, count, frames, object_name, swing=swing)


def g1_clips(objects_dir, count: int = 2, frames: int = 45, object_name: str = "box") -> list[Clip]:
    """The G1 at its knees-bent standing pose swinging its arms."""
    from interprior.assets.bodies import embodiment
    from interprior.assets.g1 import G1_DEFAULT_POSE, G1_ROOT_HEIGHT

    swing = {"left_shoulder_pitch_joint": 0.4, "right_shoulder_pitch_joint": -0.4}
    return standing_clips(embodiment("g1"), objects_dir, count, frames, object_name, pose=G1_DEFAULT_POSE,
                          swing=swing, height=G1_ROOT_HEIGHT)
