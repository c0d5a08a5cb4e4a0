from __future__ import annotations

import os
from pathlib import Path

import pytest

from interprior.viz.render import find_headless_backend  # noqa: E402  (imports no GL, no mujoco)

# Pick a headless GL backend before anything imports mujoco, but only one whose library is present.
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY") and find_headless_backend():
    os.environ["MUJOCO_GL"] = find_headless_backend()
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "omomo_sample"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    if not (SAMPLE / "OMOMO_new").is_dir():
        pytest.skip(f"sample OMOMO data not found at {SAMPLE} (the ../shared folder beside the checkout)")
    return SAMPLE
