"""Errors a user can act on. The CLI prints them as one line (no traceback) and exits with status 2."""

from __future__ import annotations

from pathlib import Path


class InterpriorError(Exception):
    """Base class for user-facing errors."""


class DataFileError(InterpriorError):
    """A motion or asset file is missing or malformed. The message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class RenderingUnavailable(InterpriorError):
    """Offscreen OpenGL is missing on this machine."""


class BackendUnavailable(InterpriorError):
    """The requested simulation backend or device cannot be used here."""
