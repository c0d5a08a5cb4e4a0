"""Write a synthetic data set: DIR/objects/<name>/<name>.obj, DIR/clips/<clip>.pt and DIR/synth.json.

Clips are made one per task, in worker processes when `workers` > 1 (each one single-threaded: the work is many
small matrix operations, see `threads`). Results do not depend on the number of workers.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from interprior.data.intermimic import save_clip
from interprior.data.synth.defects import DEFECTS, apply_defects, defect_rng
from interprior.data.synth.generate import ClipSpec, clip_specs, generate_clip
from interprior.data.synth.objects import ALL_OBJECTS, OBJECT_NAMES, make_objects
from interprior.data.synth.outdir import GENERATOR, MANIFEST, begin_set, clip_file_name, files_to_replace
from interprior.data.synth.quality import quality_report, summarize, summarize_by_skill
from interprior.data.synth.skills import ALL_SKILLS, SKILLS
from interprior.data.synth.threads import single_threaded
from interprior.data.validate import count_by_severity, validate_clip
from interprior.errors import InterpriorError
from interprior.files import atomic_write_text


@dataclass
class SynthOptions:
    out: Path
    clips: int = 20
    seed: int = 0
    skills: tuple[str, ...] = SKILLS
    objects: tuple[str, ...] = OBJECT_NAMES
    defects: tuple[str, ...] = ()
    check: bool = False
    workers: int = 1
    force: bool = False  # replace an earlier synthetic set in `out` (only the files its synth.json lists)
    seconds: tuple[float, float] | None = None  # clip length range every clip must fall in (checked with `check`)
    recipe: dict | None = None  # where the options came from (`recipe.load_recipe`), recorded in synth.json


@dataclass
class SynthResult:
    rows: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    seconds: float = 0.0


def check_options(opts: SynthOptions) -> list[Path]:
    """Raise InterpriorError naming the argument for unusable options (before any work is done). -> the files of
    an earlier synthetic set in `opts.out` that this one replaces (see `outdir.files_to_replace`)."""
    unknown = [s for s in opts.skills if s not in ALL_SKILLS]
    if unknown or not opts.skills:
        raise InterpriorError(f"--skills: unknown skill(s) {', '.join(unknown) or '(none given)'}; "
                              f"choose from {', '.join(ALL_SKILLS)}")
    unknown = [d for d in opts.defects if d not in DEFECTS]
    if unknown:
        raise InterpriorError(f"--defects: unknown defect(s) {', '.join(unknown)}; choose from {', '.join(DEFECTS)}")
    unknown = [o for o in opts.objects if o not in ALL_OBJECTS]
    if unknown or not opts.objects:
        raise InterpriorError(f"--objects: unknown object(s) {', '.join(unknown) or '(none given)'}; "
                              f"choose from {', '.join(ALL_OBJECTS)}")
    if opts.clips <= 0:
        raise InterpriorError(f"--clips: must be at least 1, got {opts.clips}")
    if opts.workers <= 0:
        raise InterpriorError(f"--workers: must be at least 1, got {opts.workers}")
    old = files_to_replace(opts.out, opts.force)
    _check_writable(Path(opts.out))
    return old


def _check_writable(out: Path) -> None:
    try:
        for sub in ("clips", "objects"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=out / "clips")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise InterpriorError(f"--out {out}: cannot write there ({err.strerror or err})") from None


def _make(spec: ClipSpec, defects: tuple[str, ...], clips_dir: str, check: bool) -> dict:
    """Generate, optionally damage, check and write one clip; returns its manifest row."""

    with single_threaded():
        objects = make_objects(spec.seed)
        clip = generate_clip(spec, objects).clip
        if defects:
            clip = apply_defects(clip, defects, defect_rng(spec.seed, spec.index))
        path = Path(clips_dir) / f"{clip.name}.pt"
        save_clip(clip, path)
        row = {"clip": clip.name, "file": str(path), "skill": spec.skill, "object": spec.object,
               "index": spec.index, "frames": clip.num_frames, "seconds": round(clip.duration, 2),
               "defects": list(defects), "notes": list(clip.notes)}
        if check:
            row["quality"] = quality_report(clip, objects[spec.object])
            row["validation"] = count_by_severity(validate_clip(clip))
    return row


def _worker_init() -> None:
    # torch and BLAS threads: one per process (set before anything heavy runs in the worker)
    import torch

    torch.set_num_threads(1)


def write_dataset(opts: SynthOptions, progress=None) -> SynthResult:
    """Generate `opts.clips` clips into `opts.out`; `progress(row)` is called after each clip."""
    old = check_options(opts)
    start = time.perf_counter()
    out = Path(opts.out)
    specs = clip_specs(opts.clips, opts.seed, opts.skills, opts.objects)
    planned = [clip_file_name(spec.name, opts.defects)[: -len(".pt")] for spec in specs]
    begin_set(out, old, _manifest(opts, None, [], {}) | {"complete": False, "planned": planned})
    objects = make_objects(opts.seed)
    for name in opts.objects:
        objects[name].write(out / "objects")
    args = [(spec, tuple(opts.defects), str(out / "clips"), opts.check) for spec in specs]
    rows = []
    if opts.workers == 1:
        for a in args:
            rows.append(_make(*a))
            if progress:
                progress(rows[-1])
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # fresh interpreters: no inherited threads or locks
        env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # inherited by the spawned workers before they import numpy
        try:
            with ctx.Pool(opts.workers, initializer=_worker_init) as pool:
                for row in pool.starmap(_make, args, chunksize=1):
                    rows.append(row)
                    if progress:
                        progress(row)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    result = SynthResult(rows=rows, seconds=time.perf_counter() - start)
    if opts.check:
        result.summary = summarize([r["quality"] for r in rows])
        result.summary["validation_errors"] = sum(r["validation"]["error"] for r in rows)
        result.summary["per_skill"] = summarize_by_skill(rows)
        if opts.seconds is not None:
            lo, hi = opts.seconds
            result.summary["clips_outside_seconds"] = sum(not lo <= r["seconds"] <= hi for r in rows)
    atomic_write_text(out / MANIFEST, json.dumps(_manifest(opts, objects, result.rows, result.summary), indent=2))
    return result


def _manifest(opts: SynthOptions, objects, rows: list[dict], summary: dict) -> dict:
    """synth.json: the recipe, the objects (with `objects` made: kind, mass, size), one row per clip written."""
    def described(name: str) -> dict:
        if objects is None:
            return {}
        size = objects[name].bounds[1] - objects[name].bounds[0]
        return {"kind": objects[name].kind, "mass_kg": round(objects[name].mass, 3),
                "size_m": [round(float(x), 4) for x in size]}

    manifest = {
        "generator": GENERATOR,
        "seed": opts.seed, "clips": opts.clips, "skills": list(opts.skills), "defects": list(opts.defects),
        "objects": {name: described(name) for name in opts.objects},
    }
    if opts.seconds is not None:
        manifest["seconds"] = list(opts.seconds)
    if opts.recipe is not None:
        manifest["recipe"] = opts.recipe
    manifest["rows"] = rows
    if summary:
        manifest["check"] = summary
    return manifest


def clip_skills(data: str | Path) -> dict[str, str]:
    """Clip name -> skill from the manifest beside a data set's clips folder: a synthetic set's `synth.json`, or a
    retargeted one's `retarget.json` (whose rows keep their source's skills); empty for other data. Evaluations
    report success per skill, training logs failure rates per skill and skill experts take their clips by it."""
    folder = Path(data)
    for manifest in (folder.parent / "synth.json", folder / "synth.json", folder.parent / "retarget.json",
                     folder / "retarget.json"):
        try:
            rows = json.loads(manifest.read_text()).get("rows", [])
            return {r["clip"]: r["skill"] for r in rows if "clip" in r and "skill" in r}
        except (OSError, ValueError, AttributeError, TypeError):
            continue
    return {}
