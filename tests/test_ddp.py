"""Two-process (gloo, CPU) torchrun check: parameters stay identical across ranks through PPO updates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_ppo_ranks_stay_in_sync(tmp_path):
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with the gloo backend is not available in this torch build")
    out = tmp_path / "report.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER), str(out)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("torchrun worker timed out after 120 s")
    if proc.returncode != 0 and ("Address family not supported" in proc.stderr or "errno: 97" in proc.stderr):
        pytest.skip("torchrun cannot open a local TCP rendezvous in this sandbox")
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    report = json.loads(out.read_text())
    assert report["world_size"] == 2
    assert len(report["max_diff"]) == 3
    assert all(d == 0.0 for d in report["max_diff"]), report["max_diff"]  # bit-identical on both ranks
    assert all(c > 0 for c in report["changed"]), report["changed"]  # and the updates did something
    # normaliser saw both ranks' data: 2 ranks x 8 envs x 4 steps per update
    assert report["count"] == [64.0, 128.0, 192.0]
    assert report["shards"] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
