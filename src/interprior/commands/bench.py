"""`interprior bench sim`: throughput of the batched simulator vs raw MuJoCo stepping, one run."""

from __future__ import annotations

import json

from interprior import schema


def register(sub) -> None:
    bench = sub.add_parser("bench", help="benchmarks (simulator throughput)", description="Benchmarks.")
    bsub = bench.add_subparsers(dest="bench_command", metavar="BENCH", required=True)
    p = bsub.add_parser(
        "sim",
        help="env-steps/s of the batched simulator with full state extraction vs raw MuJoCo stepping",
        description="Steps N environments of the HOI scene with small random PD targets. Reports control "
        "env-steps/s of the batched simulator with full state extraction after every control step, raw MuJoCo "
        "physics steps/s of the same scene, envs, threads and targets (one mujoco.rollout call), and their ratio.",
    )
    p.add_argument("--envs", type=int, default=64, help="number of parallel environments (default 64)")
    p.add_argument("--steps", type=int, default=100, help="control steps to time (default 100)")
    p.add_argument("--threads", type=int, default=None, help="MuJoCo threads (default: all cores)")
    p.add_argument("--variant", choices=sorted(schema.VARIANTS), default="full", help="humanoid variant")
    p.add_argument("--objects", default=None, help="objects folder (objects/<name>/<name>.obj) to add an object")
    p.add_argument("--object", default="largetable", help="object name inside --objects (default largetable)")
    p.add_argument("--backend", choices=["cpu"], default="cpu", help="simulation backend (cpu: MuJoCo C engine)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run_sim)


def run_sim(args) -> int:
    from interprior.assets.scene import SceneConfig
    from interprior.sim.bench import bench_sim

    if args.envs < 1 or args.steps < 1:
        from interprior.errors import InterpriorError

        raise InterpriorError("--envs and --steps must be positive")
    objects = ()
    if args.objects:
        from interprior.assets.objects import load_object

        objects = (load_object(args.objects, args.object),)
    cfg = SceneConfig(variant=schema.VARIANTS[args.variant], objects=objects)
    res = bench_sim(envs=args.envs, steps=args.steps, scene_config=cfg, threads=args.threads)
    if args.json:
        print(json.dumps(res.as_dict(), indent=2))
        return 0
    obj = ", ".join(res.objects) or "no object"
    print(f"scene: {res.variant} humanoid, {obj}; {res.envs} envs, {res.control_steps} control steps x "
          f"{res.substeps} physics steps, {res.threads} threads")
    print(f"batched sim (full state extraction): {res.batched_env_steps_per_s:10.0f} env-steps/s "
          f"({res.batched_physics_steps_per_s:.0f} physics steps/s)")
    print(f"raw MuJoCo stepping (rollout):       {res.raw_physics_steps_per_s / res.substeps:10.0f} env-steps/s "
          f"({res.raw_physics_steps_per_s:.0f} physics steps/s)")
    print(f"ratio batched/raw: {res.ratio:.2f}")
    return 0
