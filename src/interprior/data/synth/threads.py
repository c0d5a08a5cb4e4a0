"""Run the generator single-threaded inside (BLAS and torch), whatever the process does outside.

The IK multiplies many tiny matrices (~100 x 70). OpenBLAS splits even those over all cores and spin-waits for
its threads; on a machine whose cores are busy with other work that made each IK iteration ~10x slower (5 ms
instead of 0.5 ms). The generator parallelises over clips instead (one process per worker).
"""

from __future__ import annotations

import contextlib
import ctypes
import re

import torch

_SETTERS = ("openblas_set_num_threads", "openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "scipy_openblas_set_num_threads64_")


def _openblas_libraries() -> list:
    try:
        maps = open("/proc/self/maps").read()
    except OSError:  # not Linux: leave BLAS alone
        return []
    libs = []
    for path in sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", maps))):
        try:
            libs.append(ctypes.CDLL(path))
        except OSError:
            continue
    return libs


def _blas_threads(lib, set_to: int | None) -> int | None:
    for name in _SETTERS:
        setter = getattr(lib, name, None)
        getter = getattr(lib, name.replace("set_", "get_"), None)
        if setter is not None and getter is not None:
            before = int(getter())
            if set_to is not None:
                setter(int(set_to))
            return before
    return None


@contextlib.contextmanager
def single_threaded():
    libs = _openblas_libraries()
    before = [_blas_threads(lib, 1) for lib in libs]
    torch_before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(torch_before)
        for lib, n in zip(libs, before):
            if n is not None:
                _blas_threads(lib, n)
