"""Kinematic and physics replay of a clip: the data check and the no-policy baseline every policy must beat."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import mujoco
import numpy as np
import torch

from interprior import schema
from interprior.assets.embodiment import Embodiment
from interprior.assets.humanoid import SMPLX, joint_ranges
from interprior.assets.objects import load_object
from interprior.assets.scene import Scene, SceneConfig, build_scene
from interprior.data.clip import Clip
from interprior.data.convert import ClipMotion
from interprior.data.skeleton import fit_skeleton
from interprior.mdp.metrics import body_position_error, object_point_error
from interprior.rotations import quat_angle, quat_conj, quat_mul
from interprior.sim.batched import BatchedSim
from interprior.sim.mujoco_cpu import MujocoCpuBackend

SKELETONS = ("fitted", "default")
INCONSISTENT_TOLERANCE = 0.01  # m: a body whose bone offset varies more than this contradicts the rotations


def scene_for_clip(clip: Clip, objects_dir: str | Path | None, skeleton: str = "fitted",
                   body: Embodiment = SMPLX, **overrides) -> tuple[Scene, list[str]]:
    """Scene with the clip's object (when objects_dir is given) and the chosen skeleton.
    Returns the scene and the bodies that contradict the file's own rotations (excluded from fitted errors)."""
    if skeleton not in SKELETONS:
        raise ValueError(f"skeleton must be one of {SKELETONS}, got {skeleton!r}")
    fitted = fit_skeleton(clip.body_pos, clip.body_rot, body.parents)
    offsets = tuple(map(tuple, fitted.offsets.tolist())) if skeleton == "fitted" else None
    objects = ()
    if objects_dir is not None and clip.object_name:
        objects = (load_object(objects_dir, clip.object_name),)
    cfg = SceneConfig(body=body, offsets=offsets, objects=objects, **overrides)
    return build_scene(cfg), fitted.inconsistent_bodies(INCONSISTENT_TOLERANCE, body.body_names)


@dataclass
class KinematicReport:
    clip: str
    skeleton: str
    frames: int
    body_error_mean_cm: float
    body_error_max_cm: float
    inconsistent_bodies: list[str]
    consistent_error_mean_cm: float  # over bodies that agree with the file's rotations
    consistent_error_max_cm: float
    worst_body: str
    object_pos_error_mm: float | None
    object_rot_error_deg: float | None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def kinematic_replay(clip: Clip, objects_dir=None, skeleton: str = "fitted") -> tuple[KinematicReport, Scene, np.ndarray]:
    """Set the clip's poses into MuJoCo frame by frame; compare MuJoCo's body positions with the file's."""
    scene, bad = scene_for_clip(clip, objects_dir, skeleton)
    model = scene.model
    data = mujoco.MjData(model)
    motion = ClipMotion(clip)
    qpos = motion.qpos(scene.layout, model.nq).numpy()
    ids = scene.layout.humanoid_body_ids
    body_err = np.zeros((clip.num_frames, schema.NUM_BODIES))
    obj_pos_err, obj_rot_err = [], []
    for t in range(clip.num_frames):
        data.qpos[:] = qpos[t]
        mujoco.mj_kinematics(model, data)
        body_err[t] = np.linalg.norm(data.xpos[ids] - clip.body_pos[t].double().numpy(), axis=-1)
        for b in scene.layout.object_body_ids:
            obj_pos_err.append(np.linalg.norm(data.xpos[b] - clip.obj_pos[t].double().numpy()))
            dq = quat_mul(torch.from_numpy(data.xquat[b].copy()), quat_conj(clip.obj_rot[t].double()))
            obj_rot_err.append(float(quat_angle(dq)))
    ok = [i for i in range(schema.NUM_BODIES) if schema.BODY_NAMES[i] not in bad]
    cm = body_err * 100.0
    has_obj = len(obj_pos_err) > 0
    report = KinematicReport(
        clip=clip.name, skeleton=skeleton, frames=clip.num_frames,
        body_error_mean_cm=float(cm.mean()), body_error_max_cm=float(cm.max()),
        inconsistent_bodies=bad,
        consistent_error_mean_cm=float(cm[:, ok].mean()), consistent_error_max_cm=float(cm[:, ok].max()),
        worst_body=schema.BODY_NAMES[int(cm.max(axis=0).argmax())],
        object_pos_error_mm=float(np.max(obj_pos_err) * 1000.0) if has_obj else None,
        object_rot_error_deg=float(np.degrees(np.max(obj_rot_err))) if has_obj else None,
        notes=list(clip.notes),
    )
    return report, scene, qpos


@dataclass
class PhysicsReport:
    clip: str
    skeleton: str
    variant: str
    frames: int
    frames_simulated: int
    fell: bool
    frames_before_fall: int  # control frames until the pelvis dropped below 0.3 m (all frames if it never did)
    e_h_cm: float  # mean key-body position error over the simulated frames
    e_o_cm: float | None  # mean object surface-point error over the simulated frames

    def as_dict(self) -> dict:
        return asdict(self)


def physics_replay(clip: Clip, objects_dir=None, skeleton: str = "fitted",
                   body: Embodiment = SMPLX, stop_on_fall: bool = True,
                   record: bool = False) -> tuple[PhysicsReport, Scene, np.ndarray | None]:
    """Start from the clip's first frame (pose and velocities) and drive the PD targets with the reference
    joint angles of the next frame, no policy. Measures how long the humanoid stays up and how far the human
    (E_h, key bodies) and the object (E_o, surface points) drift from the reference."""
    scene, _ = scene_for_clip(clip, objects_dir, skeleton, body)
    backend = MujocoCpuBackend(scene.model, num_envs=1, substeps=scene.config.substeps, nthread=1)
    sim = BatchedSim(scene, backend, out_dtype=torch.float64)
    motion = ClipMotion(clip, body)
    k = scene.layout.num_objects
    sim.reset(torch.tensor([0]), motion.reset_state(torch.tensor([0]), body, k))
    lo_hi = torch.from_numpy(joint_ranges(body)[list(body.dof_index)])
    dof = list(body.dof_index)
    key = body.resolved.key
    points = sim.object_points
    frames = [backend.qpos()[0].clone().numpy()] if record else None
    e_h, e_o = [], []
    fell_at = None
    for t in range(1, clip.num_frames):
        target = motion.wrapped_angles(t)[dof].clamp(lo_hi[:, 0], lo_hi[:, 1])
        sim.step(targets=target[None])
        state = sim.state()
        if record:
            frames.append(backend.qpos()[0].clone().numpy())
        e_h.append(float(body_position_error(state.body_pos[:1], motion.body_pos[t:t + 1], key)))
        if k:
            e_o.append(float(object_point_error(state.obj_pos[:1, 0], state.obj_rot[:1, 0], motion.obj_pos[t:t + 1],
                                                motion.obj_rot[t:t + 1], points)))
        if fell_at is None and float(state.root_pos[0, 2]) < body.fall_height:
            fell_at = t
            if stop_on_fall:
                break
    backend.close()
    simulated = len(e_h)
    report = PhysicsReport(
        clip=clip.name, skeleton=skeleton, variant=body.name, frames=clip.num_frames,
        frames_simulated=simulated, fell=fell_at is not None,
        frames_before_fall=fell_at if fell_at is not None else clip.num_frames,
        e_h_cm=100.0 * float(np.mean(e_h)) if e_h else 0.0,
        e_o_cm=100.0 * float(np.mean(e_o)) if e_o else None,
    )
    return report, scene, (np.stack(frames) if record else None)
