"""Atomic checkpoints and the run directory layout.

::

    <out>/config.json                     resolved config (dataclass → JSON), written once, checked on resume;
                                          top-level ``_`` keys note how it was made (``_preset``, ``_overlays``, ``_set``)
    <out>/checkpoints/step_000000123.pt   the last ``keep`` checkpoints
    <out>/checkpoints/latest.txt          name of the newest checkpoint (plain text pointer, no symlink)

A checkpoint is written to a temporary file in the same directory, flushed and fsync'ed, then moved over the
target with ``os.replace`` (atomic on POSIX and Windows): a crash mid-write leaves the previous file intact.
The run directory itself (locking, resuming, ``--restart``) is :mod:`interprior.train.rundir`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

# config (de)serialisation lives in interprior.config; these names are re-exported for existing imports
from interprior.config import (  # noqa: F401
    ConfigMismatch,
    apply_overrides,
    config_diff,
    config_to_dict,
    dict_to_config,
    flatten,
    split_meta,
)
from interprior.errors import DataFileError, InterpriorError
from interprior.files import atomic_write

STEP_RE = re.compile(r"^step_(\d+)\.pt$")


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Atomically ``torch.save`` ``state`` to ``path`` (with the umask's permissions)."""
    return atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path, map_location: Any = "cpu", weights_only: bool = True) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors, containers, numbers, strings)."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=weights_only)
    except Exception as e:  # truncated / foreign file
        raise DataFileError(path, f"cannot read checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict):
        raise DataFileError(path, f"not a checkpoint: it holds a {type(state).__name__} (a motion clip?), not a "
                                  "trained model")
    return state




RUN_MARK = ("_run", "interprior")  # the note every run config.json carries: how a folder is known to be a run


def copy_weights(into: torch.nn.Module, source_model: torch.nn.Module, source: str, detail: str = "") -> None:
    """Load `source_model`'s weights into `into` (a run started with --init); networks of other shapes are refused
    naming the first differing tensors (and `detail`, e.g. the observation sizes)."""
    mine = {k: tuple(v.shape) for k, v in into.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in source_model.state_dict().items()}
    if mine != theirs:
        diff = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
        raise InterpriorError(f"--init {source}: its network does not fit this run ({detail}differing tensors: "
                              f"{', '.join(diff[:4])})")
    into.load_state_dict(source_model.state_dict())


def run_dir_kind(root: str | Path) -> str | None:
    """"expert" or "prior" for a run directory's config.json (a prior's config names its expert), None when the
    folder holds no readable run config."""
    try:
        config = json.loads((Path(root) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    if config.get(RUN_MARK[0]) != RUN_MARK[1] and not {"data", "env"} <= config.keys():  # older runs: no mark
        return None
    return "prior" if "expert" in config else "expert"
