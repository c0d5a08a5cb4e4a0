"""Warp backend: MuJoCo Warp, all envs as worlds of one model, state as zero-copy torch views (float32).

The same compiled MjModel as the CPU backend goes to `mujoco_warp.put_model`; `put_data` makes `num_envs`
worlds. qpos, qvel, sensordata and ctrl are `wp.to_torch` views of the warp arrays, so reading state and
writing targets never copies through the host. A control step (write ctrl, then `substeps` x
`mujoco_warp.step`) is recorded once into a graph and replayed: a CUDA graph on GPUs, warp's CPU graph on the
CPU device where warp can record the model (there it halves the launch overhead and gives the same numbers as
eager stepping; models it cannot record step eagerly).

Divergence: MuJoCo Warp has no instability check, so after each step the worlds holding NaN/inf or huge qpos,
qvel or qacc are flagged (`diverged()`, a device mask, no host sync) and put back to the model's default state,
at rest, like MuJoCo's C engine does (see `interprior.sim.divergence`).
"""

from __future__ import annotations

from contextlib import contextmanager

import mujoco
import mujoco_warp as mjw
import numpy as np
import torch
import warp as wp
from torch import Tensor

from interprior.sim.divergence import bad_rows
from interprior.sim.randomization import (
    DERIVED_FIELDS,
    RANDOMIZED_FIELDS,
    DynamicsRandomization,
    nominal_fields,
    randomized_fields,
)

wp.config.log_level = max(wp.config.log_level, wp.LOG_WARNING)  # no banner or per-module compile messages

# Defaults sized for the HOI scene (humanoid + a 64-hull object) with about 2x headroom: with random actions
# and the humanoid pushed into a 64-hull table, peaks per world were 59 contacts / 237 constraint rows in
# MuJoCo Warp and 55-70 contacts / 220-300 rows in C MuJoCo (114 contacts / 550 rows with the humanoid lying
# flat after violent motion). nconmax is a per-world average (warp pools contacts over all worlds); njmax is a
# hard per-world limit. About 0.5 MB of device memory per world.
DEFAULT_NCONMAX = 128
DEFAULT_NJMAX = 768

# Overflow bits that mean "capacity exceeded, results are wrong" (solver iteration limits are not errors).
_CAPACITY_OVERFLOWS = {
    mjw.OverflowType.NEFC: "constraint rows > njmax: raise njmax",
    mjw.OverflowType.NJMAX_NNZ: "constraint Jacobian non-zeros overflow: raise njmax",
    mjw.OverflowType.BROADPHASE: "broadphase pairs > naconmax: raise nconmax",
    mjw.OverflowType.NARROWPHASE: "contacts > naconmax: raise nconmax",
    mjw.OverflowType.CCD: "convex collision contacts overflow: raise nconmax",
    mjw.OverflowType.CONTACT_MATCH: "contact sensor match overflow: raise nconmax",
}
_CAPACITY_MASK = int(sum(int(bit) for bit in _CAPACITY_OVERFLOWS))


class WarpOverflowError(RuntimeError):
    """A world ran out of contact or constraint capacity; its results since the last check are wrong."""


