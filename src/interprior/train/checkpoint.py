"""Atomic checkpoints and the run directory layout.

::

    <out>/config.json                     resolved config (dataclass → JSON), written once, checked on resume;
                                          top-level ``_`` keys note how it was made (``_preset``, ``_overlays``, ``_set``)
    <out>/checkpoints/step_000000123.pt   the last ``keep`` checkpoints
    <out>/checkpoints/latest.txt          name of the newest checkpoint (plain text pointer, no symlink)

A checkpoint is written to a temporary file in the same directory, flushed and fsync'ed, then moved over the
target with ``os.replace`` (atomic on POSIX and Windows): a crash mid-write leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import tempfile
import threading
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
from interprior.errors import DataFileError

_STEP_RE = re.compile(r"^step_(\d+)\.pt$")


def _fsync_dir(path: Path) -> None:
    try:  # make the rename itself durable; not possible on every platform
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: str | Path, write) -> Path:
    """Call ``write(fileobj)`` on a temp file beside ``path``, fsync, then ``os.replace`` it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Atomically ``torch.save`` ``state`` to ``path``."""
    return _atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path, map_location: Any = "cpu", weights_only: bool = True) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors, containers, numbers, strings)."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except Exception as e:  # truncated / foreign file
        raise DataFileError(path, f"cannot read checkpoint ({type(e).__name__}: {e})") from e


# ------------------------------------------------------------------------------------------------------- run dir


# config keys that may change when a run resumes: how long and how fast it runs, not what it learns (`init` is
# read only when a run starts)
RESUMABLE_KEYS = ("total_samples", "checkpoint_every_s", "torch_threads", "env.threads", "init")


class RunDir:
    """A training run's output directory: config.json + rotating checkpoints + a ``latest.txt`` pointer."""

    def __init__(self, out: str | Path, keep: int = 3):
        if keep < 1:
            raise ValueError("keep must be >= 1")
        self.root = Path(out)
        self.ckpt_dir = self.root / "checkpoints"
        self.config_path = self.root / "config.json"
        self.pointer = self.ckpt_dir / "latest.txt"
        self.keep = keep

    # config -------------------------------------------------------------------------------------------------
    def write_config(self, cfg: Any, restart: bool = False, ignore: tuple[str, ...] = ()) -> None:
        """Write ``config.json``; if the run dir already has a different one, raise :class:`ConfigMismatch`
        naming the differing keys, unless ``restart`` (then old checkpoints are deleted and the config replaced).
        Keys in ``ignore`` (dotted, e.g. ``"total_samples"``) may change between resumes. A resumed run keeps the
        notes (``_preset``, ...) of the run it continues; see :meth:`record_notes`."""
        current = config_to_dict(cfg)
        notes: dict = {}
        if self.config_path.is_file() and not restart:
            saved, notes = split_meta(json.loads(self.config_path.read_text()))
            if dataclasses.is_dataclass(cfg):
                try:  # fields added since the run was written take their defaults (an older run still resumes)
                    saved = config_to_dict(dict_to_config(type(cfg), saved))
                except (ConfigMismatch, TypeError, ValueError):
                    pass  # a field since removed: compare as written, the diff names it
            diff = [k for k in config_diff(saved, current) if k not in ignore]
            if diff:
                a, b = flatten(saved), flatten(current)
                lines = ", ".join(f"{k}: {a.get(k, '<missing>')!r} -> {b.get(k, '<missing>')!r}" for k in diff)
                raise ConfigMismatch(
                    f"{self.root} was created with a different config ({lines}); "
                    "use another output directory, or --restart to discard the old run"
                )
        if restart:
            self.clear_checkpoints()
            shutil.rmtree(self.root / "tb", ignore_errors=True)  # the old run's curves would overlap the new ones
        self._write_json({**notes, **current})

    def record_notes(self, notes: dict) -> None:
        """Add top-level notes (keys starting with ``_``: how the config was made) to ``config.json`` where it has
        none yet: a resumed run keeps those of the command that created it."""
        if not self.config_path.is_file():
            return
        fields, saved = split_meta(json.loads(self.config_path.read_text()))
        if saved:
            return
        bad = [k for k in notes if not k.startswith("_")]
        if bad:
            raise ValueError(f"config notes must start with '_': {bad}")
        self._write_json({**notes, **fields})

    def _write_json(self, d: dict) -> None:
        text = json.dumps(d, indent=2, sort_keys=True) + "\n"
        _atomic_write(self.config_path, lambda f: f.write(text.encode()))

    def load_config(self, cls: type) -> Any:
        if not self.config_path.is_file():
            raise DataFileError(self.config_path, "no config.json in this run directory")
        try:
            return dict_to_config(cls, json.loads(self.config_path.read_text()))
        except ValueError as e:
            raise DataFileError(self.config_path, f"not JSON ({e})") from e
        except ConfigMismatch as e:
            raise DataFileError(self.config_path, str(e)) from e

    # checkpoints --------------------------------------------------------------------------------------------
    def checkpoints(self) -> list[tuple[int, Path]]:
        """(step, path) of the checkpoints on disk, oldest first."""
        if not self.ckpt_dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.ckpt_dir.iterdir() if (m := _STEP_RE.match(p.name))]
        return sorted(found)

    def path_for(self, step: int) -> Path:
        return self.ckpt_dir / f"step_{step:09d}.pt"

    def latest(self) -> Path | None:
        """Newest checkpoint: the pointer's target if it exists, else the highest step on disk, else None."""
        if self.pointer.is_file():
            p = self.ckpt_dir / self.pointer.read_text().strip()
            if p.is_file():
                return p
        ckpts = self.checkpoints()
        return ckpts[-1][1] if ckpts else None

    def save(self, step: int, state: dict) -> Path:
        """Write checkpoint ``step`` (``state`` plus ``"step"``), move the pointer, keep the newest ``keep``."""
        path = save_checkpoint(self.path_for(step), {**state, "step": int(step)})
        _atomic_write(self.pointer, lambda f: f.write((path.name + "\n").encode()))
        for _, old in self.checkpoints()[: -self.keep]:
            if old != path:
                old.unlink(missing_ok=True)
        return path

    def load_latest(self, map_location: Any = "cpu") -> dict | None:
        p = self.latest()
        return None if p is None else load_checkpoint(p, map_location=map_location)

    def clear_checkpoints(self) -> None:
        for _, p in self.checkpoints():
            p.unlink(missing_ok=True)
        self.pointer.unlink(missing_ok=True)


def load_run_checkpoint(path: str | Path, config_cls: type) -> tuple[Any, dict, Path]:
    """(config, checkpoint dict, checkpoint file) from a run directory (its latest checkpoint) or a checkpoint
    file inside one (``RUN/checkpoints/step_*.pt``); clear errors naming the path otherwise."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(path, "no such run directory or checkpoint file")
    run = RunDir(path if path.is_dir() else path.parent.parent)
    cfg = run.load_config(config_cls)
    ckpt = run.latest() if path.is_dir() else path
    if ckpt is None:
        raise DataFileError(path, "run directory has no checkpoint yet")
    return cfg, load_checkpoint(ckpt), ckpt


@contextlib.contextmanager
def interrupt_on_sigterm():
    """Inside the block SIGTERM (``kill``, a scheduler's stop) raises KeyboardInterrupt like Ctrl-C, so a training
    loop writes its checkpoint before it stops. Background jobs started by a shell ignore SIGINT; this is how they
    stop cleanly. A no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
