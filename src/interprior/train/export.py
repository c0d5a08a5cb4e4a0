"""A trained expert as one self-contained file: network weights (with the observation normaliser) and the resolved
config, no optimiser state. What `interprior demo` ships and what `eval tracking --checkpoint FILE` accepts."""

from __future__ import annotations

from pathlib import Path

import torch

from interprior.errors import DataFileError
from interprior.train.checkpoint import (config_to_dict, dict_to_config, load_checkpoint, load_run_checkpoint,
                                         save_checkpoint)

FORMAT = "interprior-expert-1"


def load_expert(checkpoint: str | Path):
    """(config, model in eval mode, checkpoint dict) from a run directory (its latest checkpoint), a checkpoint
    file inside one, or an exported file."""
    from interprior.models.actor_critic import ActorCritic
    from interprior.train.expert import ExpertConfig

    path = Path(checkpoint)
    if not path.exists():
        raise DataFileError(path, "no such run directory or checkpoint file")
    if path.is_file() and path.parent.name != "checkpoints":
        state = load_checkpoint(path)
        if state.get("format") != FORMAT:
            hint = ("; a training checkpoint is read from its run's checkpoints/ folder, beside the run's config.json"
                    if "model" in state and "iteration" in state else "")
            raise DataFileError(path, f"not an exported expert (format {state.get('format')!r}, expected "
                                      f"{FORMAT!r}){hint}")
        cfg = dict_to_config(ExpertConfig, state["config"])
    else:
        cfg, state, _ = load_run_checkpoint(path, ExpertConfig)
    model = ActorCritic(state["obs_dim"], state["act_dim"], hidden=cfg.model.hidden,
                        critic_hidden=cfg.model.critic_hidden, log_std=cfg.model.log_std)
    model.load_state_dict(state["model"])
    model.eval()
    return cfg, model, state


def export_expert(checkpoint: str | Path, out: str | Path, notes: dict | None = None) -> Path:
    """Write the policy of `checkpoint` (see `load_expert`) to `out`, atomically. `notes`: free-form metadata
    (e.g. how the training data was made)."""
    cfg, model, state = load_expert(checkpoint)
    notes = dict(notes or {})
    manifest = Path(cfg.data.data).parent / "synth.json"  # trained on `interprior data synth` output: keep its recipe
    if "synth" not in notes and manifest.is_file():
        import json

        m = json.loads(manifest.read_text())
        notes["synth"] = {k: m[k] for k in ("seed", "clips", "skills", "objects", "defects") if k in m}
    payload = {
        "format": FORMAT, "config": config_to_dict(cfg),
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "obs_dim": state["obs_dim"], "act_dim": state["act_dim"], "samples": state.get("samples"),
        "iteration": state.get("iteration"), "clips": state.get("clips", []), "history": state.get("history", []),
        "notes": notes,
    }
    return save_checkpoint(out, payload)


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
