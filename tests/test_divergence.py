"""Simulator divergence is detected per env, reset to a valid state, counted, reported once (not as MuJoCo's flood
of warnings) and ends the episode as `non_finite`, leaving the other envs alone."""

import dataclasses

import mujoco
import pytest
import torch

from interprior import schema
from interprior.assets.bodies import embodiment
from interprior.assets.scene import SceneConfig, build_scene
from interprior.mdp.terminations import early_termination
from interprior.sim.batched import BatchedSim
from interprior.sim.bench import standing_reset
from interprior.sim.divergence import DivergenceMonitor, bad_rows, quiet_instability
from interprior.sim.mujoco_cpu import MujocoCpuBackend

from mdp_fixtures import random_ref_state, sim_from_ref

N = 4


@pytest.fixture(scope="module")
def scene():
    return build_scene(SceneConfig(body=embodiment("full")))


def _sim(scene, backend=None):
    sim = BatchedSim(scene, backend or MujocoCpuBackend(scene.model, N, scene.config.substeps, nthread=2))
    sim.reset(torch.arange(N), standing_reset(scene, N))
    return sim


def _blow_up(sim, env: int) -> None:
    """Give one env an absurd velocity (like an enormous push): MuJoCo's instability check fires next step."""
    qpos, qvel = sim.backend.qpos().clone(), sim.backend.qvel().clone()
    qvel[env] = 1e12
    sim.backend.reset(torch.tensor([env]), qpos[[env]], qvel[[env]])


def test_cpu_divergence_is_flagged_reset_and_counted_once(scene, capfd):
    sim, twin = _sim(scene), _sim(scene)  # twin: the same envs without the blow-up
    zero = torch.zeros(N, schema.NUM_DOFS, dtype=torch.float64)
    for s in (sim, twin):
        s.step(targets=zero)
    _blow_up(sim, 1)
    huge = zero.clone()
    huge[3] = 1e9  # absurd PD targets: the torques make qacc blow up
    sim.step(targets=huge)
    twin.step(targets=zero)
    assert sim.diverged.tolist() == [False, True, False, True] and sim.diverged_total == 2
    state, other = sim.state(), twin.state()
    assert all(torch.isfinite(getattr(state, f.name).float()).all() for f in dataclasses.fields(state))
    assert torch.allclose(state.root_pos[1], torch.as_tensor(scene.model.qpos0[:3], dtype=torch.float32))
    keep = [0, 2]  # the other envs stepped exactly as without the divergence
    assert torch.equal(state.body_pos[keep], other.body_pos[keep])
    sim.step(targets=zero)
    assert not sim.diverged.any() and sim.diverged_total == 2
    _blow_up(sim, 0)
    sim.step(targets=zero)
    assert sim.diverged.tolist() == [True, False, False, False] and sim.diverged_total == 3
    out, err = capfd.readouterr()
    assert "unstable" not in out + err  # MuJoCo's per-env warnings are silenced ...
    lines = [line for line in err.splitlines() if "simulator diverged" in line]
    assert len(lines) == 1 and "in 2 env-steps" in lines[0] and "non_finite" in lines[0]  # ... for one line
    assert mujoco.get_mju_user_warning() is None  # the handler was only in place while stepping


def test_monitor_reports_periodically_and_other_warnings_pass(capsys):
    monitor = DivergenceMonitor(2, "cpu", report_every_s=0.0)
    monitor.record(torch.tensor([True, False]))
    monitor.record(torch.tensor([False, False]))  # no new divergence: no new line
    monitor.record(torch.tensor([True, True]))
    assert monitor.total == 3 and monitor.last.tolist() == [True, True]
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "in 1 env-step so far" in lines[0] and "in 3 env-steps" in lines[1]
    seen = []
    mujoco.set_mju_user_warning(seen.append)
    try:
        with quiet_instability():
            handler = mujoco.get_mju_user_warning()
            handler("Nan, Inf or huge value in QACC at DOF 0. The simulation is unstable. Time = 0.1.")
            handler("Pre-allocated contact buffer is full.")
        assert seen == ["Pre-allocated contact buffer is full."]
    finally:
        mujoco.set_mju_user_warning(None)
    assert bad_rows(torch.tensor([[0.0, 1e11], [0.0, 1.0], [float("nan"), 0.0]])).tolist() == [True, False, True]


def test_divergence_terminates_as_non_finite_only():
    groups = embodiment("full").resolved
    ref = random_ref_state(N)
    sim = sim_from_ref(ref)
    sim = dataclasses.replace(sim, root_pos=sim.root_pos.clone())
    sim.root_pos[:, 2] = 0.05  # every env also "fell": a diverged env still reports non_finite alone
    diverged = torch.tensor([False, True, False, False])
    terminated, reasons, _ = early_termination(sim, ref, torch.zeros(N, 2, dtype=torch.long), torch.randn(8, 3),
                                               torch.full((N,), 10), torch.zeros(N), groups, diverged=diverged)
    assert next(iter(reasons)) == "non_finite" and terminated.all()
    assert reasons["non_finite"].tolist() == diverged.tolist()
    assert reasons["fall"].tolist() == (~diverged).tolist()


