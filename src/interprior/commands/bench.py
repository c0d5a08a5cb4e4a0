"""`interprior bench sim`: throughput of the batched simulator vs raw MuJoCo stepping, one run (or a table)."""

from __future__ import annotations

from interprior.commands.args import positive_int
from interprior import schema
from interprior.assets.bodies import BODY_NAMES, embodiment
from interprior.assets.objects import load_object
from interprior.assets.scene import SceneConfig
from interprior.errors import BackendUnavailable, InterpriorError
from interprior.eval.checkpoints import load_checkpoint_arg
from interprior.mdp.goals import Goal, GoalLayout
from interprior.mdp.self_observation import self_observation_size
from interprior.models.prior import GoalPolicy, MaskedGoalPrior, PriorModelConfig, cpu_model_preset
from interprior.models.prior_onnx import onnxruntime_problem
from interprior.report import to_json
from interprior.sim.bench import bench_sim, bench_table
from interprior.sim.factory import warp_device_problem
from interprior.steer.steering import Steering


def register(sub) -> None:
    bench = sub.add_parser("bench", help="benchmarks (simulator throughput)", description="Benchmarks.")
    bsub = bench.add_subparsers(dest="bench_command", metavar="BENCH", required=True)
    p = bsub.add_parser(
        "sim",
        help="env-steps/s of the batched simulator with full state extraction vs raw MuJoCo stepping",
        description="Steps N environments of the HOI scene with small random PD targets. Reports control "
        "env-steps/s of the batched simulator with full state extraction after every control step, raw MuJoCo "
        "physics steps/s of the same scene, envs, threads and targets (one mujoco.rollout call), and their ratio. "
        "With --backend warp the same on MuJoCo Warp (raw = the captured mujoco_warp.step graph on the same "
        "worlds); --table runs several env counts and adds the CPU backend on this machine's cores.",
    )
    p.add_argument("--envs", type=positive_int, default=64, help="number of parallel environments (default 64)")
    p.add_argument("--steps", type=positive_int, default=100, help="control steps to time (default 100)")
    p.add_argument("--threads", type=positive_int, default=None, help="MuJoCo threads (default: all cores)")
    p.add_argument("--variant", "--embodiment", dest="variant", choices=BODY_NAMES, default="full",
                   help="the body (SMPL-X full or body_only, toy, g1)")
    p.add_argument("--objects", default=None, help="objects folder (objects/<name>/<name>.obj) to add an object")
    p.add_argument("--object", default="largetable", help="object name inside --objects (default largetable)")
    p.add_argument("--backend", choices=["cpu", "warp"], default="cpu",
                   help="simulation backend (cpu: MuJoCo C engine; warp: MuJoCo Warp, GPU)")
    p.add_argument("--device", default=None,
                   help="warp device (default cuda:0; cpu runs MuJoCo Warp on the CPU, slow, for testing)")
    p.add_argument("--table", default=None, metavar="N,N,...",
                   help="env counts to run one after another (e.g. 1024,4096,8192); prints a table that includes "
                   "the CPU backend on this machine's cores for the speed ratio")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run_sim)

    _register_prior(bsub)
    _register_steer(bsub)


def run_sim(args) -> int:
    if args.envs < 1 or args.steps < 1:
        raise InterpriorError("--envs and --steps must be positive")
    if args.backend == "cpu" and args.device not in (None, "cpu"):
        raise InterpriorError(f"--device {args.device} needs --backend warp (the cpu backend runs on the CPU)")
    if args.backend == "warp":  # fail before building the scene

        problem = warp_device_problem(args.device or "cuda:0")
        if problem:
            raise BackendUnavailable(f"{problem}; use --backend cpu")
    objects = ()
    if args.objects:
        objects = (load_object(args.objects, args.object),)
    cfg = SceneConfig(body=embodiment(args.variant), objects=objects)
    if args.table:
        return _run_table(args, cfg)
    res = bench_sim(envs=args.envs, steps=args.steps, scene_config=cfg, threads=args.threads,
                    backend=args.backend, device=args.device)
    if args.json:
        print(to_json(res.as_dict()))
        return 0
    obj = ", ".join(res.objects) or "no object"
    if res.backend == "cpu":
        where, raw_name = f"{res.threads} threads", "raw MuJoCo stepping (rollout):      "
    else:
        where, raw_name = f"MuJoCo Warp on {res.device}", "raw MuJoCo Warp stepping (graph):  "
    print(f"scene: {res.variant} humanoid, {obj}; {res.envs} envs, {res.control_steps} control steps x "
          f"{res.substeps} physics steps, {where}")
    print(f"batched sim (full state extraction): {res.batched_env_steps_per_s:10.0f} env-steps/s "
          f"({res.batched_physics_steps_per_s:.0f} physics steps/s)")
    print(f"{raw_name} {res.raw_physics_steps_per_s / res.substeps:10.0f} env-steps/s "
          f"({res.raw_physics_steps_per_s:.0f} physics steps/s)")
    print(f"ratio batched/raw: {res.ratio:.2f}")
    return 0


