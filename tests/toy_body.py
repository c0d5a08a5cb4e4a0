"""The toy body's clips: kinematic motions of `embodiment("toy")` made by its own forward kinematics, with an
object of the synthetic data set resting in front of it. Nothing here is SMPL-X."""

from __future__ import annotations

import math

import torch

from interprior.assets.embodiment import embodiment
from interprior.assets.humanoid import default_offsets
from interprior.assets.kinematics import KinematicTree
from interprior.assets.objects import load_object
from interprior.assets.scene import SceneConfig, build_scene, standing_pelvis_height
from interprior.data.clip import Clip

TOY = embodiment("toy")


def toy_clips(objects_dir, count: int = 2, frames: int = 45, object_name: str = "box") -> list[Clip]:
    """`count` clips of the toy body swaying its arms and stepping slowly forward beside a resting object."""
    body = TOY
    tree = KinematicTree.from_offsets(default_offsets(body), parents=body.parents)
    height = standing_pelvis_height(build_scene(SceneConfig(body=body)).model, body.num_bodies) + 0.005
    points = torch.as_tensor(load_object(objects_dir, object_name).surface_points, dtype=torch.float64)
    t = torch.arange(frames, dtype=torch.float64) / 30.0
    clips = []
    for i in range(count):
        angles = torch.zeros(frames, body.num_full_dofs, dtype=torch.float64)
        phase = 2.0 * math.pi * (0.5 + 0.25 * i) * t
        for name, amplitude in (("arm_l", 0.4), ("arm_r", -0.4), ("hand_l", 0.3), ("hand_r", -0.3)):
            angles[:, 3 * (body.body_index[name] - 1) + 2] = amplitude * torch.sin(phase)  # about z: swing
        root_pos = torch.stack([0.05 * (i + 1) * t, torch.zeros_like(t), torch.full_like(t, height)], -1)
        root_rot = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64).expand(frames, 4)
        body_pos, body_rot = tree.forward(root_pos, root_rot, angles)
        obj_pos = torch.tensor([0.9, 0.0, 0.002 - float(points[:, 2].min())], dtype=torch.float64).expand(frames, 3)
        clips.append(Clip(
            name=f"sub0_{object_name}_{i:03d}", fps=30.0, root_pos=root_pos.float(), root_rot=root_rot.float(),
            dof_expmap=torch.zeros(frames, body.num_full_dofs), body_pos=body_pos.float(), body_rot=body_rot.float(),
            obj_pos=obj_pos.float(), obj_rot=root_rot.float(), obj_contact=torch.zeros(frames),
            contact=-torch.ones(frames, body.num_bodies), subject="sub0", object_name=object_name, body=body.name,
        ))
    return clips
