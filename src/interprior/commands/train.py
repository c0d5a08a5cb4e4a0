"""`interprior train expert`: Stage I, the imitation expert (PPO on full-reference HOI tracking)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from interprior.assets.bodies import BODY_NAMES
from interprior.commands.args import non_negative_int, positive_float, positive_int
from interprior.config import ConfigMismatch, apply_overrides, overlay, read_overlay
from interprior.distributed import cleanup, exit_process, is_main
from interprior.errors import InterpriorError
from interprior.models.prior_onnx import export_onnx, max_difference, onnxruntime_problem
from interprior.train.distill import DistillConfig, PriorDistiller, load_prior
from interprior.train.distill import cpu_preset as prior_cpu_preset
from interprior.train.expert import ExpertConfig, ExpertTrainer, load_expert
from interprior.train.expert import cpu_preset as expert_cpu_preset
from interprior.train.teacher import parse_skill_experts
from interprior.train.export import export_run
from interprior.train.finetune import FinetuneConfig, Finetuner, check_finetune_config, finetune_config_for


def register(sub) -> None:
    train = sub.add_parser("train", help="train policies (expert: Stage I)", description="Training stages.")
    tsub = train.add_subparsers(dest="train_command", metavar="STAGE", required=True)
    p = tsub.add_parser(
        "expert",
        help="Stage I: imitation expert tracking HOI clips with PPO (resumable)",
        description="Trains an InterMimic-style tracking expert with PPO on clips of one subject (one object, or "
        "several with --object). "
        "Writes RUN/config.json, atomic checkpoints in RUN/checkpoints and TensorBoard logs in RUN/tb. Starting "
        "again with the same --out resumes from the last checkpoint (a different config is refused unless "
        "--restart).",
    )
    p.add_argument("--data", required=True, help="folder of InterMimic-format clips (or one clip)")
    p.add_argument("--objects", required=True, help="objects folder with <name>/<name>.obj")
    p.add_argument("--out", required=True, help="run directory (created or resumed)")
    p.add_argument("--object", default=None,
                   help="train on clips of this object; several comma-separated, or 'all' (default: the first "
                   "clip's). Each env uses its clip's object")
    p.add_argument("--subjects", nargs="*", default=None, help="keep clips of these subjects (e.g. sub2)")
    p.add_argument("--shortest", type=non_negative_int, default=None,
                   help="keep only the N shortest clips (0: all)")
    p.add_argument("--clips", nargs="*", default=None, help="explicit clip names (file stems)")
    p.add_argument("--hold-out", type=non_negative_int, default=None, metavar="N",
                   help="leave N of the selected clips out of training, spread over them in name order; "
                   "`eval tracking --held-out` evaluates them")
    p.add_argument("--envs", type=positive_int, default=None, help="parallel environments (preset: 64 cpu, 4096 gpu)")
    p.add_argument("--variant", "--embodiment", dest="variant", choices=BODY_NAMES, default=None,
                   help="the body: SMPL-X full (153 DoF) or body_only (63 DoF, rigid hands; CPU default), the tests' "
                   "toy body, or the Unitree G1 (g1: `interprior assets fetch g1` first; motion files of the G1)")
    p.add_argument("--preset", choices=["cpu", "paper"], default=None,
                   help="cpu: scaled-down batch/network for 2-core machines; paper: the papers' constants "
                   "(default: the one --config states, else cpu for --backend cpu, paper otherwise)")
    p.add_argument("--samples", type=positive_float, default=None, help="total environment samples (e.g. 2e7)")
    p.add_argument("--hours", type=positive_float, default=None, help="stop after this many hours (checkpointed)")
    p.add_argument("--backend", choices=["cpu", "warp"], default=None, help="simulation backend (default cpu)")
    p.add_argument("--device", default=None, help="device for warp and the networks (e.g. cuda:0)")
    p.add_argument("--init", default=None, metavar="EXPERT",
                   help="start a new run from this expert's weights (run directory, checkpoint or exported file; "
                   "same network sizes): fine-tuning with other rewards or clips. Ignored when RUN resumes")
    add_run_options(p, "--set ppo.epochs=4 --set env.termination.hand_contact_frames=20")
    p.set_defaults(func=run_expert)

    e = tsub.add_parser(
        "export",
        help="write a trained expert or prior as one file (weights + config, no optimiser state)",
        description="Writes the latest checkpoint of an expert or Stage II prior run (or a given checkpoint file) as "
        "one self-contained file that every --checkpoint (eval, demo, steer) and `train prior --expert` load.",
    )
    e.add_argument("--checkpoint", required=True, help="run directory or checkpoint file")
    e.add_argument("--out", required=True, help="output file (.pt)")
    e.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    e.set_defaults(func=run_export)

    _register_prior(tsub)
    _register_finetune(tsub)


def add_run_options(p, set_example: str) -> None:
    """Options every training command shares: seed, recipe overlays, field overrides, restart."""
    p.add_argument("--seed", type=non_negative_int, default=None, help="random seed of envs and minibatches (default 0)")
    p.add_argument("--config", action="append", default=[], metavar="FILE",
                   help="overlay this JSON config on the preset (repeatable, applied in order): a partial nested "
                   "object such as a committed recipe in configs/, or a whole run's config.json; only the fields it "
                   "names change. Its \"_preset\" key names the preset it is relative to (--preset overrides "
                   "it); the options above and --set are applied after it")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=f"set any config field, dotted, JSON value (repeatable), e.g. {set_example}; lists as "
                   "JSON: --set model.hidden=[256,256]")
    p.add_argument("--restart", action="store_true",
                   help="start the run in --out anew: removes the old run's checkpoints (checkpoints/step_*.pt, "
                   "latest.txt) and its TensorBoard files (tb/*.interprior) and replaces its config.json; nothing else")
    p.add_argument("--accept-changes", action="store_true",
                   help="resume even though the selected clips (or, for a prior, its expert) changed since the last "
                   "checkpoint (refused otherwise)")


PRESETS = ("cpu", "paper")


def _config_files(args) -> list[str]:
    files = getattr(args, "config", None) or []
    return [files] if isinstance(files, str) else list(files)


def choose_preset(args, default: str, stage: str = "expert") -> tuple[str, list[tuple[str, dict]]]:
    """(preset, [(file, overlay fields)]): ``--preset``, else the one the ``--config`` files state (``_preset``),
    else ``default``. Reads (and so checks) every overlay file first: one that states it was made for another `train`
    command (``_stage``) is refused by name."""

    overlays, stated = [], {}
    for path in _config_files(args):
        fields, notes = read_overlay(path)
        made_for = notes.get("_stage", stage)  # recipes of other stages say so (a run's config.json need not)
        if made_for != stage:
            raise ConfigMismatch(f"--config {path} is a recipe for `train {made_for}` (its _stage), not "
                                 f"`train {stage}`")
        overlays.append((path, fields))
        if "_preset" in notes:
            if notes["_preset"] not in PRESETS:
                raise ConfigMismatch(f"--config {path}: _preset is one of {', '.join(PRESETS)}, got "
                                     f"{notes['_preset']!r}")
            stated[path] = notes["_preset"]
    if args.preset:
        return args.preset, overlays
    if len(set(stated.values())) > 1:
        raise ConfigMismatch("--config files state different presets ("
                             + ", ".join(f"{p}: {v}" for p, v in stated.items()) + "); choose one with --preset")
    return (next(iter(stated.values())) if stated else default), overlays


def apply_overlays(cfg, overlays: list[tuple[str, dict]]):
    for path, fields in overlays:
        try:
            cfg = overlay(cfg, fields)
        except ConfigMismatch as e:
            raise ConfigMismatch(f"--config {path}: {e}") from None
    return cfg


def recipe_notes(args, preset: str) -> dict:
    """How the config was made, recorded in RUN/config.json beside the fields (top-level ``_`` keys)."""
    return {"_preset": preset, "_overlays": _config_files(args), "_set": list(args.overrides)}


def expert_defaults(preset: str):
    """ExpertConfig defaults with the named preset applied (paper: the defaults)."""
    cfg = ExpertConfig()
    return expert_cpu_preset(cfg) if preset == "cpu" else cfg


def build_config(args):
    """The expert's config: defaults → preset → --config overlays → flags → --set (each value type-checked)."""
    return build_config_and_notes(args)[0]


