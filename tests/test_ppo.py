"""PPO, GAE, observation normaliser, actor-critic, checkpoints/run dir, progress helpers."""

from __future__ import annotations

import dataclasses
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from interprior.algos.ppo import PPO, PPOConfig, RolloutBuffer, bound_loss
from interprior.models.actor_critic import ActorCritic
from interprior.models.normalizer import RunningNorm
from interprior.train import checkpoint as ckpt_mod
from interprior.train.checkpoint import ConfigMismatch, load_checkpoint, save_checkpoint
from interprior.train.rundir import RunDir
from interprior.distributed import init_distributed, is_main, shard, world_size
from interprior.train.progress import Progress


# ------------------------------------------------------------------------------------------------------- GAE


def test_defaults_match_reference():
    c = PPOConfig()
    assert (c.num_envs, c.horizon, c.minibatch_size, c.epochs) == (4096, 32, 16384, 6)
    assert (c.actor_lr, c.critic_lr, c.gamma, c.gae_lambda, c.clip) == (2e-5, 1e-4, 0.99, 0.95, 0.2)
    assert (c.critic_coef, c.bound_coef, c.bound, c.max_grad_norm, c.normalize_advantage) == (5, 10, 1.0, None, True)
    m = ActorCritic(5, 3)
    assert [l.out_features for l in m.actor if isinstance(l, torch.nn.Linear)] == [1024, 1024, 512, 3]
    assert torch.allclose(m.log_std, torch.full((3,), -2.9)) and not m.log_std.requires_grad


def _fill(buf, rewards, values, dones, timeouts, timeout_values):
    for t in range(buf.horizon):
        buf.add(
            torch.zeros(buf.num_envs, buf.obs.shape[-1]), torch.zeros(buf.num_envs, buf.actions.shape[-1]),
            torch.zeros(buf.num_envs), torch.tensor(values[t]), torch.tensor(rewards[t]),
            torch.tensor(dones[t]), torch.tensor(timeouts[t]), torch.tensor(timeout_values[t]),
        )  # fmt: skip


