"""`interprior demo`: the built-in default job, no downloads and no licensed data.

Until trained policies ship, it writes a synthetic clip (humanoid squatting beside a box) in the InterMimic file
format with its object mesh, loads it back through the normal data path, replays it kinematically and in
physics (PD targets from the reference, no policy), prints the metrics and writes a video.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="built-in demo: synthetic clip -> file -> kinematic + physics replay -> metrics and video",
        description="Runs with no downloads: writes a synthetic clip and a box mesh under --out, replays the clip "
        "kinematically and in physics with the default humanoid, prints the metrics and writes a video.",
    )
    p.add_argument("--out", default="interprior_demo", help="output folder (default ./interprior_demo)")
    p.add_argument("--no-video", action="store_true", help="skip the video")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from interprior.data.intermimic import load_clip, save_clip
    from interprior.data.synthetic import squat_clip, write_box_mesh
    from interprior.replay import kinematic_replay, physics_replay

    start = time.perf_counter()
    out = Path(args.out)
    clips_dir, objects_dir = out / "clips", out / "objects"
    clips_dir.mkdir(parents=True, exist_ok=True)
    clip = squat_clip()
    write_box_mesh(objects_dir, "box")
    path = clips_dir / f"{clip.name}.pt"
    save_clip(clip, path)
    clip = load_clip(path)  # through the real file path, as users' data goes
    kin, _, _ = kinematic_replay(clip, objects_dir, skeleton="default")
    phys, scene, qpos = physics_replay(clip, objects_dir, skeleton="default", stop_on_fall=False,
                                       record=not args.no_video)
    result = {"clip": str(path), "kinematic": kin.as_dict(), "physics": phys.as_dict()}
    if not args.no_video:
        from interprior.commands.replay import _write_video

        video = out / "demo_physics_replay.mp4"
        _write_video(video, scene, clip, qpos)
        result["video"] = str(video)
    result["seconds"] = round(time.perf_counter() - start, 1)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"clip written and re-loaded: {path} ({clip.num_frames} frames, {clip.duration:.1f} s)")
    print(f"kinematic replay: body error mean {kin.body_error_mean_cm:.3f} cm, max {kin.body_error_max_cm:.3f} cm; "
          f"object pose error {kin.object_pos_error_mm:.3f} mm")
    fell = f"fell after {phys.frames_before_fall} frames" if phys.fell else "stayed up"
    print(f"physics replay (PD targets from the reference, no policy): {fell} of {phys.frames}; "
          f"E_h {phys.e_h_cm:.1f} cm, E_o {phys.e_o_cm:.1f} cm")
    print(f"done in {result['seconds']} s" + (f"; video: {result['video']}" if "video" in result else ""))
    return 0
