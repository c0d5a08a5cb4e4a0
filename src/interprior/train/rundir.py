"""A training run's output folder, and the rules that make it safe to leave a run for hours:

* **One run at a time**: a run holds an exclusive lock on its folder (``flock`` on the folder itself, released by
  the kernel when the process ends, however it ends); a second ``train`` on the same ``--out`` is refused.
* **Nothing written before the run can start**: the config is checked against an existing run first, the data and
  networks are built, and only then is ``config.json`` written; a failed start leaves the folder as it was.
* **Resume from the newest intact checkpoint**: a truncated or unreadable one is set aside (renamed
  ``*.pt.corrupt``) with a message, and the run goes on from the one before; temp files of a write killed
  half-way are removed.
* **``--restart`` removes only the run's own files**: ``checkpoints/step_*.pt``, ``checkpoints/latest.txt``, the
  TensorBoard event files the run wrote (``tb/*.interprior``), and replaces ``config.json`` only if it is a run
  config. Anything else in the folder is the user's and stays.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from interprior.config import (
    ConfigMismatch,
    config_diff,
    config_to_dict,
    dict_to_config,
    flatten,
    split_meta,
)
from interprior.errors import DataFileError, InterpriorError
from interprior.files import atomic_write_text, orphan_temp_files
from interprior.train.checkpoint import (
    RUN_MARK,
    STEP_RE,
    load_checkpoint,
    run_dir_kind,
    save_checkpoint,
)
from interprior.train.progress import TB_SUFFIX

try:  # POSIX; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

# config keys that may change when a run resumes: how long and how fast it runs, not what it learns (`init` is
# read only when a run starts)
RESUMABLE_KEYS = ("total_samples", "checkpoint_every_s", "torch_threads", "env.threads", "init",
                  "env.clip_weighting", "env.termination.hand_contact_frames", "expert_step_share",
                  "expert_step_samples", "expert_step_final", "optim.ema_decay")
# of those, the keys that change what is learned from then on (a curriculum): a change is recorded in config.json's
# "_changes"
SCHEDULE_KEYS = ("env.clip_weighting", "env.termination.hand_contact_frames", "expert_step_share",
                 "expert_step_samples", "expert_step_final")


def _with_defaults(cfg: Any, fields: dict) -> dict:
    """A saved config's fields with the fields added since it was written at their defaults (an older run still
    resumes); as written when a field has since been removed (the diff then names it)."""
    if not dataclasses.is_dataclass(cfg):
        return fields
    try:
        return config_to_dict(dict_to_config(type(cfg), fields))
    except (ConfigMismatch, TypeError, ValueError):
        return fields


class RunInUse(InterpriorError):
    """Another process is training in this run folder."""


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


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
        self._lock_fd: int | None = None

    # starting a run -----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def starting(self) -> Iterator[RunDir]:
        """Lock the folder for this process; if the block fails, leave the folder as it was before (a folder this
        call created is removed again when it holds nothing else)."""
        created = not self.root.exists()
        had_config = self.config_path.is_file()
        self.lock()
        try:
            yield self
        except BaseException:
            if not had_config and self.config_path.is_file() and not self.checkpoints():
                self.config_path.unlink()
            self.unlock()
            if created:
                for folder in (self.ckpt_dir, self.root):
                    with contextlib.suppress(OSError):
                        folder.rmdir()  # only when empty
            raise

    def lock(self) -> None:
        """Take the folder's exclusive lock (creating the folder); :class:`RunInUse` when another process has it."""
        if fcntl is None or self._lock_fd is not None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunInUse(f"{self.root} is in use: another interprior process is training in it; wait for it to end "
                           "(or stop it: its checkpoint is written on Ctrl-C / SIGTERM), or use another --out")
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # config -------------------------------------------------------------------------------------------------
    def _saved(self) -> tuple[dict, dict] | None:
        """(fields, notes) of the folder's config.json, None when there is none; a config.json that is no run's
        config is an error (it is the user's: nothing here may replace it)."""
        if not self.config_path.is_file():
            return None
        if run_dir_kind(self.root) is None:
            raise DataFileError(self.config_path, "exists and is not an interprior run config; it is left alone: "
                                                  "use another --out")
        return split_meta(json.loads(self.config_path.read_text()))

    def check_config(self, cfg: Any, restart: bool = False, ignore: tuple[str, ...] = ()) -> None:
        """Raise :class:`ConfigMismatch` naming the differing keys when the folder holds a run made with another
        config (unless ``restart``). Keys in ``ignore`` (dotted) may change between resumes. Writes nothing."""
        saved = self._saved()
        if saved is None or restart:
            return
        fields, current = _with_defaults(cfg, saved[0]), config_to_dict(cfg)
        diff = [k for k in config_diff(fields, current) if k not in ignore]
        if diff:
            a, b = flatten(fields), flatten(current)
            lines = ", ".join(f"{k}: {a.get(k, '<missing>')!r} -> {b.get(k, '<missing>')!r}" for k in diff)
            raise ConfigMismatch(f"{self.root} was created with a different config ({lines}); use another output "
                                 "directory, or --restart to discard the old run's checkpoints and curves")

    def write_config(self, cfg: Any, restart: bool = False, ignore: tuple[str, ...] = ()) -> None:
        """Check (see :meth:`check_config`) and write ``config.json``. With ``restart`` the old run's own files go
        first (see :meth:`remove_run_files`). A resumed run keeps the notes (``_preset``, ...) of the run it
        continues; see :meth:`record_notes`."""
        self.check_config(cfg, restart, ignore)
        saved = self._saved()
        notes = dict(saved[1]) if saved is not None and not restart else {}
        if saved is not None and not restart:
            old, new = flatten(_with_defaults(cfg, saved[0])), flatten(config_to_dict(cfg))
            changed = [f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in SCHEDULE_KEYS
                       if k in new and old.get(k) != new[k]]
            if changed:
                notes["_changes"] = [*notes.get("_changes", []), *changed]
        if restart:
            self.remove_run_files()
        self._write_json({**notes, **config_to_dict(cfg), RUN_MARK[0]: RUN_MARK[1]})

    def record_notes(self, notes: dict) -> None:
        """Add top-level notes (keys starting with ``_``: how the config was made) to ``config.json`` where it has
        none yet: a resumed run keeps those of the command that created it."""
        if not self.config_path.is_file():
            return
        fields, saved = split_meta(json.loads(self.config_path.read_text()))
        if any(k in saved for k in notes):
            return
        bad = [k for k in notes if not k.startswith("_")]
        if bad:
            raise ValueError(f"config notes must start with '_': {bad}")
        self._write_json({**saved, **notes, **fields})

    def _write_json(self, d: dict) -> None:
        atomic_write_text(self.config_path, json.dumps(d, indent=2, sort_keys=True) + "\n")

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
        found = [(int(m.group(1)), p) for p in self.ckpt_dir.iterdir() if (m := STEP_RE.match(p.name))]
        return sorted(found)

    def path_for(self, step: int) -> Path:
        return self.ckpt_dir / f"step_{step:09d}.pt"

    def latest(self) -> Path | None:
        """Newest checkpoint: the pointer's target if it exists, else the highest step on disk, else None."""
        if self.pointer.is_file():
            p = self.ckpt_dir / self.pointer.read_text().strip()
            if p.is_file() and STEP_RE.match(p.name):
                return p
        ckpts = self.checkpoints()
        return ckpts[-1][1] if ckpts else None

    def save(self, step: int, state: dict) -> Path:
        """Write checkpoint ``step`` (``state`` plus ``"step"``), move the pointer, keep the newest ``keep``."""
        path = save_checkpoint(self.path_for(step), {**state, "step": int(step)})
        atomic_write_text(self.pointer, path.name + "\n")
        for _, old in self.checkpoints()[: -self.keep]:
            if old != path:
                old.unlink(missing_ok=True)
        return path

    def latest_intact(self, map_location: Any = "cpu", set_aside: bool = False) -> tuple[dict, Path] | None:
        """(state, file) of the newest checkpoint that loads. Unreadable newer ones are reported on stderr and,
        with ``set_aside`` (a resuming run), renamed ``*.corrupt`` so that they leave the rotation. An error when
        checkpoints exist and none loads."""
        candidates = [p for _, p in reversed(self.checkpoints())]
        newest = self.latest()
        if newest is not None and newest in candidates:  # the pointer first, then by step
            candidates.remove(newest)
            candidates.insert(0, newest)
        problems = []
        for path in candidates:
            try:
                state = load_checkpoint(path, map_location=map_location)
            except DataFileError as e:
                problems.append(e)
                if set_aside:
                    path.rename(path.with_name(path.name + ".corrupt"))
                continue
            for e in problems:
                _warn(f"{e}{'; set aside as ' + e.path.name + '.corrupt' if set_aside else ''}; "
                      f"{'resuming' if set_aside else 'reading'} from the intact {path.name}")
            return state, path
        if problems:
            raise DataFileError(self.ckpt_dir, f"no intact checkpoint ({problems[0]}); --restart starts the run "
                                               "anew")
        return None

    def load_latest(self, map_location: Any = "cpu", tidy: bool = True) -> dict | None:
        """The newest intact checkpoint of a run about to resume; None for a new run. With ``tidy`` (the process
        that owns the folder) temp files of a killed write are removed and corrupt checkpoints set aside."""
        for tmp in (orphan_temp_files(self.ckpt_dir) + orphan_temp_files(self.root, "config.json")) if tidy else []:
            _warn(f"removed {tmp} ({tmp.stat().st_size / 1e6:.1f} MB), left by a write that was killed half-way")
            tmp.unlink(missing_ok=True)
        found = self.latest_intact(map_location, set_aside=tidy)
        return None if found is None else found[0]

    def remove_run_files(self) -> None:
        """What ``--restart`` removes: the old run's checkpoints, its pointer and temp files, its TensorBoard event
        files. Files the run did not write stay."""
        for _, p in self.checkpoints():
            p.unlink(missing_ok=True)
        self.pointer.unlink(missing_ok=True)
        for p in orphan_temp_files(self.ckpt_dir) + sorted(self.ckpt_dir.glob("step_*.pt.corrupt")):
            p.unlink(missing_ok=True)
        for p in sorted((self.root / "tb").glob(f"events.out.tfevents.*{TB_SUFFIX}")):
            p.unlink(missing_ok=True)

    clear_checkpoints = remove_run_files  # older name


