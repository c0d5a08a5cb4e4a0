"""Shared fixtures.

- `synth_data`: a small synthetic data set (`interprior data synth`: 6 clips covering every skill and every object,
  two of them of the box, one of the cylinder) made once per test run in a temporary folder. Env, trainer,
  multi-object, replay and torchrun tests run on it, so they need no downloaded data.
- `sample_dir`: the real OMOMO sample in the ../shared folder beside the checkout, an extra real-data check where
  present. Tests that use it skip without it, or when INTERPRIOR_NO_SAMPLE is set (to see what a fresh clone runs:
  `INTERPRIOR_NO_SAMPLE=1 pytest -rs`).
- `hull_cache` (automatic): one convex-hull cache for the whole run, so every object mesh is decomposed at most once
  per run whichever test (or torchrun subprocess) loads it first: $INTERPRIOR_CACHE/hulls when INTERPRIOR_CACHE is
  set, else pytest's cache folder (.pytest_cache, kept between runs; `pytest --cache-clear` starts cold).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from interprior.viz.render import find_headless_backend  # noqa: E402  (imports no GL, no mujoco)

# Pick a headless GL backend before anything imports mujoco, but only one whose library is present.
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY") and find_headless_backend():
    os.environ["MUJOCO_GL"] = find_headless_backend()
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "omomo_sample"
NO_SAMPLE_ENV = "INTERPRIOR_NO_SAMPLE"  # set (to anything but "" or "0") to run as if the sample were absent

SYNTH_SEED = 0
SYNTH_CLIPS = 6  # skills cycle mod 4 and objects mod 5: six clips cover every skill and every object


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    if os.environ.get(NO_SAMPLE_ENV, "") not in ("", "0"):
        pytest.skip(f"OMOMO sample hidden by {NO_SAMPLE_ENV}={os.environ[NO_SAMPLE_ENV]}")
    if not (SAMPLE / "OMOMO_new").is_dir() or not (SAMPLE / "objects").is_dir():
        pytest.skip(f"sample OMOMO data not found at {SAMPLE} (the ../shared folder beside the checkout)")
    return SAMPLE


@pytest.fixture(scope="session", autouse=True)
def hull_cache(request, tmp_path_factory) -> Path:
    """The hull cache folder every object load of this run uses (see the module docstring)."""
    from interprior.assets.objects import default_cache_dir

    if os.environ.get("INTERPRIOR_CACHE"):
        yield default_cache_dir()
        return
    cache = getattr(request.config, "cache", None)  # None under `-p no:cacheprovider`
    root = cache.mkdir("interprior") if cache is not None else tmp_path_factory.mktemp("interprior-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTERPRIOR_CACHE", str(root))  # inherited by subprocesses (torchrun, the CLI)
        yield default_cache_dir()


@dataclass(frozen=True)
class SynthData:
    """A synthetic data set on disk: `clips_dir/<clip>.pt` (InterMimic format) and `objects_dir/<name>/<name>.obj`
    (every generated object, also those without clips)."""

    root: Path
    rows: list[dict] = field(default_factory=list)  # the generator's manifest rows (clip, skill, object, frames, ...)
    summary: dict = field(default_factory=dict)  # the generator's quality summary (`--check`)
    seed: int = SYNTH_SEED

    @property
    def clips_dir(self) -> Path:
        return self.root / "clips"

    @property
    def objects_dir(self) -> Path:
        return self.root / "objects"

    def names(self, object_name: str | None = None) -> list[str]:
        """Clip names (file stems), in generation order, optionally of one object."""
        return [r["clip"] for r in self.rows if object_name in (None, r["object"])]

    def path(self, name: str) -> Path:
        return self.clips_dir / f"{name}.pt"

    def clips(self, object_name: str | None = None, shortest: int | None = None) -> list:
        """Freshly loaded clips (callers may change them), optionally of one object, optionally the N shortest."""
        from interprior.data.intermimic import load_clip

        clips = [load_clip(self.path(n)) for n in self.names(object_name)]
        if shortest is not None:
            clips = sorted(clips, key=lambda c: (c.num_frames, c.name))[:shortest]
        return clips


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory) -> SynthData:
    """Made once per run (about 7 s): clips sub0_box_000 (reach), sub0_smallbox_001 (pickup), sub0_bigbox_002
    (carry), sub0_cylinder_003 (push), sub0_stool_004 (reach), sub0_box_005 (pickup), checked by the generator."""
    from interprior.data.synth.dataset import SynthOptions, write_dataset

    out = tmp_path_factory.mktemp("synth")
    result = write_dataset(SynthOptions(out=out, clips=SYNTH_CLIPS, seed=SYNTH_SEED, check=True))
    return SynthData(root=out, rows=list(result.rows), summary=dict(result.summary))


@pytest.fixture(scope="session")
def tiny_prior_run(synth_data, tmp_path_factory) -> Path:
    """A tiny Stage II run (48 samples, `prior_fixtures.tiny_distill_config`), trained once per test run and shared
    read-only by the steering, page and finetuning tests."""
    import torch

    from interprior.train.distill import PriorDistiller
    from prior_fixtures import tiny_distill_config

    before = torch.get_num_threads()
    root = tmp_path_factory.mktemp("tiny_prior") / "prior"
    PriorDistiller(tiny_distill_config(synth_data), root).train()
    torch.set_num_threads(before)
    return root


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test (restored after): small kernels, and a training run may share the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
