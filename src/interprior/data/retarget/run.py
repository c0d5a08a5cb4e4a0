"""`interprior data retarget`: human clips (SMPL-X, InterMimic files) to G1 motion files, clip by clip.

DIR2/clips/<name>.pt are `interprior-motion-1` files of the G1 (`save_clip` with `clip.body` set), DIR2/objects
a copy of the source's objects, DIR2/retarget.json the source, the options and per clip its figures
(`checks`). Contact labels: each G1 body takes those of its nearest SMPL-X analogues (`robot.contact_sources`);
the object flag is the source's.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from interprior.assets.kinematics import KinematicTree
from interprior.assets.objects import find_object_mesh, read_mesh
from interprior.data.clip import Clip
from interprior.data.intermimic import load_clip, save_clip
from interprior.data.retarget.checks import RETARGET_LIMITS, by_group, clip_figures, over_limits, summarize
from interprior.data.retarget.ik import G1IK, Weights
from interprior.data.retarget.outdir import GENERATOR, MANIFEST, copy_objects, prepare_out, source_folders
from interprior.data.retarget.robot import Robot, g1_robot, map_contact_labels
from interprior.data.retarget.surface import SurfaceDistance
from interprior.data.retarget.targets import BLEND_FRAMES, HOLD_DISTANCE, LIFT_MIN, PLANT_SPEED, Targets, build_targets
from interprior.data.synth.threads import single_threaded
from interprior.data.validate import count_by_severity, validate_clip
from interprior.errors import DataFileError, InterpriorError
from interprior.files import atomic_write_text

EMBODIMENTS = ("g1",)  # the bodies clips can be retargeted to


@dataclass
class RetargetOptions:
    source: Path
    out: Path
    embodiment: str = "g1"
    check: bool = False
    force: bool = False


@dataclass
class RetargetResult:
    rows: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    seconds: float = 0.0
    over_limits: list[str] = field(default_factory=list)


def robot_for(name: str) -> Robot:
    """The target body (InterpriorError naming --embodiment when unknown or not fetched)."""
    if name not in EMBODIMENTS:
        raise InterpriorError(f"--embodiment: cannot retarget to {name!r}; choose from {', '.join(EMBODIMENTS)}")
    try:
        return g1_robot()
    except InterpriorError as err:
        raise InterpriorError(f"--embodiment {name}: {err}") from None


@lru_cache(maxsize=4)
def _tree(robot: Robot) -> KinematicTree:
    return KinematicTree.of_body(robot.body)


def g1_clip(source: Clip, tg: Targets, qpos: np.ndarray, robot: Robot) -> Clip:
    """The G1 clip of solved configurations `qpos` [T, 36] (bodies by the G1's forward kinematics)."""
    q = torch.from_numpy(qpos)
    body_pos, body_rot = _tree(robot).forward(q[:, :3], q[:, 3:7], q[:, 7:])
    t = source.num_frames
    return Clip(name=source.name, fps=source.fps, root_pos=body_pos[:, 0].float(), root_rot=body_rot[:, 0].float(),
                dof_expmap=torch.zeros(t, 3 * (robot.body.num_bodies - 1)), body_pos=body_pos.float(),
                body_rot=body_rot.float(), obj_pos=torch.from_numpy(tg.obj_pos).float(),
                obj_rot=torch.from_numpy(tg.obj_rot).float(), obj_contact=source.obj_contact.clone(),
                contact=map_contact_labels(source.contact, robot), subject=source.subject,
                object_name=source.object_name, body=robot.body.name,
                notes=[f"retargeted from {source.source} by {GENERATOR} (scale {tg.scale:.4f})"])


def retarget_clip(source: Clip, mesh: SurfaceDistance, robot: Robot) -> tuple[Clip, Targets]:
    """One human clip of the object `mesh` -> its G1 clip (and the targets it was solved for)."""
    tg = build_targets(source, mesh, robot)
    return g1_clip(source, tg, G1IK(robot).solve(tg), robot), tg


def _meshes(clips: list[Clip], objects: Path) -> dict[str, SurfaceDistance]:
    names = sorted({c.object_name for c in clips if c.object_name})
    missing = [c.name for c in clips if not c.object_name]
    if missing:
        raise InterpriorError(f"DIR: cannot tell the object of clip {missing[0]} (file names end in "
                              "_<object>_<NNN>.pt)")
    try:
        return {n: SurfaceDistance.from_mesh(read_mesh(find_object_mesh(objects, n))) for n in names}
    except DataFileError as err:
        raise InterpriorError(f"DIR: {err}") from None


def _skills(source: Path) -> dict[str, str]:
    """Clip -> skill, from a synthetic set's synth.json (empty for other data)."""
    try:
        rows = json.loads((source / "synth.json").read_text()).get("rows", [])
        return {r["clip"]: r["skill"] for r in rows if isinstance(r, dict) and "skill" in r}
    except (OSError, ValueError, KeyError, AttributeError):
        return {}


def _row(source: Clip, out: Clip, tg: Targets, path: Path, mesh: SurfaceDistance, robot: Robot,
         seconds: float) -> dict:
    lowered = 100.0 * float(np.abs(tg.obj_pos[:, 2] - source.obj_pos.double().numpy()[:, 2]).max())
    return {"clip": source.name, "source": str(source.source), "file": str(path), "object": source.object_name,
            "frames": out.num_frames, "seconds": round(out.duration, 2), "scale": round(tg.scale, 4),
            "object_lowered_cm": round(lowered, 2), "solve_seconds": round(seconds, 2),
            "figures": clip_figures(out, mesh, robot), "validation": count_by_severity(validate_clip(out))}


def options_record(opts: RetargetOptions) -> dict:
    return {"embodiment": opts.embodiment, "check": opts.check, "force": opts.force, "ik": "mink (daqp)",
            "weights": asdict(Weights()), "plant_speed_m_s": PLANT_SPEED, "lift_min_m": LIFT_MIN,
            "blend_frames": BLEND_FRAMES, "hold_distance_m": HOLD_DISTANCE, "limits": RETARGET_LIMITS}


def retarget_dir(opts: RetargetOptions, progress=None) -> RetargetResult:
    """Retarget every clip of `opts.source` into `opts.out`; `progress(row)` after each clip."""
    robot = robot_for(opts.embodiment)
    paths, objects = source_folders(opts.source)
    clips = [load_clip(p) for p in paths]
    meshes = _meshes(clips, objects)
    out = prepare_out(opts.out, opts.source, opts.force)
    start = time.perf_counter()
    manifest = {"generator": GENERATOR, "source": str(opts.source), "options": options_record(opts)}
    atomic_write_text(out / MANIFEST, json.dumps({**manifest, "complete": False,
                                                  "planned": [c.name for c in clips]}, indent=2))
    copy_objects(objects, out)
    skills, result = _skills(Path(opts.source)), RetargetResult()
    with single_threaded():
        for source in clips:
            began = time.perf_counter()
            g1, tg = retarget_clip(source, meshes[source.object_name], robot)
            path = out / "clips" / f"{source.name}.pt"
            save_clip(g1, path)
            row = _row(source, g1, tg, path, meshes[source.object_name], robot, time.perf_counter() - began)
            if source.name in skills:
                row["skill"] = skills[source.name]
            result.rows.append(row)
            if progress:
                progress(row)
    result.seconds = time.perf_counter() - start
    result.summary = summarize(result.rows)
    result.summary["validation_errors"] = sum(r["validation"]["error"] for r in result.rows)
    if any("skill" in r for r in result.rows):
        result.summary["per_skill"] = by_group(result.rows, "skill")
    result.over_limits = over_limits(result.summary) + (["validation_errors"] * bool(
        result.summary["validation_errors"]))
    atomic_write_text(out / MANIFEST, json.dumps({**manifest, "complete": True, "seconds": round(result.seconds, 1),
                                                  "rows": result.rows, "check": result.summary,
                                                  "over_limits": result.over_limits}, indent=2))
    return result
