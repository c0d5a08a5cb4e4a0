"""Stopping a training run without losing work. Inside :func:`checkpoint_on_stop`, Ctrl-C (SIGINT), SIGTERM (``kill``,
a scheduler's stop), SIGHUP (a closed terminal or ssh session) and a closed stdout pipe (``train ... | head``) all
end the loop the same way: the checkpoint is written, one line on stderr says so, and the process exits with
128 + the signal's number (130, 143, 129; 141 for the pipe), as a shell expects of a process its signal ended.
A loop that passes a :class:`StopRequest` is stopped at its next safe point instead (the end of the iteration under
way, seconds away), so its checkpoint lies between iterations and a resumed run continues exactly; a second signal
stops it at once."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP) if hasattr(signal, "SIGHUP") else (signal.SIGTERM,)
SIGPIPE = getattr(signal, "SIGPIPE", 13)


class Stopped(KeyboardInterrupt):
    """The run was stopped by signal ``signum``; the command exits with ``128 + signum``."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopRequest:
    """A stop a signal asked for, honoured where the loop calls `check` (between iterations)."""

    def __init__(self):
        self.signum: int | None = None

    def check(self) -> None:
        if self.signum is not None:
            raise Stopped(self.signum)


def exit_code(stop: KeyboardInterrupt) -> int:
    """The exit status for a stop: 128 + its signal (Ctrl-C: 130)."""
    return stop.exit_code if isinstance(stop, Stopped) else 128 + signal.SIGINT


@contextlib.contextmanager
def stop_on_signals(request: StopRequest | None = None) -> Iterator[None]:
    """Inside the block SIGTERM and SIGHUP raise :class:`Stopped` like Ctrl-C raises KeyboardInterrupt (background
    jobs started by a shell ignore SIGINT; these are how they stop), unless the process was started ignoring them.
    With a `request`, the first of them (Ctrl-C too) only records itself there. A no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        if request is not None and request.signum is None:
            request.signum = signum
            print(f"{signal.Signals(signum).name}: stopping after the iteration under way (send it again to stop "
                  "at once)", file=sys.stderr, flush=True)
            return
        raise Stopped(signum)

    # a signal the process was started ignoring stays ignored: `nohup` (SIGHUP) asked the run to outlive its
    # terminal, and a shell's background job ignores SIGINT the same way
    wanted = STOP_SIGNALS + ((signal.SIGINT,) if request is not None else ())
    previous = {s: signal.signal(s, _raise) for s in wanted if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def silence_stdout() -> None:
    """Point stdout at /dev/null: its reader is gone, and Python's exit-time flush would fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


@contextlib.contextmanager
def checkpoint_on_stop(save: Callable[[], object], where: Callable[[], str],
                       request: StopRequest | None = None) -> Iterator[None]:
    """Run a training loop; on Ctrl-C, SIGTERM, SIGHUP or a closed stdout, call ``save()``, say so on stderr
    (``where()`` names the point reached) and re-raise as a stop (:class:`Stopped` for signals and the pipe). With
    a `request`, signals stop the loop where it calls ``request.check()``."""
    with stop_on_signals(request):
        try:
            yield
        except BrokenPipeError:
            silence_stdout()
            save()
            print(f"stdout was closed: checkpoint written at {where()}", file=sys.stderr, flush=True)
            raise Stopped(SIGPIPE) from None
        except KeyboardInterrupt as stop:
            # a second signal while saving would cut the write short: the atomic write keeps the previous one
            save()
            name = signal.Signals(stop.signum).name if isinstance(stop, Stopped) else "SIGINT"
            print(f"interrupted ({name}): checkpoint written at {where()}", file=sys.stderr, flush=True)
            raise
