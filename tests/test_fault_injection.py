"""Fault injection over every trainer: each is stopped by SIGTERM, SIGINT, SIGHUP, a closed stdout pipe and a
SIGKILL in the middle of a checkpoint write, and has its newest checkpoint truncated; after each, the same command
again resumes at the sample count of the last checkpoint written, with nothing lost (none for the signals and the
pipe, at most one checkpoint interval for SIGKILL)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TINY_PRIOR = ["--set", "model.width=32", "--set", "model.heads=4", "--set", "model.layers=2",
              "--set", "model.ff_width=64", "--set", "model.token_hidden=[32]", "--set", "model.encoder_hidden=[32]",
              "--set", "model.decoder_hidden=[32]", "--set", "optim.horizon=4", "--set", "optim.epochs=1",
              "--set", "optim.minibatches=1"]
# SIGKILL on the second checkpoint write, half-way through the file (a real kill -9 mid-write)
KILL_MID_WRITE = """
import os, signal, sys
import interprior.train.rundir as rundir
from interprior.files import atomic_write
calls = []
def save_then_die(path, state):
    import torch
    calls.append(path)
    if len(calls) < 2:
        return rundir.__dict__['_real_save'](path, state)
    def half(f):
        import io
        buf = io.BytesIO(); torch.save(state, buf)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2]); f.flush(); os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    atomic_write(path, half)
rundir._real_save = rundir.save_checkpoint
rundir.save_checkpoint = save_then_die
from interprior.cli import main
sys.exit(main(sys.argv[1:]))
"""


LAUNCHED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_leftover_runs():
    """A failing assertion must not leave a training process running (each is asked for 1e9 samples)."""
    yield
    while LAUNCHED:
        proc = LAUNCHED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _launch(argv, script: str | None = None, **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-c", script, *argv] if script else [sys.executable, "-m", "interprior.cli", *argv]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    kw.setdefault("stdout", subprocess.PIPE)
    # as from an interactive terminal: this test may itself run in a background job (SIGINT ignored) or under
    # nohup (SIGHUP ignored), which the child would inherit and rightly respect
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT, preexec_fn=_default_signals,
                            **kw)
    LAUNCHED.append(proc)
    return proc


def _pointer(run: Path) -> str:
    p = run / "checkpoints" / "latest.txt"
    return p.read_text().strip() if p.is_file() else ""


def _wait_for_new_checkpoint(proc, run: Path, before: str, timeout: float = 300.0) -> None:
    """Until this process has written a checkpoint of its own (the pointer moved)."""
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise AssertionError(f"exited early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        now = _pointer(run)
        if now and now != before:
            return
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("no checkpoint written in time")


def _samples_in(run: Path) -> int:
    return int(torch.load(run / "checkpoints" / _pointer(run), weights_only=True)["samples"])


def _stopped_at(err: str) -> int:
    m = re.search(r"checkpoint written at iteration \d+, (\d+) samples", err)
    assert m, err[-2000:]
    return int(m.group(1))


def _resumed_at(out: str) -> int:
    m = re.search(r"resumed .* at iteration \d+, (\d+) samples", out)
    assert m, out[-2000:]
    return int(m.group(1))


def _stop(argv, run: Path, how: str) -> tuple[int, str, str]:
    """Start the command, let it write a checkpoint, stop it `how`; (exit code, stdout, stderr)."""
    before = _pointer(run)
    proc = _launch(argv)
    _wait_for_new_checkpoint(proc, run, before)
    if how == "pipe":
        lines = []
        while "samples/s" not in (lines[-1] if lines else ""):  # a progress line: the loop is printing
            lines.append(proc.stdout.readline())
            assert proc.poll() is None, proc.stderr.read()[-2000:]
        proc.stdout.close()  # `| head` has read enough
        err = proc.stderr.read()
        return proc.wait(timeout=300), "".join(lines), err
    proc.send_signal({"SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT, "SIGHUP": signal.SIGHUP}[how])
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def _fault_sequence(argv, run: Path) -> None:
    expected_code = {"SIGTERM": 143, "SIGINT": 130, "SIGHUP": 129, "pipe": 141}
    last = None
    for how in ("SIGTERM", "SIGINT", "SIGHUP", "pipe"):
        code, out, err = _stop(argv, run, how)
        assert code == expected_code[how], (how, code, err[-2000:])
        if last is not None:  # the same command again resumed where the previous stop left it
            assert _resumed_at(out) == last, how
        last = _stopped_at(err)
        assert _samples_in(run) == last, how  # the stop's checkpoint holds everything done: nothing lost

    # SIGKILL half-way through the second checkpoint write of a launch: the first one's samples survive
    proc = _launch(argv, script=KILL_MID_WRITE)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    assert _resumed_at(out) == last
    intact = _samples_in(run)
    assert intact > last and list((run / "checkpoints").glob(".step_*.tmp"))  # the killed write's temp file

    # the same command again: the temp file goes, the run resumes at the last checkpoint written
    code, out, err = _stop(argv, run, "SIGTERM")
    assert code == 143 and _resumed_at(out) == intact, err[-2000:]
    assert "left by a write that was killed half-way" in err
    assert not list((run / "checkpoints").glob(".step_*.tmp"))
    last = _stopped_at(err)

    # a truncated newest checkpoint: set aside with a message, the run goes on from the one before
    newest = run / "checkpoints" / _pointer(run)
    older = sorted(p for p in (run / "checkpoints").glob("step_*.pt") if p != newest)[-1]
    older_samples = int(torch.load(older, weights_only=True)["samples"])
    newest.write_bytes(newest.read_bytes()[:1000])
    code, out, err = _stop(argv, run, "SIGTERM")
    assert code == 143 and _resumed_at(out) == older_samples, err[-2000:]
    assert f"resuming from the intact {older.name}" in err and newest.with_name(newest.name + ".corrupt").is_file()


def _expert_argv(synth_data, out: Path) -> list[str]:
    return ["train", "expert", "--data", str(synth_data.clips_dir), "--objects", str(synth_data.objects_dir),
            "--object", "box", "--clips", synth_data.names("box")[0], "--out", str(out), "--envs", "2",
            "--samples", "1e9", "--config", str(ROOT / "configs" / "demo_expert.json"),
            "--set", "model.hidden=[16]", "--set", "ppo.horizon=2", "--set", "ppo.minibatch_size=4",
            "--set", "ppo.epochs=1", "--set", "env.psi_slots=1", "--set", "checkpoint_every_s=0.3",
            "--set", "torch_threads=1"]


def test_expert_survives_every_stop(synth_data, tmp_path):
    run = tmp_path / "expert"
    _fault_sequence(_expert_argv(synth_data, run), run)
    code, out, err = _stop(_expert_argv(synth_data, run), run, "SIGTERM")
    assert code == 143 and "training: " in out and "samples/s" in out, out[-2000:]  # a stopped run still reports


def test_prior_survives_every_stop(synth_data, tmp_path):
    from interprior.commands.demo import bundled_expert_path

    run = tmp_path / "prior"
    argv = ["train", "prior", "--expert", str(bundled_expert_path()), "--data", str(synth_data.clips_dir),
            "--objects", str(synth_data.objects_dir), "--out", str(run), "--envs", "2", "--samples", "1e9",
            "--set", f"data.clips=[\"{synth_data.names('box')[0]}\"]", "--set", "data.object_name=\"box\"",
            "--set", "checkpoint_every_s=0.3", "--set", "torch_threads=1", "--set", "env.psi_slots=1", *TINY_PRIOR]
    _fault_sequence(argv, run)
