"""Atomic H.264 MP4 writing of RGB frames with PyAV (imported lazily: ``av`` is optional), and the check that a
command's video outputs may be written (before the long work that produces them)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from interprior.errors import InterpriorError
from interprior.files import atomic_path

__all__ = ["VideoWriter", "check_outputs"]


def check_outputs(paths: Iterable[str | Path], option: str = "--video", force: bool = False) -> None:
    """InterpriorError naming `option` when an output would replace an existing file (unless `force`) or is a
    folder: called before any evaluation, so that results are not lost at the end of a long run."""
    paths = [Path(p) for p in paths]
    folders = [p for p in paths if p.is_dir()]
    if folders:
        raise InterpriorError(f"{option}: {folders[0]} is a folder, not a video file")
    existing = [p for p in paths if p.exists() or p.is_symlink()]
    if existing and not force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise InterpriorError(f"{option}: {existing[0]} exists{more}; pass --force to overwrite")


class VideoWriter:
    """Write RGB uint8 frames to an H.264 (yuv420p) MP4 with PyAV, atomically.

    Frames go to a temporary file in the destination directory, renamed onto ``path`` by :meth:`close`; if the
    ``with`` block raises (or :meth:`abort` is called), the temporary file is removed and ``path`` is untouched.
    yuv420p needs even dimensions: odd-sized frames are padded by one replicated row/column.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float = 30, *, crf: int = 20, preset: str = "fast"):
        if not (isinstance(fps, (int, float, Fraction)) and fps > 0 and math.isfinite(float(fps))):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        self.path = Path(path)
        self.fps = fps
        self.crf = int(crf)
        self.preset = preset
        self.frames_written = 0
        self._container = None
        self._stream = None
        self._size: tuple[int, int] | None = None  # (height, width) of the input frames
        self._closed = False
        self._atomic = None
        atomic = atomic_path(self.path)  # temp file beside `path`, given the umask's mode when it replaces it
        self._tmp = atomic.__enter__()
        self._atomic = atomic

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def _open(self, height: int, width: int) -> None:
        import av

        rate = Fraction(self.fps).limit_denominator(1001)
        self._container = av.open(str(self._tmp), mode="w", format="mp4")
        stream = self._container.add_stream("libx264", rate=rate)
        stream.width = width + (width % 2)
        stream.height = height + (height % 2)
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = 1 / rate
        stream.options = {"crf": str(self.crf), "preset": self.preset}
        self._stream = stream

    def write(self, frame: np.ndarray) -> None:
        """Append one ``[H, W, 3]`` uint8 RGB frame (all frames must have the same size)."""
        if self._closed:
            raise ValueError(f"{self.path}: VideoWriter is closed")
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be [H, W, 3] uint8 RGB, got {frame.shape} {frame.dtype}")
        height, width = frame.shape[:2]
        if self._size is None:
            self._size = (height, width)
            self._open(height, width)
        elif self._size != (height, width):
            raise ValueError(f"frame size changed from {self._size} to {(height, width)}")
        if height % 2 or width % 2:
            frame = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")

        import av

        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self.frames_written
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> Path:
        """Flush the encoder, close the file and move it onto ``path``. Returns ``path``."""
        if self._closed:
            return self.path
        if self.frames_written == 0:
            self.abort()
            raise ValueError(f"{self.path}: no frames were written")
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            self._container = None
            self._finish(None)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return self.path

    def abort(self) -> None:
        """Discard everything written so far (removes the temporary file)."""
        self._closed = True
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - the file is being thrown away anyway
                pass
            self._container = None
        self._finish(RuntimeError(f"{self.path}: video aborted"))

    def _finish(self, error: BaseException | None) -> None:
        """End the atomic write: move the file onto `path` (no error) or remove it."""
        atomic, self._atomic = self._atomic, None
        if atomic is not None:
            atomic.__exit__(type(error) if error else None, error, None)

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.abort()