def build_config_and_notes(args):
    preset, overlays = choose_preset(args, "cpu" if args.backend in (None, "cpu") else "paper")
    cfg = apply_overlays(expert_defaults(preset), overlays)
    # the data flags replace only what they name (--data and --objects always)
    data = {"data": args.data, "objects": args.objects}
    for key, value in (("object_name", args.object), ("shortest", args.shortest), ("holdout", args.hold_out),
                       ("subjects", None if args.subjects is None else tuple(args.subjects)),
                       ("clips", None if args.clips is None else tuple(args.clips))):
        if value is not None:
            data[key] = value
    cfg.data = replace(cfg.data, **data)
    if args.envs is not None:
        cfg.env.num_envs = cfg.ppo.num_envs = args.envs
    if args.variant:
        cfg.env.variant = args.variant
    if args.samples is not None:
        cfg.total_samples = int(args.samples)
    if args.backend:
        cfg.env.backend = args.backend
    if args.device:
        cfg.env.device = args.device
    if args.seed is not None:
        cfg.env.seed = cfg.ppo.seed = args.seed
    if args.init:
        cfg.init = args.init
    return absolute_paths(apply_overrides(cfg, args.overrides)), recipe_notes(args, preset)


def absolute_paths(cfg):
    """The config with its file paths made absolute (data, objects, init, expert): a run is evaluated and resumed
    from any folder, and `dir`, `dir/` and `/abs/dir` are one run."""
    def absolute(p):
        return str(Path(p).expanduser().resolve()) if p else p
    cfg.data = replace(cfg.data, data=absolute(cfg.data.data), objects=absolute(cfg.data.objects))
    for name in ("init", "expert"):
        if getattr(cfg, name, None):
            setattr(cfg, name, absolute(getattr(cfg, name)))
    if getattr(cfg, "skill_experts", None):
        cfg.skill_experts = tuple(f"{skill}={absolute(path)}" for skill, path in parse_skill_experts(cfg.skill_experts))
    return cfg


