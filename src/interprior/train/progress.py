"""Console progress line and TensorBoard scalars; both silent on ranks other than 0."""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, TextIO

from interprior.distributed import is_main


def _si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.0f}"


def _duration(s: float) -> str:
    if not math.isfinite(s):
        return "--"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{sec:02d}s"


def _num(v: Any) -> float:
    return float(v.item()) if hasattr(v, "item") else float(v)


class Progress:
    """``update(samples, reward=..., ep_len=...)`` prints at most one line every ``every_s`` seconds::

        [ 1.31M/100.00M   1.3%] 21.4k samples/s  ETA 1h16m  reward 0.412  ep_len 87.3

    ``samples`` is the running total (all ranks together); the rate is a moving average over the last
    ``window_s`` seconds.
    """

    def __init__(
        self,
        total_samples: int,
        every_s: float = 5.0,
        window_s: float = 60.0,
        stream: TextIO | None = None,
        start_samples: int = 0,
        deadline_s: float | None = None,
    ):
        self.total = int(total_samples)
        self.every_s, self.window_s = float(every_s), float(window_s)
        self.stream = stream
        self.enabled = is_main()
        now = time.monotonic()
        self._hist: deque[tuple[float, int]] = deque([(now, int(start_samples))])
        self._last_print = now
        self.deadline = None if deadline_s is None else now + float(deadline_s)  # a time limit (--hours) ends first

    def rate(self) -> float:
        (t0, s0), (t1, s1) = self._hist[0], self._hist[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0

    def line(self, samples: int, **metrics: Any) -> str:
        rate = self.rate()
        eta = (self.total - samples) / rate if rate > 0 else math.inf
        if self.deadline is not None:
            eta = min(eta, max(self.deadline - time.monotonic(), 0.0))
        pct = 100.0 * samples / self.total if self.total > 0 else 0.0
        parts = [
            f"[{_si(samples):>7}/{_si(self.total)} {pct:5.1f}%]",
            f"{_si(rate)} samples/s",
            f"ETA {_duration(eta)}",
        ]
        parts += [f"{k} {_num(v):.4g}" for k, v in metrics.items() if v is not None]
        return "  ".join(parts)

    def update(self, samples: int, force: bool = False, **metrics: Any) -> bool:
        """Record the running sample count; print if ``every_s`` elapsed (or ``force``). Returns True if printed."""
        now = time.monotonic()
        self._hist.append((now, int(samples)))
        while len(self._hist) > 2 and now - self._hist[1][0] >= self.window_s:
            self._hist.popleft()
        if not self.enabled or (not force and now - self._last_print < self.every_s):
            return False
        self._last_print = now
        print(self.line(samples, **metrics), file=self.stream or sys.stdout, flush=True)
        return True


TB_SUFFIX = ".interprior"  # the event files a run writes end so: how --restart knows its own


class TensorBoardLogger:
    """``scalars(step, {"loss/policy": 0.1, ...})`` into ``<run_dir>/tb``; a no-op off rank 0."""

    def __init__(self, run_dir: str | Path, subdir: str = "tb"):
        self.writer = None
        if not is_main():
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("TensorBoard logging needs the `tensorboard` package (pip install tensorboard)") from e
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / subdir), filename_suffix=TB_SUFFIX)

    def scalars(self, step: int, values: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for k, v in values.items():
            if v is None:
                continue
            self.writer.add_scalar(k, _num(v), global_step=int(step))

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def __enter__(self) -> "TensorBoardLogger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