def _run_table(args, cfg) -> int:
    try:
        counts = [int(n) for n in args.table.split(",") if n.strip()]
    except ValueError:
        raise InterpriorError(f"--table takes comma-separated env counts, got {args.table!r}") from None
    if not counts or min(counts) < 1:
        raise InterpriorError(f"--table takes positive env counts, got {args.table!r}")
    rows = bench_table(counts, steps=args.steps, scene_config=cfg, threads=args.threads, backend=args.backend,
                       device=args.device)
    if args.json:
        print(to_json(rows))
        return 0
    print(f"control env-steps/s ({args.steps} control steps; batched = full state extraction every step); "
          f"CPU = MuJoCo C backend, {rows[0]['cpu_threads']} threads")
    print(f"{'envs':>7} {'backend':>12} {'batched':>10} {'raw':>10} {'b/raw':>6} {'CPU batched':>12} "
          f"{'CPU raw':>10} {'vs CPU':>7}")
    for r in rows:
        print(f"{r['envs']:7d} {args.backend + ':' + r['device']:>12} {r['batched_env_steps_per_s']:10.0f} "
              f"{r['raw_env_steps_per_s']:10.0f} {r['batched_over_raw']:6.2f} {r['cpu_batched_env_steps_per_s']:12.0f} "
              f"{r['cpu_raw_env_steps_per_s']:10.0f} {r['speedup_vs_cpu']:6.1f}x")
    return 0


# --- Stage II: inference latency of the prior ----------------------------------------------------------------------
def _register_prior(bsub) -> None:
    p = bsub.add_parser(
        "prior",
        help="latency of the Stage II policy (prior + decoder) for one environment per control step, CPU",
        description="Times the deployable Stage II policy (Transformer prior + MLP decoder, no encoder) on one "
        "environment: one self observation and one goal (previews + snapshot, half the components given) per "
        "control step, as GoalPolicy.act runs it. Without --checkpoint a randomly initialised model of the "
        "paper's sizes (or --preset cpu) is timed. Reports the median and 90th percentile milliseconds per step; "
        "--onnx also times the exported graph in onnxruntime.",
    )
    p.add_argument("--checkpoint", default=None, help="Stage II run directory or checkpoint (default: random)")
    p.add_argument("--preset", choices=["paper", "cpu"], default="paper", help="model sizes without --checkpoint")
    p.add_argument("--variant", choices=sorted(schema.VARIANTS), default="full",
                   help="humanoid (action size) without --checkpoint (default full: 153)")
    p.add_argument("--steps", type=positive_int, default=200, help="control steps to time (default 200)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch / onnxruntime threads (default 1)")
    p.add_argument("--onnx", action="store_true", help="also time the ONNX graph in onnxruntime")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run_prior)


