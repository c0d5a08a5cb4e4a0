"""Simulator divergence: detect it per env, put the env back to a valid state, count it, say so once in a while.

MuJoCo's C engine, on a NaN/inf or huge (> 1e10) qpos, qvel, qacc or ctrl, prints "Nan, Inf or huge value in
QACC ... The simulation is unstable" and resets the MjData to the model's default state; `mujoco.rollout` then
stops stepping that env for the rest of the call. MuJoCo Warp checks nothing: the world's state turns NaN. Both
backends therefore report, after each step, a bool mask of the envs that diverged (`backend.diverged()`), and
reset those envs to the model's default state (qpos0, at rest) so nothing downstream ever reads NaN.
`BatchedSim` keeps the mask and a running count (`DivergenceMonitor`); the envs end those episodes with the
reason ``non_finite``. MuJoCo's flood of printed warnings is silenced during stepping (`quiet_instability`) in
favour of one line printed the first time and at most once a minute after that while the count grows.
"""

from __future__ import annotations

import math
import sys
import time
from contextlib import contextmanager

import mujoco
import torch
from torch import Tensor

HUGE = 1e10  # MuJoCo's mjMAXVAL: values above it count as diverged, like MuJoCo's own checks
UNSTABLE = "simulation is unstable"  # in every MuJoCo instability warning (BADQPOS, BADQVEL, BADQACC, BADCTRL)
REASON = "non_finite"  # the termination reason of a diverged env's episode (`interprior.mdp.terminations`)


def bad_rows(*arrays: Tensor) -> Tensor:
    """[N] bool: rows holding a NaN, an inf or a value above `HUGE` in magnitude in any of the [N, ...] arrays."""
    bad = None
    for a in arrays:
        rows = ~(a.abs() <= HUGE).reshape(a.shape[0], -1).all(dim=-1)  # NaN compares False: counted as bad
        bad = rows if bad is None else bad | rows
    return bad


@contextmanager
def quiet_instability():
    """While inside: MuJoCo's instability warnings are dropped (the backends detect and count divergence
    themselves); any other MuJoCo warning still goes to the previous handler, or to stderr. The previous handler
    is restored on exit, so code outside the simulator's stepping sees MuJoCo's usual behaviour."""
    previous = mujoco.get_mju_user_warning()

    def handler(message: str) -> None:
        if UNSTABLE in message:
            return
        if previous is not None:
            previous(message)
        else:
            print(f"MuJoCo warning: {message}", file=sys.stderr, flush=True)

    mujoco.set_mju_user_warning(handler)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


class DivergenceMonitor:
    """The last step's diverged mask and the running count of diverged env-steps of one simulator.

    On GPUs the count stays on the device; it is read (a sync) only every `check_every` steps to decide whether
    to print, or when a caller reads `total`."""

    def __init__(self, num_envs: int, device, report_every_s: float = 60.0, check_every: int | None = None,
                 stream=None):
        device = torch.device(device)
        self.last = torch.zeros(num_envs, dtype=torch.bool, device=device)  # [N] envs that diverged last step
        self._total = torch.zeros((), dtype=torch.long, device=device)
        self.report_every_s = report_every_s
        self.check_every = check_every or (1 if device.type == "cpu" else 10)
        self.stream = stream  # None: sys.stderr at the time of printing
        self.reported = 0  # the count the last printed line showed
        self._last_print = -math.inf
        self._steps = 0

    @property
    def total(self) -> int:
        """Diverged env-steps since the simulator was made."""
        return int(self._total)

    def record(self, mask: Tensor) -> None:
        """One step's [N] diverged mask (on the simulator's device)."""
        self.last = mask
        self._total += mask.sum()
        self._steps += 1
        if self._steps % self.check_every == 0:
            self.maybe_report()

    def maybe_report(self, force: bool = False) -> bool:
        """Print one line if the count grew since the last line and the last line is `report_every_s` old (the
        first divergence is reported at once). -> whether a line was printed."""
        total = self.total
        now = time.monotonic()
        if total <= self.reported or (not force and now - self._last_print < self.report_every_s):
            return False
        print(f"interprior: simulator diverged in {total} env-step{'s' if total != 1 else ''} so far (MuJoCo "
              f"instability: NaN, inf or huge state); those envs were reset and their episodes end as {REASON} "
              f"(ended_by/{REASON})", file=self.stream or sys.stderr, flush=True)
        self.reported, self._last_print = total, now
        return True