def test_gae_hand_computed_with_timeout_and_termination():
    g, lam = 0.9, 0.8
    buf = RolloutBuffer(num_envs=2, horizon=4, obs_dim=3, act_dim=2)
    # env 0: timeout at t=1 (bootstrap with V(final obs)=10), termination at t=2; env 1: termination and
    # timeout together at t=0 (termination wins: no bootstrap), otherwise running.
    rewards = [[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]]
    values = [[0.5, 0.0], [0.6, 0.0], [0.7, 0.0], [0.8, 0.0]]
    dones = [[False, True], [False, False], [True, False], [False, False]]
    timeouts = [[False, True], [True, False], [False, False], [False, False]]
    tvals = [[0.0, 99.0], [10.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    _fill(buf, rewards, values, dones, timeouts, tvals)
    buf.compute_returns(torch.tensor([2.0, 1.0]), g, lam)
    # env 0 by hand
    a3 = 4 + g * 2.0 - 0.8  # 5.0, bootstrap with last value
    a2 = 3 + 0.0 - 0.7  # 2.3, terminated: no bootstrap, no carry
    a1 = 2 + g * 10.0 - 0.6  # 10.4, timeout: bootstrap with final-obs value, no carry
    a0 = (1 + g * 0.6 - 0.5) + g * lam * a1  # 8.528
    assert torch.allclose(buf.advantages[:, 0], torch.tensor([a0, a1, a2, a3]), atol=1e-5)
    assert torch.allclose(buf.returns[:, 0], torch.tensor([a0 + 0.5, a1 + 0.6, a2 + 0.7, a3 + 0.8]), atol=1e-5)
    # env 1: t=0 terminated (+timeout) → A=1; t=1..3 plain GAE with V=0, last value 1
    b3 = 1 + g * 1.0
    b2 = 1 + g * lam * b3
    b1 = 1 + g * lam * b2
    assert torch.allclose(buf.advantages[:, 1], torch.tensor([1.0, b1, b2, b3]), atol=1e-5)


def test_buffer_guards():
    buf = RolloutBuffer(2, 1, 3, 1)
    with pytest.raises(ValueError, match="timeout_values"):
        buf.add(torch.zeros(2, 3), torch.zeros(2, 1), torch.zeros(2), torch.zeros(2), torch.zeros(2),
                torch.zeros(2, dtype=torch.bool), torch.ones(2, dtype=torch.bool))  # fmt: skip
    buf.clear()
    with pytest.raises(RuntimeError, match="compute_returns"):
        PPO(ActorCritic(3, 1, hidden=(8,)), PPOConfig()).update(buf)


def test_bound_loss():
    inside = torch.tensor([[0.0, 0.99, -1.0], [1.0, -0.5, 0.3]])
    assert bound_loss(inside).item() == 0.0
    out = torch.tensor([[1.5, 0.0, -2.0]])
    assert bound_loss(out).item() == pytest.approx(0.25 + 1.0)
    mu = torch.tensor([[1.2, -1.3]], requires_grad=True)
    bound_loss(mu).backward()
    assert mu.grad[0, 0] > 0 and mu.grad[0, 1] < 0  # descent pushes μ back inside


# ------------------------------------------------------------------------------------------------- learning


def test_ppo_learns_one_step_bandit():
    torch.manual_seed(0)
    obs_dim, act_dim, n = 4, 2, 512
    w = torch.tensor([[0.6, -0.3], [0.2, 0.5], [0.0, 0.0], [-0.4, 0.1]])
    target = lambda o: o @ w  # noqa: E731
    model = ActorCritic(obs_dim, act_dim, hidden=(64, 64), log_std=-2.0)
    cfg = PPOConfig(num_envs=n, horizon=1, minibatch_size=256, epochs=4, actor_lr=3e-3, critic_lr=3e-3)
    ppo = PPO(model, cfg)
    buf = RolloutBuffer(n, 1, obs_dim, act_dim)
    eval_obs = torch.rand(1024, obs_dim) * 2 - 1

    def err():
        return (model.act(eval_obs, deterministic=True)[0] - target(eval_obs)).norm(dim=-1).mean().item()

    err0 = err()
    for _ in range(150):
        buf.clear()
        obs = torch.rand(n, obs_dim) * 2 - 1
        a, logp, v, _ = model.act(obs)
        r = -(a - target(obs)).pow(2).sum(-1)
        buf.add(obs, a, logp, v, r, torch.ones(n, dtype=torch.bool))  # every step terminates
        buf.compute_returns(torch.zeros(n), cfg.gamma, cfg.gae_lambda)
        stats = ppo.update(buf)
    assert err0 > 0.3
    assert err() < 0.08, (err0, err())
    assert set(stats) >= {"policy_loss", "value_loss", "bound_loss", "approx_kl", "clip_frac", "explained_variance"}
    assert all(isinstance(v, (int, float)) for v in stats.values())


# ----------------------------------------------------------------------------------------------- normaliser


def test_running_norm_statistics_and_state_dict():
    torch.manual_seed(1)
    norm = RunningNorm(3, clamp=5.0)
    scale, shift = torch.tensor([1.0, 10.0, 0.1]), torch.tensor([5.0, -3.0, 0.0])
    batches = [torch.randn(n, 3) * scale + shift for n in (7, 100, 33)]
    for b in batches:
        norm.update(b)
    allx = torch.cat(batches).double()
    assert norm.count.item() == 140
    assert torch.allclose(norm.mean, allx.mean(0), atol=1e-10)
    assert torch.allclose(norm.var, allx.var(0, unbiased=False), atol=1e-9)
    y = norm(allx.float())
    assert torch.allclose(y.mean(0), torch.zeros(3), atol=1e-4) and y.dtype == torch.float32
    assert norm(torch.tensor([[1e6, 1e6, -1e6]])).tolist() == [[5.0, 5.0, -5.0]]  # clamp ±5
    other = RunningNorm(3)
    other.load_state_dict(norm.state_dict())
    assert torch.equal(other(allx.float()), y)
    # normaliser travels inside the actor-critic's state_dict
    m = ActorCritic(3, 1, hidden=(8,))
    m.update_normalizer(allx)
    assert {"obs_norm.mean", "obs_norm.var", "obs_norm.count", "log_std"} <= set(m.state_dict())


def test_running_norm_in_place_and_differentiable():
    norm = RunningNorm(4)
    norm.update(torch.randn(50, 4) * 3 + 1)
    x = torch.randn(6, 4) * 10
    expect = ((x - norm.mean.float()) / torch.sqrt(norm.var + norm.eps).float()).clamp(-5.0, 5.0)
    assert torch.equal(norm(x), expect)  # the in-place path computes the same
    xg = x.clone().requires_grad_()
    norm(xg).sum().backward()  # a differentiable input takes the out-of-place path
    assert xg.grad is not None and torch.equal(xg.grad == 0, expect.abs() == 5.0)
    cols = torch.tensor([3, 1])
    assert torch.equal(norm(x[:, cols], cols), expect[:, cols])


def _shared_pair(obs_dim=7, act_dim=2):
    """Two identical actor-critics, the second told that columns 4..6 repeat columns 0..2."""
    torch.manual_seed(3)
    plain = ActorCritic(obs_dim, act_dim, hidden=(16, 8))
    shared = ActorCritic(obs_dim, act_dim, hidden=(16, 8))
    shared.load_state_dict(plain.state_dict())
    source = torch.tensor([0, 1, 2, 3, 0, 1, 2])
    shared.share_input_columns(source)
    return plain, shared, source


def _repeating_obs(n, source, seed=4):
    return (torch.randn(n, int(source.max()) + 1, generator=torch.Generator().manual_seed(seed)) * 2 + 1)[:, source]


def test_shared_input_columns_compute_the_same_function():
    plain, shared, source = _shared_pair()
    obs = _repeating_obs(64, source)
    for m in (plain, shared):
        m.update_normalizer(obs)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), shared.state_dict().values()))
    mu_p, v_p = plain(obs)
    mu_s, v_s = shared(obs)
    assert torch.allclose(mu_p, mu_s, atol=1e-6) and torch.allclose(v_p, v_s, atol=1e-6)
    with shared.fixed_weights():  # folded once for a rollout: the same numbers as folding per call
        assert torch.equal(shared(obs)[0], mu_s)
    # gradients: a repeated column's weights get the same gradient as in the plain network
    actions = torch.randn(64, 2)
    for m in (plain, shared):
        m.zero_grad()
        log_prob, _, value, _ = m.evaluate(obs, actions)
        (log_prob.mean() + value.square().mean()).backward()
    for (name, p), q in zip(plain.named_parameters(), shared.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name
    # parameters and checkpoints are unchanged; the model moves like any module
    assert plain.state_dict().keys() == shared.state_dict().keys()
    as64 = shared.to(torch.float64)
    assert torch.allclose(as64(obs.double())[0], mu_p.double(), atol=1e-6)
    shared.share_input_columns(None)
    assert torch.allclose(shared.float()(obs)[0], mu_p, atol=1e-6)


def test_shared_input_columns_guard_and_ppo_update():
    plain, shared, source = _shared_pair()
    with pytest.raises(ValueError):
        shared.share_input_columns(torch.tensor([0, 1, 2, 3, 5, 1, 2]))  # a column repeating a later one
    bad = _repeating_obs(32, source)
    bad[:, 6] += 1.0  # statistics from a run where column 6 was not a copy of column 2
    plain.update_normalizer(bad)
    shared.load_state_dict(plain.state_dict())
    with pytest.raises(ValueError, match="different statistics"):
        shared(bad)
    _, shared, source = _shared_pair()
    n = 64
    cfg = PPOConfig(num_envs=n, horizon=2, minibatch_size=32, epochs=2)
    ppo, buf = PPO(shared, cfg), RolloutBuffer(n, 2, 7, 2)
    for t in range(2):
        obs = _repeating_obs(n, source, seed=10 + t)
        a, logp, v, _ = shared.act(obs)
        buf.add(obs, a, logp, v, -a.square().sum(-1), torch.zeros(n, dtype=torch.bool))
    buf.compute_returns(torch.zeros(n), cfg.gamma, cfg.gae_lambda)
    before = [p.clone() for p in shared.parameters()]
    stats = ppo.update(buf)
    assert stats["num_minibatches"] == 8 and all(not torch.equal(a, b) for a, b in zip(before, shared.parameters()))
    first = shared.actor[0].weight.detach()
    assert torch.allclose(first[:, 4:] - first[:, :3], before[0][:, 4:] - before[0][:, :3], atol=1e-5)


# ------------------------------------------------------------------------------------------------ checkpoints


def test_checkpoint_crash_leaves_previous_intact(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"x": torch.arange(3), "step": 1})

    def broken_save(obj, f, *a, **k):
        f.write(b"half a checkpoint")
        raise RuntimeError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(path, {"x": torch.arange(5), "step": 2})
    monkeypatch.undo()
    got = load_checkpoint(path)
    assert got["step"] == 1 and torch.equal(got["x"], torch.arange(3))
    assert os.listdir(tmp_path) == ["ck.pt"]  # temp file cleaned up

    run = RunDir(tmp_path / "run")
    run.save(10, {"a": 1})
    monkeypatch.setattr(ckpt_mod.torch, "save", broken_save)
    with pytest.raises(RuntimeError):
        run.save(20, {"a": 2})
    monkeypatch.undo()
    assert run.latest().name == "step_000000010.pt" and run.load_latest()["a"] == 1