def run_expert(args) -> int:
    cfg, notes = build_config_and_notes(args)
    trainer = ExpertTrainer(cfg, args.out, restart=args.restart, accept_changes=args.accept_changes)
    if is_main():
        trainer.run.record_notes(notes)
        print(f"training on {len(trainer.clip_names)} clips: {', '.join(trainer.clip_names)}; {cfg.env.num_envs} envs "
              f"x {trainer.world} process(es), {cfg.env.variant} humanoid, obs {trainer.env.obs_dim}, "
              f"act {trainer.env.act_dim}")
    trainer.train(max_seconds=args.hours * 3600 if args.hours is not None else None)
    if trainer.world > 1:
        cleanup()
        exit_process(0)
    return 0


def run_export(args) -> int:
    kind, path = export_run(args.checkpoint, args.out, force=args.force)
    print(f"exported the {kind} {args.checkpoint} -> {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


# --- Stage II: the masked goal prior --------------------------------------------------------------------------------
def _register_prior(tsub) -> None:
    p = tsub.add_parser(
        "prior",
        help="Stage II: distil an expert into the masked goal-conditioned prior (online DAgger, resumable)",
        description="Distils a trained expert into the masked goal-conditioned variational policy (Transformer "
        "prior, training-only MLP encoder, MLP decoder, latents on the unit sphere) by online DAgger: the student "
        "drives the expert's tracking environment, the frozen expert labels every visited state. Writes "
        "RUN/config.json, atomic checkpoints in RUN/checkpoints and TensorBoard logs in RUN/tb; the same --out "
        "resumes.",
    )
    p.add_argument("--expert", required=True, help="expert run directory, checkpoint, or exported expert file")
    p.add_argument("--skill-expert", action="append", default=None, metavar="SKILL=EXPERT",
                   help="this expert labels the clips of this skill (the data set's synth.json says which), --expert "
                   "the others; repeat for several skills (e.g. --skill-expert push_along=runs/push_expert)")
    p.add_argument("--data", default=None, help="folder of clips (default: the expert's training data)")
    p.add_argument("--objects", default=None, help="objects folder (default: the expert's)")
    p.add_argument("--out", required=True, help="run directory (created or resumed)")
    p.add_argument("--envs", type=positive_int, default=None, help="parallel environments (preset: 32 cpu)")
    p.add_argument("--preset", choices=["cpu", "paper"], default=None,
                   help="cpu: narrow networks and 32 envs for 2-core machines; paper: the paper's sizes "
                   "(default: the one --config states, else cpu when the expert ran on the cpu backend)")
    p.add_argument("--samples", type=positive_float, default=None, help="total environment samples (e.g. 5e6)")
    p.add_argument("--hours", type=positive_float, default=None, help="stop after this many hours (checkpointed)")
    p.add_argument("--init", default=None, metavar="PRIOR",
                   help="start a new run from this prior's weights (run directory, checkpoint or exported prior; "
                   "same network sizes), e.g. to go on from a bundled prior. Ignored when RUN resumes")
    add_run_options(p, "--set loss.temporal=0.05 --set torch_threads=1")
    p.set_defaults(func=run_prior)

    e = tsub.add_parser(
        "export-prior",
        help="write the deployable prior + decoder as ONNX (checked against PyTorch with onnxruntime)",
        description="Exports the latest checkpoint of a Stage II run (or a given checkpoint) as one ONNX graph: "
        "inputs state_obs, goal_features, goal_bits, goal_time, eps; output action (batch dimension dynamic). "
        "Then runs it with onnxruntime on random inputs and prints the largest difference to PyTorch.",
    )
    e.add_argument("--checkpoint", required=True, help="Stage II run directory or checkpoint file")
    e.add_argument("--out", required=True, help="output file (.onnx)")
    e.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    e.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    e.set_defaults(func=run_export_prior)


def build_prior_config(args):
    """The prior's config: defaults (the expert's data and env) → preset → --config overlays → flags → --set."""
    return build_prior_config_and_notes(args)[0]


def build_prior_config_and_notes(args):
    apply_overrides(DistillConfig(), args.overrides)  # a bad --set fails before the expert is loaded
    expert_cfg, _, _ = load_expert(args.expert)
    preset, overlays = choose_preset(args, "cpu" if expert_cfg.env.backend == "cpu" else "paper", stage="prior")
    cfg = DistillConfig(data=expert_cfg.data, env=expert_cfg.env)
    if preset == "cpu":
        prior_cpu_preset(cfg)
    cfg = apply_overlays(cfg, overlays)
    cfg.expert = args.expert
    if args.data:
        cfg.data = replace(cfg.data, data=args.data, clips=(), shortest=0)
    if args.objects:
        cfg.data = replace(cfg.data, objects=args.objects)
    for flag, given, path in (("--data", args.data, cfg.data.data), ("--objects", args.objects, cfg.data.objects)):
        if not given and not Path(path).exists():
            raise InterpriorError(f"{flag} not given, and the expert's {flag[2:]} ({path}, from its config) is not "
                                  f"there any more: pass {flag}")
    if args.envs is not None:
        cfg.env.num_envs = args.envs
    if args.samples is not None:
        cfg.total_samples = int(args.samples)
    if args.seed is not None:
        cfg.env.seed = cfg.optim.seed = args.seed
    if args.init:
        cfg.init = args.init
    if args.skill_expert:
        cfg.skill_experts = tuple(args.skill_expert)
    return absolute_paths(apply_overrides(cfg, args.overrides)), recipe_notes(args, preset)


def run_prior(args) -> int:
    cfg, notes = build_prior_config_and_notes(args)
    trainer = PriorDistiller(cfg, args.out, restart=args.restart, accept_changes=args.accept_changes)
    trainer.run.record_notes(notes)
    counts = trainer.teacher.clips_per_expert()
    teachers = "".join(f"; its {counts[skill]} {skill} clips by {path}"
                       for skill, path in parse_skill_experts(cfg.skill_experts))
    print(f"distilling {cfg.expert}{teachers} on {len(trainer.clip_names)} clips: {cfg.env.num_envs} envs, "
          f"{cfg.env.variant} humanoid, {cfg.student_actions} actions ({trainer.env.act_dim}), "
          f"{cfg.goals.num_tokens} goal tokens x {cfg.goals.feature_size} residuals")
    trainer.train(max_seconds=args.hours * 3600 if args.hours is not None else None)
    return 0


def run_export_prior(args) -> int:
    _, model, _ = load_prior(args.checkpoint)
    path = export_onnx(model, args.out, force=args.force)
    print(f"exported {args.checkpoint} -> {path} ({path.stat().st_size / 1e6:.1f} MB; prior + decoder)")
    if args.no_check:
        return 0
    problem = onnxruntime_problem()
    if problem:
        print(f"not checked: {problem}")
        return 0
    print(f"onnxruntime vs PyTorch on random inputs: max |diff| {max_difference(model, path):.2e}")
    return 0


# --- Stage III: RL finetuning ---------------------------------------------------------------------------------------
def _register_finetune(tsub) -> None:
    p = tsub.add_parser(
        "finetune",
        help="Stage III: RL finetuning of a Stage II prior on in-betweening, with concurrent distillation",
        description="Finetunes the deployable prior + decoder of a Stage II run with PPO on single-frame "
        "in-betweening episodes (dataset, pushed and fallen starts; one sparse goal L frames ahead; reward 0 or "
        "r_succ), while a share of the envs keeps the expert's labels (online DAgger) as an anchor. Writes "
        "RUN/finetune.json (this stage's config), RUN/config.json (the prior's, so every prior reader takes the "
        "run), atomic checkpoints in RUN/checkpoints and TensorBoard logs in RUN/tb; the same --out resumes.",
    )
    p.add_argument("--prior", required=True, help="Stage II run directory, checkpoint, or exported prior")
    p.add_argument("--out", required=True, help="run directory (created or resumed)")
    p.add_argument("--envs", type=positive_int, default=None, help="parallel environments (default: the prior's)")
    p.add_argument("--preset", choices=["cpu", "paper"], default=None,
                   help="cpu: one learning thread beside the simulation; paper: every thread (the network sizes "
                   "are the prior's either way)")
    p.add_argument("--samples", type=positive_float, default=None, help="total environment samples (e.g. 2e6)")
    p.add_argument("--hours", type=positive_float, default=None, help="stop after this many hours (checkpointed)")
    add_run_options(p, "--set distill_share=0.5 --set starts.fallen_prob=0.3 --set starts.dataset_prob=0.5")
    p.set_defaults(func=run_finetune)


def build_finetune_config_and_notes(args):
    """The finetune config: defaults around the prior's config → preset → --config overlays → flags → --set."""
    apply_overrides(FinetuneConfig(), args.overrides)  # a bad --set fails before the prior is loaded
    preset, overlays = choose_preset(args, "cpu", stage="finetune")
    cfg = finetune_config_for(args.prior, num_envs=args.envs)
    if preset == "cpu":
        cfg.torch_threads = 1
    cfg = apply_overlays(cfg, overlays)
    cfg.prior = args.prior
    if args.envs is not None:
        cfg.base.env.num_envs = args.envs
    if args.samples is not None:
        cfg.total_samples = int(args.samples)
    if args.seed is not None:
        cfg.base.env.seed = cfg.ppo.seed = args.seed
    cfg = apply_overrides(cfg, args.overrides)
    cfg.prior = str(Path(cfg.prior).expanduser().resolve())
    cfg.base = absolute_paths(cfg.base)
    check_finetune_config(cfg)
    return cfg, recipe_notes(args, preset)


def run_finetune(args) -> int:
    cfg, notes = build_finetune_config_and_notes(args)
    trainer = Finetuner(cfg, args.out, restart=args.restart, accept_changes=args.accept_changes)
    trainer.run.record_notes(notes)
    print(f"finetuning {cfg.prior} on {len(trainer.clip_names)} clips: {cfg.base.env.num_envs} envs, "
          f"{len(trainer.episodes.rows)} RL and {cfg.base.env.num_envs - len(trainer.episodes.rows)} distillation")
    trainer.train(max_seconds=args.hours * 3600 if args.hours is not None else None)
    return 0
