"""The `--checkpoint` argument of the evaluation, demo and benchmark commands: `interprior.train.runs.load_run`,
after a look at the file's first bytes, so that a file no `torch.save` wrote (a text file, a video, a clip in
another format) is named as what it is instead of by the unpickler's error."""

from __future__ import annotations

from pathlib import Path

from interprior.errors import DataFileError
from interprior.train.runs import Run, load_run

TORCH_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save: a zip archive, or (legacy format) a pickle


def check_checkpoint_file(path: str | Path) -> None:
    """DataFileError naming `path` when it is a file that `torch.save` did not write."""
    path = Path(path)
    if not path.is_file():
        return  # a run directory, or missing: load_run says which
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        raise DataFileError(path, f"cannot read: {e.strerror or e}") from None
    if head.startswith(TORCH_MAGIC):
        return
    text = bool(head) and b"\0" not in head and all(b >= 32 or b in b"\t\n\r\f\v" for b in head[:64])
    what = "an empty file" if not head else "a text file" if text else "a file torch.save did not write"
    raise DataFileError(path, f"not a run directory or checkpoint ({what}); give a training run's directory, a "
                              "checkpoint file in its checkpoints/ folder, or an exported expert")


def load_checkpoint_arg(path: str | Path, kind: str | None = None) -> Run:
    """`load_run(path, kind)` with a clear error for a file that is not a checkpoint at all."""
    check_checkpoint_file(path)
    return load_run(path, kind=kind)
