"""One loader for everything training writes: `load_run(path)` reads an expert or a Stage II prior from a run
directory, a checkpoint inside one, or an exported expert file, keyed by the kind the checkpoint records
(checkpoints written before kinds were recorded are recognised by their format and their run's config)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from interprior.errors import DataFileError
from interprior.train.checkpoint import load_checkpoint, run_dir_kind
from interprior.train.distill import EXPORTED_FORMAT as EXPORTED_PRIOR_FORMAT
from interprior.train.distill import FORMAT as PRIOR_FORMAT
from interprior.train.distill import load_prior
from interprior.train.expert import FORMAT as EXPORTED_EXPERT_FORMAT
from interprior.train.expert import load_expert

KINDS = ("expert", "prior")


@dataclass
class Run:
    kind: str  # "expert" or "prior"
    config: Any  # ExpertConfig or DistillConfig: what trained, resolved
    model: torch.nn.Module  # in eval mode
    state: dict  # the checkpoint (samples, history, dims, ...)


def run_kind(path: str | Path) -> str:
    """"expert" or "prior" for a run directory, a checkpoint file inside one, or an exported file; a clear
    `DataFileError` naming the path for anything else (a motion clip, a missing path, an unreadable file)."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(path, "no such run directory or checkpoint file")
    if path.is_file() and path.parent.name != "checkpoints":
        state = load_checkpoint(path)
        if state.get("format") == EXPORTED_EXPERT_FORMAT:
            return "expert"
        if state.get("format") == EXPORTED_PRIOR_FORMAT:
            return "prior"
        raise DataFileError(path, f"not an exported expert or prior, or a run's checkpoint (format "
                                  f"{state.get('format')!r})")
    run = path if path.is_dir() else path.parent.parent
    kind = run_dir_kind(run)
    if kind is None:
        raise DataFileError(path, "not a training run (no interprior run config.json "
                                  f"{'in it' if path.is_dir() else 'beside its checkpoints/ folder'}) and not an "
                                  "exported expert")
    return kind


def load_run(path: str | Path, kind: str | None = None) -> Run:
    """The trained model at `path`. With `kind`, anything else is a clear error (e.g. an expert given where a
    prior is needed)."""
    found = run_kind(path)
    if kind is not None and found != kind:
        raise DataFileError(Path(path), f"this is {'an' if found == 'expert' else 'a'} {found} run; a {kind} is "
                                        "needed here")
    config, model, state = (load_expert if found == "expert" else load_prior)(path)
    if found == "prior" and state.get("format") not in (PRIOR_FORMAT, EXPORTED_PRIOR_FORMAT):
        raise DataFileError(Path(path), f"not a Stage II prior checkpoint (format {state.get('format')!r})")
    return Run(found, config, model, state)