def _tiny_setup(seed=0):
    torch.manual_seed(seed)
    model = ActorCritic(6, 2, hidden=(16, 16))
    cfg = PPOConfig(num_envs=8, horizon=4, minibatch_size=8, epochs=2, actor_lr=1e-3, critic_lr=1e-3)
    return model, cfg, PPO(model, cfg)


def _rollout(model, cfg, seed):
    g = torch.Generator().manual_seed(seed)
    buf = RolloutBuffer(cfg.num_envs, cfg.horizon, 6, 2)
    for _ in range(cfg.horizon):
        obs = torch.randn(cfg.num_envs, 6, generator=g) * 3 + 1
        mu, v = model(obs)
        a = mu + 0.05 * torch.randn(mu.shape, generator=g)
        buf.add(obs, a, model.log_prob(mu, a).detach(), v.detach(), torch.randn(cfg.num_envs, generator=g),
                torch.rand(cfg.num_envs, generator=g) < 0.1)  # fmt: skip
    buf.compute_returns(torch.zeros(cfg.num_envs), cfg.gamma, cfg.gae_lambda)
    return buf


def test_resume_equality(tmp_path):
    model, cfg, ppo = _tiny_setup()
    ppo.update(_rollout(model, cfg, 0))
    run = RunDir(tmp_path, keep=2)
    run.save(5, {"model": model.state_dict(), "ppo": ppo.state_dict()})

    model2, _, ppo2 = _tiny_setup(seed=123)  # different init
    state = run.load_latest()
    model2.load_state_dict(state["model"])
    ppo2.load_state_dict(state["ppo"])
    assert state["step"] == 5
    for k, v in model.state_dict().items():
        assert torch.equal(v, model2.state_dict()[k]), k
    o1, o2 = ppo.optimizer.state_dict(), ppo2.optimizer.state_dict()
    assert o1["param_groups"] == o2["param_groups"]
    for k in o1["state"]:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(o1["state"][k][name], o2["state"][k][name])
    # continuing gives bit-identical results (same optimiser moments, same shuffling generator)
    buf = _rollout(model, cfg, 1)
    s1, s2 = ppo.update(buf), ppo2.update(buf)
    assert s1 == s2
    for p, q in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, q)


