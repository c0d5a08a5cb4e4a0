"""`interprior replay`: kinematic or physics replay of clips, with metrics and an optional video."""

from __future__ import annotations

import sys
from pathlib import Path

from interprior import schema
from interprior.assets.bodies import embodiment
from interprior.data.convert import object_points_world
from interprior.data.intermimic import list_clips, load_clip
from interprior.eval.replay import kinematic_replay, physics_replay
from interprior.report import Column, format_table, to_json
from interprior.viz.video import check_outputs


def register(sub) -> None:
    p = sub.add_parser(
        "replay",
        help="replay clips kinematically (data check) or in physics (no-policy baseline)",
        description="Kinematic replay sets each frame's pose in MuJoCo and reports the body-position error of "
        "forward kinematics against the file's body positions (cm) and object pose agreement. Physics replay "
        "(--physics) starts from the first frame and drives the PD targets with the reference joint angles, no "
        "policy: it reports frames before the pelvis drops below 0.3 m, E_h (cm, key bodies) and E_o (cm, object "
        "surface points). CLIP may be a .pt file or a folder of them (one table row per clip).",
    )
    p.add_argument("clip", help="InterMimic-format clip (.pt) or a folder of clips")
    p.add_argument("--objects", default=None, help="objects folder with <name>/<name>.obj (needed for the object)")
    p.add_argument("--physics", action="store_true", help="simulate with PD targets from the reference")
    p.add_argument("--skeleton", choices=["fitted", "default"], default="fitted",
                   help="fitted: bone offsets from the clip itself (default); default: the spec's shape")
    p.add_argument("--variant", choices=sorted(schema.VARIANTS), default="full", help="humanoid variant (physics)")
    p.add_argument("--video", default=None,
                   help="write an MP4 (for a folder of clips: a directory receiving one MP4 per clip)")
    p.add_argument("--force", action="store_true", help="overwrite existing --video files (checked before replaying)")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    paths = list_clips(args.clip)
    folder = Path(args.clip).is_dir()
    videos = {path: Path(args.video) / f"{path.stem}.mp4" if folder else Path(args.video) for path in paths} \
        if args.video else {}
    check_outputs(videos.values(), "--video", force=args.force)  # before the work, not after it
    rows = []
    for path in paths:
        clip = load_clip(path)
        video = videos.get(path)
        if args.physics:
            report, scene, qpos = physics_replay(
                clip, args.objects, args.skeleton, embodiment(args.variant), record=video is not None
            )
        else:
            report, scene, qpos = kinematic_replay(clip, args.objects, args.skeleton)
        row = report.as_dict()
        if video is not None:
            _write_video(video, scene, clip, qpos)
            row["video"] = str(video)
        rows.append(row)
        if not args.json:
            _print_row(row, args.physics, header=len(rows) == 1)
    if args.json:
        print(to_json(rows if folder else rows[0]))
    elif len(rows) > 1:
        _print_summary(rows, args.physics)
    return 0


def _write_video(path: Path, scene, clip, qpos) -> None:
    import torch

    from interprior.viz.render import write_video

    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(qpos)
    markers = [(clip.body_pos[:n].double().numpy(), (0.1, 0.9, 0.2, 0.55), 0.025)]
    if scene.layout.num_objects:
        pts = torch.as_tensor(scene.config.objects[0].surface_points[::16], dtype=torch.float64)
        ref = object_points_world(clip.obj_pos[:n].double(), clip.obj_rot[:n].double(), pts)
        markers.append((ref.numpy(), (0.95, 0.55, 0.1, 0.6), 0.012))
    write_video(path, scene.model, qpos, markers=markers, fps=clip.fps)
    print(f"video: {path}", file=sys.stderr)  # stderr: keeps --json output parseable


PHYSICS_COLUMNS = [Column("clip", "clip", width=32, align="<"), Column("frames", "frames", "d", 6),
                   Column("frames_before_fall", "upright", "d", 7), Column("fell", "fell", str, 5),
                   Column("e_h_cm", "E_h cm", "7.1f"), Column("e_o_cm", "E_o cm", "7.1f")]
KINEMATIC_COLUMNS = [Column("clip", "clip", width=32, align="<"), Column("frames", "frames", "d", 6),
                     Column("body_error_mean_cm", "mean cm", "8.3f"), Column("body_error_max_cm", "max cm", "8.3f"),
                     Column("consistent_error_mean_cm", "ok-mean", "8.3f"),
                     Column("consistent_error_max_cm", "ok-max", "8.3f"),
                     Column("object_pos_error_mm", "obj mm", "7.3f"),
                     Column("inconsistent_bodies", "inconsistent bodies", lambda v: ",".join(v) or "-", align="<",
                            sep="  ")]


def _print_row(row: dict, physics: bool, header: bool) -> None:
    """One row as it is measured (a folder's clips print as they finish), aligned by the columns' widths."""
    lines = format_table([row], PHYSICS_COLUMNS if physics else KINEMATIC_COLUMNS)
    print("\n".join(lines if header else lines[1:]))


def _print_summary(rows: list[dict], physics: bool) -> None:
    import numpy as np

    if physics:
        up = np.mean([r["frames_before_fall"] for r in rows])
        eh = np.mean([r["e_h_cm"] for r in rows])
        eo = [r["e_o_cm"] for r in rows if r["e_o_cm"] is not None]
        print(f"{len(rows)} clips: mean frames upright {up:.1f}, fell {sum(r['fell'] for r in rows)}/{len(rows)}, "
              f"E_h {eh:.1f} cm" + (f", E_o {np.mean(eo):.1f} cm" if eo else ""))
    else:
        print(f"{len(rows)} clips: worst mean {max(r['consistent_error_mean_cm'] for r in rows):.3f} cm, "
              f"worst max {max(r['consistent_error_max_cm'] for r in rows):.3f} cm over consistent bodies")