def run_prior(args) -> int:
    import statistics
    import time

    import torch


    if args.steps < 1 or args.threads < 1:
        raise InterpriorError("--steps and --threads must be positive")
    torch.set_num_threads(args.threads)
    if args.checkpoint:
        model = load_checkpoint_arg(args.checkpoint, kind="prior").model
        source = args.checkpoint
    else:
        cfg = PriorModelConfig() if args.preset == "paper" else cpu_model_preset(PriorModelConfig())
        body = embodiment(args.variant)
        model = MaskedGoalPrior(self_observation_size(body.resolved), body.num_dofs, GoalLayout(), cfg).eval()
        source = f"random, {args.preset} sizes"
    layout = model.layout
    g = torch.Generator().manual_seed(0)
    k = layout.num_tokens
    goal = Goal(full=torch.randn(1, k, layout.feature_size, generator=g),
                bits=torch.rand(1, k, layout.bit_size, generator=g) < 0.5,
                defined=torch.ones(1, k, layout.bit_size, dtype=torch.bool), time=torch.rand(1, k, generator=g),
                layout=layout)
    state = torch.randn(1, model.state_dim, generator=g)
    policy = GoalPolicy(model, 1)

    def timed(fn) -> list[float]:
        for _ in range(10):  # warm-up
            fn()
        out = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            fn()
            out.append(1000.0 * (time.perf_counter() - t0))
        return out

    torch_ms = timed(lambda: policy.act(state, goal))
    res = {"source": source, "threads": args.threads, "steps": args.steps,
           "parameters_prior_decoder": sum(p.numel() for n, p in model.named_parameters() if not n.startswith("encoder")),
           "torch_ms_median": statistics.median(torch_ms),
           "torch_ms_p90": sorted(torch_ms)[int(0.9 * (len(torch_ms) - 1))]}
    if args.onnx:
        problem = onnxruntime_problem()
        if problem:
            raise InterpriorError(f"--onnx: {problem}")
        onnx_policy = GoalPolicy(model, 1, runtime="onnx", threads=args.threads)
        onnx_ms = timed(lambda: onnx_policy.act(state, goal))
        res["onnx_ms_median"] = statistics.median(onnx_ms)
        res["onnx_ms_p90"] = sorted(onnx_ms)[int(0.9 * (len(onnx_ms) - 1))]
    if args.json:
        print(to_json(res))
        return 0
    print(f"Stage II policy (prior + decoder, {res['parameters_prior_decoder'] / 1e6:.1f}M parameters; {source}), "
          f"one environment, {args.threads} thread(s), {args.steps} control steps")
    print(f"PyTorch:     {res['torch_ms_median']:.2f} ms per step (median), p90 {res['torch_ms_p90']:.2f} ms")
    if "onnx_ms_median" in res:
        print(f"onnxruntime: {res['onnx_ms_median']:.2f} ms per step (median), p90 {res['onnx_ms_p90']:.2f} ms")
    return 0


# --- steering: the live loop --------------------------------------------------------------------------------------
def _register_steer(bsub) -> None:
    p = bsub.add_parser(
        "steer",
        help="control steps/s of the steering loop (physics + prior + goal building + state read-out), one core",
        description="Runs `interprior.steer.Steering` on one core with an object goal 1 m ahead of the object, "
        "re-given every second as a live user would, and times each control step (physics, the prior + decoder, "
        "goal building and the state the page streams). Reports steps/s and the multiple of real time (30 Hz).",
    )
    p.add_argument("--checkpoint", required=True, help="a Stage II prior: run directory or exported file")
    p.add_argument("--steps", type=positive_int, default=300, help="control steps to time (default 300)")
    p.add_argument("--runtime", choices=("torch", "onnx"), default="torch",
                   help="run the prior + decoder in PyTorch or, exported, in onnxruntime (needs the onnx extra)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run_steer)


def run_steer(args) -> int:
    import statistics
    import time

    import torch

    torch.set_num_threads(1)
    steering = Steering(args.checkpoint, runtime=args.runtime)
    start = steering.state()
    target = [float(start.object[0]) + 1.0, float(start.object[1]), float(start.object[2])]
    per_step = []
    for i in range(args.steps + 10):
        if i % 30 == 0:
            steering.set_goal(object_position=target, seconds=2.0)
        t0 = time.perf_counter()
        steering.step()
        steering.state().to_dict()  # what the page streams
        if i >= 10:  # after a warm-up
            per_step.append(time.perf_counter() - t0)
    rate = len(per_step) / sum(per_step)
    res = {"checkpoint": args.checkpoint, "runtime": args.runtime, "steps": len(per_step), "steps_per_s": rate,
           "real_time_multiple": rate * steering.dt, "ms_median": 1000 * statistics.median(per_step)}
    if args.json:
        print(to_json(res))
        return 0
    print(f"steering loop (physics + prior ({args.runtime}) + goals + state), one core: {rate:.0f} control steps/s = "
          f"{res['real_time_multiple']:.1f}x real time ({res['ms_median']:.1f} ms per step, median of {len(per_step)})")
    return 0