@pytest.fixture(scope="module")
def clips(synth_data):
    return synth_data.clips("box", shortest=2)


def _env(clips, data, **kw):
    from interprior.envs.tracking import TrackingConfig, TrackingEnv

    cfg = TrackingConfig(num_envs=N, psi_slots=1, randomize_dynamics=False, threads=2, **kw)
    return TrackingEnv(clips, data.objects_dir, cfg)


def test_env_ends_diverged_episodes_as_non_finite(clips, synth_data):
    env, twin = _env(clips, synth_data, perturb_prob=0.0), _env(clips, synth_data, perturb_prob=0.0)
    for e in (env, twin):
        e.reset()
        e.step(torch.zeros(N, e.act_dim))
    _blow_up(env.sim, 2)
    step = env.step(torch.zeros(N, env.act_dim))
    obs, reward, terminated = step.obs, step.reward, step.terminated
    twin_step = twin.step(torch.zeros(N, twin.act_dim))
    t_obs, t_reward = twin_step.obs, twin_step.reward
    assert env.diverged_total == 1 and step.diverged.tolist() == [False, False, True, False]
    assert step.reasons["non_finite"].tolist() == [False, False, True, False] and terminated[2]
    assert not any(hit[2] for why, hit in step.reasons.items() if why != "non_finite")
    assert 2 in step.done_ids.tolist() and float(reward[2]) == 0.0
    assert torch.isfinite(obs).all() and torch.isfinite(step.final_obs).all()
    keep = [0, 1, 3]
    assert torch.equal(obs[keep], t_obs[keep]) and torch.equal(reward[keep], t_reward[keep])


def test_enormous_pushes_are_counted_not_hidden(clips, synth_data, capfd):
    """The reported case: random pushes set enormous. Every push diverges; the trainer's `ended_by/non_finite`
    (the per-reason sums of `step.reasons` over ended episodes) sees every one of them."""
    env = _env(clips, synth_data, perturb_prob=1.0, perturb_speed=1e12)
    env.reset()
    ended_by = {}
    for _ in range(3):
        step = env.step(torch.zeros(N, env.act_dim))
        for why, hit in step.reasons.items():
            ended_by[why] = ended_by.get(why, 0) + int(hit.sum())
        assert step.terminated.all() and torch.isfinite(step.obs).all()
    assert env.diverged_total == 3 * N and ended_by["non_finite"] == 3 * N and ended_by["fall"] == 0
    out, err = capfd.readouterr()
    assert "unstable" not in out + err and err.count("simulator diverged") == 1


def test_eval_tracking_reports_non_finite(clips, synth_data):
    from interprior.envs.tracking import TrackingConfig
    from interprior.eval.tracking import evaluate_tracking

    class Blower:
        """A 'policy' that blows up the first clip's env on its third step (the eval env has no pushes)."""

        def bind_env(self, env):
            self.env, self.calls = env, 0

        def act(self, obs, deterministic=True):
            self.calls += 1
            if self.calls == 3:
                _blow_up(self.env.sim, 0)
            return None, None, None, torch.zeros(obs.shape[0], self.env.act_dim)

    results, env, _ = evaluate_tracking(Blower(), clips, synth_data.objects_dir,
                                        TrackingConfig(threads=2, action_mode="residual"), max_frames=20)
    assert results[0].ended_by == "non_finite" and not results[0].success and env.diverged_total == 1
    assert results[1].ended_by != "non_finite"


def test_warp_backend_resets_diverged_worlds(scene):
    pytest.importorskip("mujoco_warp", reason="mujoco-warp is not installed")
    from interprior.sim.mujoco_warp import MujocoWarpBackend

    sim = _sim(scene, MujocoWarpBackend(scene.model, N, scene.config.substeps, device="cpu", graph=False))
    zero = torch.zeros(N, schema.NUM_DOFS)
    sim.step(targets=zero)
    qpos, qvel = sim.backend.qpos().clone(), sim.backend.qvel().clone()
    qvel[1] = float("nan")
    sim.backend.reset(torch.tensor([1]), qpos[[1]], qvel[[1]])
    sim.step(targets=zero)
    assert sim.diverged.tolist() == [False, True, False, False] and sim.diverged_total == 1
    assert torch.isfinite(sim.backend.qpos()).all() and torch.isfinite(sim.backend.qvel()).all()
    assert torch.isfinite(sim.state().body_pos).all()
