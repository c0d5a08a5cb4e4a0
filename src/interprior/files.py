"""Writing output files safely: atomically (temp file beside the target, fsync, ``os.replace``) and with the
permissions the user's umask gives a new file (``tempfile.mkstemp`` creates 0600, which would leave checkpoints,
configs, exports and videos unreadable to the user's group). Every writer of an output file goes through here."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

TMP_SUFFIX = ".tmp"  # temp files are ".<name>.<random>.tmp" beside their target: a killed write leaves one


def file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file under the current umask (e.g. 0644 under umask 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


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


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = TMP_SUFFIX) -> Iterator[Path]:
    """Yield a temp path beside ``path`` for a writer that needs a file name (a video encoder, ONNX); when the block
    ends normally the file gets the umask's mode and replaces ``path``; on any error it is removed and ``path`` is
    left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write(path: str | Path, write: Callable) -> Path:
    """Call ``write(fileobj)`` on a binary temp file beside ``path``, fsync, give it the umask's mode, then
    ``os.replace`` it onto ``path``: a crash mid-write leaves the previous file intact."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode()))


def orphan_temp_files(folder: str | Path, name: str = "*") -> list[Path]:
    """Temp files a killed :func:`atomic_write` of ``folder/<name>`` left behind."""
    folder = Path(folder)
    return sorted(folder.glob(f".{name}.*{TMP_SUFFIX}")) if folder.is_dir() else []
