"""CPU backend: MuJoCo's C engine, all envs stepped together by `mujoco.rollout` on a thread pool.

Divergence: on an unstable state MuJoCo resets the env's MjData (and prints a warning, silenced here) and
`mujoco.rollout` stops stepping it, so its time falls short of the `substeps` it should have advanced; such envs,
and any left with NaN/inf or huge qpos/qvel, are reported by `diverged()` and put back to the model's default state
(see `interprior.sim.divergence`)."""

from __future__ import annotations

import os

import mujoco
import numpy as np
import torch
from mujoco import rollout
from torch import Tensor

from interprior.sim.divergence import HUGE, quiet_instability
from interprior.sim.randomization import apply_to_models, model_copies

_STATE = mujoco.mjtState.mjSTATE_FULLPHYSICS


class MujocoCpuBackend:
    """N copies of one MjModel. State lives in one float64 array [N, nstate] (time, qpos, qvel, ...);
    torch views of it are returned without copies."""

    def __init__(self, model: mujoco.MjModel, num_envs: int, substeps: int, nthread: int | None = None):
        self.model = model
        self.num_envs = num_envs
        self.substeps = substeps
        self.device = torch.device("cpu")
        self.dtype = torch.float64
        self.nthread = max(1, nthread or os.cpu_count() or 1)
        self._datas = [mujoco.MjData(model) for _ in range(self.nthread)]
        self._models = [model] * num_envs
        nstate = mujoco.mj_stateSize(model, _STATE)
        template = np.zeros(nstate)
        mujoco.mj_getState(model, self._datas[0], template, _STATE)
        self._default = template  # the model's default state (qpos0, at rest): where a diverged env goes
        self._state = np.tile(template, (num_envs, 1))
        self._out_state = np.zeros((num_envs, substeps, nstate))
        self._out_sensor = np.zeros((num_envs, substeps, model.nsensordata))
        self._ctrl = np.zeros((num_envs, substeps, model.nu))  # held constant over the substeps
        self._qpos = slice(1, 1 + model.nq)  # FULLPHYSICS layout: time, qpos, qvel, act, ...
        self._qvel = slice(1 + model.nq, 1 + model.nq + model.nv)
        self._sensor = np.zeros((num_envs, model.nsensordata))
        # rollout does not hand back the solver's warm start, so each call would start the constraint solver
        # cold; the last step's acceleration (from its two final velocities) is a good warm start for the next.
        self._warmstart = np.zeros((num_envs, model.nv))
        self._diverged = np.zeros(num_envs, dtype=bool)  # envs whose last step diverged
        self._pool = rollout.Rollout(nthread=self.nthread) if self.nthread > 1 else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def randomize(self, rand, env_ids: Tensor | None = None) -> None:
        """Per-env dynamics (friction, mass, inertia, centre of mass): rollout takes one model per env, so the
        shared model is copied on first use. Values are always relative to the nominal model."""

        if self._models[0] is self.model:
            self._models = model_copies(self.model, self.num_envs)
        apply_to_models(self._models, self.model, rand, env_ids)

    def reset(self, env_ids: Tensor, qpos: Tensor, qvel: Tensor) -> None:
        ids = env_ids.cpu().numpy()
        self._state[ids, 0] = 0.0
        self._state[ids, self._qpos] = qpos.detach().cpu().double().numpy()
        self._state[ids, self._qvel] = qvel.detach().cpu().double().numpy()
        self._state[ids, self._qvel.stop:] = 0.0  # act, history, ...
        self._sensor[ids] = 0.0  # no contacts measured before the first step
        self._warmstart[ids] = 0.0

    def snapshot(self) -> tuple[np.ndarray, ...]:
        """Copies of everything `step` reads (state, last sensors, solver warm start), for `restore`."""
        return self._state.copy(), self._sensor.copy(), self._warmstart.copy()

    def restore(self, snap: tuple[np.ndarray, ...]) -> None:
        """Back to a `snapshot` exactly (benchmarks step the envs and put them back)."""
        self._state[:], self._sensor[:], self._warmstart[:] = snap

    def step(self, ctrl: Tensor) -> None:
        self._ctrl[:] = ctrl.detach().cpu().double().numpy()[:, None, :]
        args = (self._models, self._datas, self._state, self._ctrl)
        kwargs = dict(nstep=self.substeps, state=self._out_state, sensordata=self._out_sensor, skip_checks=True,
                      initial_warmstart=self._warmstart)
        time_before = self._state[:, 0].copy()
        with quiet_instability():
            if self._pool is not None:
                self._pool.rollout(*args, **kwargs)
            else:
                rollout.rollout(*args, **kwargs)
        self._state[:] = self._out_state[:, -1]
        self._sensor[:] = self._out_sensor[:, -1]
        if self.substeps > 1:
            qvel = self._out_state[:, -2:, self._qvel]
            np.subtract(qvel[:, 1], qvel[:, 0], out=self._warmstart)
            self._warmstart /= self.model.opt.timestep
        self._check_divergence(time_before)

    def _check_divergence(self, time_before: np.ndarray) -> None:
        """Flag the envs that did not advance all substeps (MuJoCo reset them on an unstable state and rollout
        stopped) or hold NaN/inf/huge qpos or qvel, and put them back to the model's default state, at rest."""
        dt = self.model.opt.timestep
        short = self._state[:, 0] < time_before + (self.substeps - 0.5) * dt
        # `not <=` also catches NaN
        bad = ~(np.abs(self._state[:, self._qpos.start:self._qvel.stop]) <= HUGE).all(axis=1)
        np.logical_or(short, bad, out=self._diverged)
        if self._diverged.any():
            self._state[self._diverged] = self._default
            self._sensor[self._diverged] = 0.0
            self._warmstart[self._diverged] = 0.0

    def diverged(self) -> Tensor:
        """[num_envs] bool: envs whose last step diverged (they now hold the model's default state)."""
        return torch.from_numpy(self._diverged.copy())

    def qpos(self) -> Tensor:
        return torch.from_numpy(self._state[:, self._qpos])

    def qvel(self) -> Tensor:
        return torch.from_numpy(self._state[:, self._qvel])

    def sensordata(self) -> Tensor:
        return torch.from_numpy(self._sensor)
