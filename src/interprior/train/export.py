"""A trained expert as one self-contained file: network weights (with the observation normaliser) and the resolved
config, no optimiser state. What `interprior demo` ships and what `eval tracking --checkpoint FILE` accepts."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from interprior.errors import InterpriorError
from interprior.files import atomic_write
from interprior.models.prior_onnx import check_output_file
from interprior.train.checkpoint import config_to_dict
from interprior.train.expert import FORMAT, load_expert  # noqa: F401  (load_expert: re-exported)


def export_expert(checkpoint: str | Path, out: str | Path, notes: dict | None = None, force: bool = False) -> Path:
    """Write the policy of `checkpoint` (see `load_expert`) to `out`, atomically, with the mode the umask gives a new
    file. `notes`: free-form metadata (e.g. how the training data was made). InterpriorError naming `--out` when
    `out` is a folder (or ends in a separator) or, unless `force`, an existing file: checked before loading."""
    out = check_output_file(out, force=force, example="expert.pt")
    cfg, model, state = load_expert(checkpoint)
    notes = dict(notes or {})
    manifest = Path(cfg.data.data).parent / "synth.json"  # trained on `interprior data synth` output: keep its recipe
    if "synth" not in notes and manifest.is_file():
        m = json.loads(manifest.read_text())
        notes["synth"] = {k: m[k] for k in ("seed", "clips", "skills", "objects", "defects") if k in m}
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


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