class MujocoWarpBackend:
    def __init__(self, model: mujoco.MjModel, num_envs: int, substeps: int, device: str = "cuda:0",
                 nconmax: int | None = None, njmax: int | None = None, graph: bool = True,
                 overflow_check_every: int | None = None):
        self.model = model
        self.num_envs = num_envs
        self.substeps = substeps
        self.wp_device = wp.get_device(device)
        self.device = torch.device(wp.device_to_torch(self.wp_device))
        self.dtype = torch.float32
        self.nconmax = nconmax or DEFAULT_NCONMAX
        self.njmax = njmax or DEFAULT_NJMAX
        self.use_graph = graph
        # Checking overflow reads a device flag on the host (a sync); on GPUs only every few steps.
        self.overflow_check_every = overflow_check_every or (10 if self.wp_device.is_cuda else 1)
        with wp.ScopedDevice(self.wp_device):
            self.m = mjw.put_model(model)
            self.m.opt.warn_overflow = 0  # no per-kernel printf spam; overflows are checked and raised below
            self.d = mjw.put_data(model, mujoco.MjData(model), nworld=num_envs, nconmax=self.nconmax,
                                  njmax=self.njmax)
        self._qpos = wp.to_torch(self.d.qpos)  # [N, nq] views, no copies
        self._qvel = wp.to_torch(self.d.qvel)
        self._sensordata = wp.to_torch(self.d.sensordata)
        self._ctrl = wp.to_torch(self.d.ctrl)
        self._time = wp.to_torch(self.d.time)
        self._act = wp.to_torch(self.d.act)
        self._warmstart = wp.to_torch(self.d.qacc_warmstart)
        self._overflow = wp.to_torch(self.d.overflow)
        self._qacc = wp.to_torch(self.d.qacc)
        self._qpos0 = torch.as_tensor(model.qpos0, dtype=self.dtype, device=self.device)  # where diverged go
        self._diverged = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        self._graph = None  # captured lazily on the first step; dropped when model arrays are replaced
        self._steps = 0
        self._nominal = None
        self._torch_stream = None  # (cuda stream handle, warp wrapper), cached so events are reused

    # --- SimBackend -----------------------------------------------------------------------------------------
    def reset(self, env_ids: Tensor, qpos: Tensor, qvel: Tensor) -> None:
        ids = env_ids.to(self.device, torch.long)
        self._qpos[ids] = qpos.detach().to(self.device, self.dtype)
        self._qvel[ids] = qvel.detach().to(self.device, self.dtype)
        # Like the CPU backend: time, activations and the solver warmstart start fresh, and no contacts are
        # reported until the next step. Other derived Data fields (xpos, contacts) are recomputed from
        # qpos/qvel by the next step's forward pass; nothing reads them in between.
        self._time[ids] = 0.0
        self._act[ids] = 0.0
        self._warmstart[ids] = 0.0
        self._sensordata[ids] = 0.0

    @property
    def graph_captured(self) -> bool:
        """Whether the step runs as a captured CUDA graph now (captured on the first step, dropped on changes)."""
        return self._graph is not None

    def step(self, ctrl: Tensor) -> None:
        self._ctrl.copy_(ctrl.detach())  # same device: a device copy (and float64 -> float32), no host trip
        with self._warp_scope():
            if self._graph is not None:
                wp.capture_launch(self._graph)
            else:
                self._substeps()  # eager: also compiles/loads every kernel before a capture
                if self.use_graph:
                    self._graph = self._capture()
        self._reset_diverged()
        self._steps += 1
        if self._steps % self.overflow_check_every == 0:
            self.check_overflow()

    def diverged(self) -> Tensor:
        """[num_envs] bool on the device: worlds whose last step diverged (they now hold the default state)."""
        return self._diverged

    def qpos(self) -> Tensor:
        return self._qpos

    def qvel(self) -> Tensor:
        return self._qvel

    def sensordata(self) -> Tensor:
        return self._sensordata

    # --- checks ---------------------------------------------------------------------------------------------
    def _reset_diverged(self) -> None:
        """Flag worlds with NaN/inf/huge qpos, qvel or qacc and reset them to qpos0 at rest, batched on the device
        (no host sync): time, activations, warm start and sensors start fresh as in `reset`."""
        bad = bad_rows(self._qpos, self._qvel, self._qacc)
        self._diverged = bad
        self._qpos.copy_(torch.where(bad[:, None], self._qpos0, self._qpos))
        for field in (self._qvel, self._qacc, self._warmstart, self._sensordata, self._act):
            field.masked_fill_(bad[:, None], 0.0)
        self._time.masked_fill_(bad, 0.0)

    def check_overflow(self) -> None:
        """Raise WarpOverflowError if any world exceeded its contact or constraint capacity."""
        flags = self._overflow & _CAPACITY_MASK
        if not bool(flags.any()):
            return
        worlds = torch.nonzero(flags).flatten().tolist()
        bits = 0
        for value in flags[flags != 0].tolist():
            bits |= int(value)
        reasons = "; ".join(text for bit, text in _CAPACITY_OVERFLOWS.items() if bits & int(bit))
        shown = ", ".join(map(str, worlds[:8])) + (" ..." if len(worlds) > 8 else "")
        raise WarpOverflowError(
            f"MuJoCo Warp overflow in {len(worlds)} world(s) [{shown}]: {reasons} "
            f"(now nconmax={self.nconmax} per world, njmax={self.njmax})"
        )

    # --- per-world dynamics ---------------------------------------------------------------------------------
    def randomize(self, rand: DynamicsRandomization, env_ids: Tensor | None = None) -> None:
        """Set per-world friction, mass, inertia and centre of mass (from the nominal model, so calls do not
        compound), then recompute the mass-dependent constants of every world."""
        rand.check(self.model)
        ids = torch.arange(self.num_envs, device=self.device) if env_ids is None else env_ids.to(self.device)
        if rand.num_envs != len(ids):
            raise ValueError(f"randomization has {rand.num_envs} envs, but {len(ids)} env ids were given")
        if self._nominal is None:
            self._nominal = nominal_fields(self.model, device=self.device, dtype=self.dtype)
        for name in RANDOMIZED_FIELDS + DERIVED_FIELDS:
            self._make_per_world(name)
        values = randomized_fields(self._nominal, rand.to(self.device, self.dtype))
        for name, value in values.items():
            wp.to_torch(getattr(self.m, name))[ids] = value
        with self._warp_scope():
            mjw.set_const(self.m, self.d, groups=mjw.SetConstGroup.FIXED | mjw.SetConstGroup.INERT0)

    def model_field(self, name: str) -> Tensor:
        """A model field as a torch view [1 or num_envs, ...] (leading dim 1 = shared by all worlds)."""
        return wp.to_torch(getattr(self.m, name))

    def _make_per_world(self, name: str) -> None:
        """Give a shared model array (leading dim 1) a leading world dimension, filled with the shared value.
        Kernels index model arrays by world % leading dim, so they pick this up without recompiling; the graph
        holds the old array's address, so it is captured again on the next step. One-off, through the host."""
        shared = getattr(self.m, name)
        if shared.shape[0] == self.num_envs:
            return
        values = shared.numpy()
        with self._warp_scope():  # later torch writes into the new array wait for its upload
            per_world = wp.array(np.broadcast_to(values, (self.num_envs, *values.shape[1:])).copy(),
                                 dtype=shared.dtype, device=self.wp_device)
        setattr(self.m, name, per_world)
        self._graph = None

    # --- internals ------------------------------------------------------------------------------------------
    def _substeps(self) -> None:
        for _ in range(self.substeps):
            mjw.step(self.m, self.d)

    def _capture(self):
        """Record one control step's substeps into a graph; recording runs nothing. Warp's CPU graphs cannot
        record every operation (a 64-hull object scene hit an unsupported strided copy in the sparse
        factorization): on the CPU device such a model keeps stepping eagerly. On CUDA a failed capture is an error."""
        try:
            with wp.ScopedCapture(device=self.wp_device) as capture:
                self._substeps()
        except NotImplementedError:
            if self.wp_device.is_cuda:
                raise
            self.use_graph = False
            return None
        return capture.graph

    @contextmanager
    def _warp_scope(self):
        """Run warp work on this device, ordered after the torch work already queued (ctrl, resets) and before
        the torch work queued later (state reads). No-op ordering on the CPU device, where both are eager."""
        with wp.ScopedDevice(self.wp_device):
            if not self.wp_device.is_cuda:
                yield
                return
            torch_stream = self._current_torch_stream()
            warp_stream = wp.get_stream(self.wp_device)
            warp_stream.wait_stream(torch_stream)
            yield
            torch_stream.wait_stream(warp_stream)

    def _current_torch_stream(self):
        stream = torch.cuda.current_stream(self.device)
        if self._torch_stream is None or self._torch_stream[0] != stream.cuda_stream:
            self._torch_stream = (stream.cuda_stream, wp.stream_from_torch(stream))
        return self._torch_stream[1]

