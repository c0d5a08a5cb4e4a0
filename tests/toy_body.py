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


def write_clips(clips: list[Clip], folder):
    """Motion files of `clips` in `folder` (created); returns the folder (a Path)."""
    from pathlib import Path

    from interprior.data.intermimic import save_clip

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for clip in clips:
        save_clip(clip, folder / f"{clip.name}.pt")
    return folder


def tiny_body_expert(name: str, clips_dir, objects_dir, out, train: bool = True):
    """A tiny expert of body `name` on the box clips in `clips_dir`: three PPO iterations (seconds) unless not
    `train`; returns the trainer."""
    import dataclasses

    from interprior.train.expert import DataSelection, ExpertConfig, ExpertTrainer, cpu_preset

    cfg = cpu_preset(ExpertConfig())
    cfg.data = DataSelection(data=str(clips_dir), objects=str(objects_dir), object_name="box")
    cfg.env = dataclasses.replace(cfg.env, num_envs=4, variant=name, psi_slots=2, psi_update_prob=1.0)
    cfg.ppo.horizon, cfg.ppo.minibatch_size, cfg.ppo.epochs = 8, 16, 2
    cfg.model.hidden = (32, 32)
    cfg.total_samples = 96
    trainer = ExpertTrainer(cfg, out)
    if train:
        trainer.train(bench=False)
    return trainer


def tiny_body_prior(expert, out):
    """A tiny Stage II prior distilled from `expert` (a trainer of `tiny_body_expert`) in a few seconds; returns
    the distiller after training."""
    import dataclasses

    from prior_fixtures import TINY

    from interprior.models.prior import PriorModelConfig
    from interprior.train.distill import DistillConfig, PriorDistiller
    from interprior.train.distill import cpu_preset as prior_preset

    prior = prior_preset(DistillConfig())
    prior.expert, prior.data = str(expert.run.root), expert.cfg.data
    prior.env = dataclasses.replace(expert.cfg.env, psi_slots=1, episode_length=4)
    prior.model = PriorModelConfig(**TINY)
    prior.optim.horizon, prior.optim.epochs, prior.optim.minibatches = 6, 1, 2
    prior.total_samples, prior.torch_threads = 24, 1
    distiller = PriorDistiller(prior, out)
    distiller.train()
    return distiller
