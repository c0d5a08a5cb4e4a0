"""Every body by name: the SMPL-X variants and the toy body (`interprior.assets.embodiment.EMBODIMENTS`), and the
Unitree G1, built from its model fetched at set-up (`interprior assets fetch g1`; until then an error says so)."""

from __future__ import annotations

from interprior.assets.embodiment import EMBODIMENTS, Embodiment
from interprior.assets.g1_body import g1_embodiment
from interprior.errors import InterpriorError

BODY_NAMES = (*EMBODIMENTS, "g1")


def embodiment(name: str) -> Embodiment:
    if name == "g1":
        return g1_embodiment()
    if name not in EMBODIMENTS:
        raise InterpriorError(f"unknown embodiment {name!r}; choose from {', '.join(BODY_NAMES)}")
    return EMBODIMENTS[name]
