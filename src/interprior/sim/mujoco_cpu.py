"""CPU backend: MuJoCo's C engine, all envs stepped together by `mujoco.rollout` on a thread pool."""

from __future__ import annotations

import os

import mujoco
import numpy as np
import torch
from mujoco import rollout
from torch import Tensor

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

    def qpos(self) -> Tensor:
        return torch.from_numpy(self._state[:, self._qpos])

    def qvel(self) -> Tensor:
        return torch.from_numpy(self._state[:, self._qvel])

    def sensordata(self) -> Tensor:
        return torch.from_numpy(self._sensor)