def check_resume_inputs(root: Path, state: dict, clips: list[str], teacher: dict | None = None,
                        accept: bool = False) -> None:
    """A run resumes on what it trained on: the clips its last checkpoint recorded and (a prior) the same state of
    its teacher. A change is an error naming it unless ``accept`` (then a warning)."""
    problems = []
    saved = state.get("clips")
    if saved is not None and set(saved) != set(clips):
        added, removed = sorted(set(clips) - set(saved)), sorted(set(saved) - set(clips))
        show = lambda names: ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        problems.append("the selected clips changed since the last checkpoint ("
                        + "; ".join(p for p in (added and f"added: {show(added)}", removed and
                                                f"removed: {show(removed)}") if p) + ")")
    then = state.get("teacher")
    if teacher is not None and then is not None:
        if then.get("samples") != teacher.get("samples"):
            problems.append(f"the expert {teacher.get('path')} has trained on since the last checkpoint (then "
                            f"{then.get('samples')} samples, now {teacher.get('samples')})")
        before, now = then.get("skill_experts", {}), teacher.get("skill_experts", {})
        for skill in sorted(before.keys() | now.keys()):
            old, new = before.get(skill, {}).get("samples"), now.get(skill, {}).get("samples")
            if old != new or (skill in before) != (skill in now):
                problems.append(f"the {skill} skill expert changed since the last checkpoint (then "
                                f"{before.get(skill, {}).get('path', 'none')} at {old} samples, now "
                                f"{now.get(skill, {}).get('path', 'none')} at {new})")
    if not problems:
        return
    if accept:
        _warn(f"{root}: resuming although " + "; ".join(problems))
        return
    raise InterpriorError(f"{root}: not resumed: " + "; ".join(problems) + ". Pass --accept-changes to resume "
                          "anyway, or --restart / another --out to start a new run")


def load_run_checkpoint(path: str | Path, config_cls: type, kind: str | None = None) -> tuple[Any, dict, Path]:
    """(config, checkpoint dict, checkpoint file) from a run directory (its newest intact checkpoint) or a
    checkpoint file inside one (``RUN/checkpoints/step_*.pt``); clear errors naming the path otherwise. With
    ``kind``, a run of another kind is an error saying what it is."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(path, "no such run directory or checkpoint file")
    run = RunDir(path if path.is_dir() else path.parent.parent)
    found = run_dir_kind(run.root)
    if found is None:
        where = "in it" if path.is_dir() else "beside its checkpoints/ folder"
        raise DataFileError(path, f"not a training run (no interprior run config.json {where})")
    if kind is not None and found != kind:
        raise DataFileError(path, f"this is {'an' if found == 'expert' else 'a'} {found} run; "
                                  f"{'an' if kind == 'expert' else 'a'} {kind} is needed here")
    cfg = run.load_config(config_cls)
    if not path.is_dir():
        return cfg, load_checkpoint(path), path
    latest = run.latest_intact()
    if latest is None:
        raise DataFileError(path, "run directory has no checkpoint yet")
    return cfg, latest[0], latest[1]