@dataclass
class _Net:
    hidden: tuple[int, ...] = (32, 32)
    log_std: float = -2.9


@dataclass
class _Cfg:
    lr: float = 2e-5
    net: _Net = field(default_factory=_Net)
    out: Path | None = None
    total_samples: int = 1000


def test_rundir_keep_latest_and_config(tmp_path):
    Net, Cfg = _Net, _Cfg
    run = RunDir(tmp_path / "r", keep=2)
    assert run.latest() is None and run.load_latest() is None
    cfg = Cfg(out=Path("/x/y"))
    run.write_config(cfg)
    assert run.load_config(Cfg) == cfg  # tuples, nested dataclasses and paths rebuilt
    for step in (1, 2, 3, 12):
        run.save(step, {"s": step})
    assert [s for s, _ in run.checkpoints()] == [3, 12]
    assert run.latest().name == "step_000000012.pt"
    (run.ckpt_dir / "latest.txt").unlink()  # pointer lost → falls back to the highest step
    assert run.latest().name == "step_000000012.pt"

    run.write_config(cfg)  # same config: fine
    run.write_config(dataclasses.replace(cfg, total_samples=5), ignore=("total_samples",))
    changed = dataclasses.replace(cfg, lr=1e-4, net=Net(hidden=(64,)))
    with pytest.raises(ConfigMismatch, match=r"lr: 2e-05 -> 0\.0001.*net\.hidden"):
        run.write_config(changed)
    assert run.latest() is not None
    run.write_config(changed, restart=True)
    assert run.latest() is None and run.load_config(Cfg) == changed


def test_run_written_before_a_field_existed_still_resumes(tmp_path):
    """A config.json without a field added since (it takes its default) is the same config; a changed value of an
    old field is still refused."""
    import json

    run = RunDir(tmp_path / "r")
    cfg = _Cfg(out=Path("/x/y"))
    run.write_config(cfg)
    saved = json.loads(run.config_path.read_text())
    del saved["lr"], saved["net"]["hidden"]  # as if both fields were added after this run started
    run.config_path.write_text(json.dumps(saved))
    run.write_config(cfg)  # defaults: the same config
    saved["total_samples"] = 7
    run.config_path.write_text(json.dumps(saved))
    with pytest.raises(ConfigMismatch, match="total_samples"):
        run.write_config(cfg)


