"""A trained expert or Stage II prior as one self-contained file: network weights (with the observation
normalisers) and the resolved config, no optimiser state. What `interprior demo` ships and what `eval` and
`train prior --expert` accept in place of a run."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from interprior.errors import InterpriorError
from interprior.files import atomic_write
from interprior.models.prior_onnx import check_output_file
from interprior.train.checkpoint import config_to_dict
from interprior.train.distill import EXPORTED_FORMAT as PRIOR_EXPORT_FORMAT
from interprior.train.distill import load_prior
from interprior.train.expert import FORMAT, load_expert  # noqa: F401  (load_expert: re-exported)
from interprior.train.runs import run_kind


def export_expert(checkpoint: str | Path, out: str | Path, notes: dict | None = None, force: bool = False) -> Path:
    """Write the policy of `checkpoint` (see `load_expert`) to `out`, atomically, with the mode the umask gives a new
    file. `notes`: free-form metadata (e.g. how the training data was made). InterpriorError naming `--out` when
    `out` is a folder (or ends in a separator) or, unless `force`, an existing file: checked before loading."""
    out = check_output_file(out, force=force, example="expert.pt")
    cfg, model, state = load_expert(checkpoint)
    notes = {**_synth_recipe(cfg.data.data), **(notes or {})}  # trained on `data synth` output: keep its recipe
    payload = {
        "format": FORMAT, "config": config_to_dict(cfg),
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "obs_dim": state["obs_dim"], "act_dim": state["act_dim"], "samples": state.get("samples"),
        "iteration": state.get("iteration"), "clips": state.get("clips", []), "history": state.get("history", []),
        "notes": notes,
    }
    try:
        return atomic_write(out, lambda f: torch.save(payload, f))
    except OSError as e:
        raise InterpriorError(f"--out {out}: cannot write ({e.strerror or e})") from None


def export_run(checkpoint: str | Path, out: str | Path, force: bool = False) -> tuple[str, Path]:
    """Export an expert or a prior run (by the kind it records) -> (kind, written file)."""
    kind = run_kind(checkpoint)
    if kind == "expert":
        return kind, export_expert(checkpoint, out, force=force)
    return kind, export_prior(checkpoint, out, force=force)


def export_prior(checkpoint: str | Path, out: str | Path, notes: dict | None = None, force: bool = False) -> Path:
    """Write the Stage II prior of `checkpoint` (weights of prior, encoder and decoder; config; history; the data
    recipe) to `out`, like `export_expert`; `load_prior` and every `--checkpoint` read it."""
    out = check_output_file(out, force=force, example="prior.pt")
    cfg, model, state = load_prior(checkpoint)
    notes = {**_synth_recipe(cfg.data.data), **(notes or {})}
    payload = {
        "format": PRIOR_EXPORT_FORMAT, "kind": "prior", "config": config_to_dict(cfg),
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "state_dim": state["state_dim"], "act_dim": state["act_dim"], "samples": state.get("samples"),
        "iteration": state.get("iteration"), "clips": state.get("clips", []), "history": state.get("history", []),
        "teacher": state.get("teacher"), "notes": notes,
    }
    try:
        return atomic_write(out, lambda f: torch.save(payload, f))
    except OSError as e:
        raise InterpriorError(f"--out {out}: cannot write ({e.strerror or e})") from None


def _synth_recipe(data: str) -> dict:
    """{"synth": the generator's recipe} when the training data is `interprior data synth` output, else {}."""
    manifest = Path(data).parent / "synth.json"
    if not manifest.is_file():
        return {}
    m = json.loads(manifest.read_text())
    return {"synth": {k: m[k] for k in ("seed", "clips", "skills", "objects", "defects", "recipe") if k in m}}


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
