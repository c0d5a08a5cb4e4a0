"""Small built-in motions made from joint-angle keyframes on our own humanoid (no downloads, no licensed data).

`squat_clip` is what `interprior demo` replays until the full synthetic HOI generator exists.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from interprior import schema
from interprior.assets.humanoid import default_offsets
from interprior.assets.kinematics import KinematicTree
from interprior.assets.scene import build_scene, standing_pelvis_height
from interprior.data.clip import Clip
from interprior.rotations import quat_conj, quat_mul, quat_to_axis_angle


def clip_from_joint_angles(name: str, root_pos: torch.Tensor, root_rot: torch.Tensor, angles: torch.Tensor,
                           obj_pos: torch.Tensor, obj_rot: torch.Tensor, offsets=None, fps: float = 30.0) -> Clip:
    """Forward kinematics of [T, 153] hinge angles on the given skeleton -> a complete clip."""
    tree = KinematicTree.from_offsets(default_offsets() if offsets is None else offsets)
    body_pos, body_rot = tree.forward(root_pos.double(), root_rot.double(), angles.double())
    parents = list(schema.BODY_PARENTS[1:])
    local = quat_mul(quat_conj(body_rot[:, parents]), body_rot[:, 1:])
    t = angles.shape[0]
    return Clip(
        name=name, fps=fps, root_pos=root_pos.float(), root_rot=root_rot.float(),
        dof_expmap=quat_to_axis_angle(local).reshape(t, -1).float(),  # the file's exp-map convention
        body_pos=body_pos.float(), body_rot=body_rot.float(), obj_pos=obj_pos.float(), obj_rot=obj_rot.float(),
        obj_contact=torch.zeros(t), contact=torch.zeros(t, schema.NUM_BODIES),
        subject="synthetic", object_name=name.split("_")[-2] if name.count("_") >= 2 else None,
    )


def squat_clip(seconds: float = 4.0, depth: float = 0.6, fps: float = 30.0, box_size: float = 0.4) -> Clip:
    """Arms lower from the T-pose while the humanoid squats once; a box rests in front of it."""
    t = torch.arange(int(seconds * fps), dtype=torch.float64) / fps
    phase = 0.5 * (1.0 - torch.cos(2.0 * math.pi * t / seconds))  # 0 -> 1 -> 0
    arms = torch.clamp(t / 1.0, max=1.0)  # arms come down in the first second
    angles = torch.zeros(len(t), schema.NUM_DOFS, dtype=torch.float64)

    def set_dof(body: str, axis: int, values: torch.Tensor) -> None:
        angles[:, (schema.BODY_INDEX[body] - 1) * 3 + axis] = values

    set_dof("L_Shoulder", 0, -1.25 * arms)
    set_dof("R_Shoulder", 0, 1.25 * arms)
    for side in "LR":
        set_dof(f"{side}_Hip", 1, -depth * phase)
        set_dof(f"{side}_Knee", 1, 2.0 * depth * phase)
        set_dof(f"{side}_Ankle", 1, -depth * phase)
    set_dof("Torso", 1, -0.3 * depth * phase)  # lean forward a little to keep the centre of mass over the feet
    root_rot = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64).expand(len(t), 4)
    tree = KinematicTree.from_offsets(default_offsets())
    zero_pos, _ = tree.forward(torch.zeros(len(t), 3, dtype=torch.float64), root_rot, angles)
    ankle = [schema.BODY_INDEX["L_Ankle"], schema.BODY_INDEX["R_Ankle"]]
    # keep the ankles where they are when the zero pose stands on the floor: feet stay flat on the ground

    stand = standing_pelvis_height(build_scene().model)
    root_z = stand + (zero_pos[:1, ankle, 2] - zero_pos[:, ankle, 2]).mean(dim=1)
    root_pos = torch.stack([torch.zeros_like(t), torch.zeros_like(t), root_z], dim=-1)
    obj_pos = torch.tensor([[0.75, 0.0, box_size / 2]], dtype=torch.float64).expand(len(t), 3)
    return clip_from_joint_angles("synthetic_box_000", root_pos, root_rot, angles, obj_pos, root_rot, fps=fps)


def write_box_mesh(objects_dir: str | Path, name: str = "box", size: float = 0.4) -> Path:
    """A box mesh in the expected layout objects_dir/<name>/<name>.obj (vertex-mean centred)."""
    import trimesh

    path = Path(objects_dir) / name / f"{name}.obj"
    path.parent.mkdir(parents=True, exist_ok=True)
    trimesh.creation.box(extents=(size, size, size)).export(path)
    return path