def test_load_checkpoint_errors(tmp_path):
    from interprior.errors import DataFileError

    with pytest.raises(DataFileError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(DataFileError, match="cannot read"):
        load_checkpoint(tmp_path / "bad.pt")


# --------------------------------------------------------------------------------------- distributed / progress


def test_single_process_distributed_helpers(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    info = init_distributed(device="cpu")
    assert (info.rank, info.world_size, info.backend) == (0, 1, None)
    assert is_main() and world_size() == 1
    parts = [shard(10, r, 3) for r in range(3)]
    assert [list(p) for p in parts] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert sum(len(shard(5, r, 8)) for r in range(8)) == 5


@pytest.fixture
def clock(monkeypatch):
    """A settable clock for Progress (it reads the time through its module's `time.monotonic`): clock[0] seconds."""
    from types import SimpleNamespace

    from interprior.train import progress

    now = [1000.0]
    monkeypatch.setattr(progress, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


def test_progress_line(clock):
    out = io.StringIO()
    p = Progress(total_samples=1_000_000, every_s=0.0, stream=out)
    clock[0] += 10.0  # 10 s later
    assert p.update(200_000, reward=0.5, ep_len=torch.tensor(87.25))
    line = out.getvalue()
    assert "200.00k/1.00M" in line and "20.0%" in line and "samples/s" in line and "ETA" in line
    assert "reward 0.5" in line and "ep_len 87.25" in line
    assert not Progress(10, every_s=3600, stream=out).update(1)  # throttled


def test_tensorboard_logger(tmp_path):
    pytest.importorskip("tensorboard")
    from interprior.train.progress import TensorBoardLogger

    with TensorBoardLogger(tmp_path) as tb:
        tb.scalars(3, {"loss/policy": 0.1, "reward": torch.tensor(2.0), "skip": None})
    assert any(f.name.startswith("events.out.tfevents") for f in (tmp_path / "tb").iterdir())


def test_adaptive_learning_rate_follows_kl():
    model, cfg, _ = _tiny_setup()
    cfg = dataclasses.replace(cfg, actor_lr=0.3, critic_lr=0.6, desired_kl=0.01)  # far too large: KL explodes
    ppo = PPO(model, cfg)
    stats = ppo.update(_rollout(model, cfg, 0))
    actor, critic = (g["lr"] for g in ppo.optimizer.param_groups)
    assert actor < 0.3 and stats["actor_lr"] == actor
    assert critic == pytest.approx(2 * actor)  # both scaled alike
    model2, cfg2, _ = _tiny_setup()
    cfg2 = dataclasses.replace(cfg2, actor_lr=1e-6, critic_lr=1e-6, desired_kl=0.01)  # far too small: KL ≈ 0
    ppo2 = PPO(model2, cfg2)
    ppo2.update(_rollout(model2, cfg2, 0))
    assert ppo2.optimizer.param_groups[0]["lr"] > 1e-6
    # constant rates when off
    model3, cfg3, ppo3 = _tiny_setup()
    ppo3.update(_rollout(model3, cfg3, 0))
    assert [g["lr"] for g in ppo3.optimizer.param_groups] == [1e-3, 1e-3]


def test_config_overrides():
    from interprior.train.checkpoint import apply_overrides
    from interprior.train.expert import ExpertConfig

    cfg = apply_overrides(ExpertConfig(), ["ppo.epochs=3", "env.termination.hand_contact_frames=20",
                                           "model.hidden=[64,32]", "env.init=start", "ppo.desired_kl=0.02"])
    assert cfg.ppo.epochs == 3 and cfg.env.termination.hand_contact_frames == 20 and cfg.model.hidden == (64, 32)
    assert cfg.env.init == "start" and cfg.ppo.desired_kl == 0.02
    for bad in ("ppo.nope=1", "nope.epochs=1", "ppo=1", "ppo.epochs"):
        with pytest.raises(ConfigMismatch, match="--set"):
            apply_overrides(ExpertConfig(), [bad])


def test_progress_eta_respects_time_limit(clock):
    p = Progress(1_000_000_000, stream=io.StringIO(), deadline_s=120.0)
    clock[0] += 10.0
    p.update(10_000)  # 1000 samples/s: the sample target is ~11 days away, the time limit 110 s
    line = p.line(10_000)
    assert "1.00k samples/s" in line and "ETA 1m50s" in line
