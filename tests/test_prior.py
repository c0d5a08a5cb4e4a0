"""Stage II model kernels (padding, hypersphere, KL, per-episode ε, ONNX) and a tiny end-to-end distillation from
the bundled demo expert on one synthetic clip: checkpoint + resume, the goals evaluation CLI, ONNX export."""

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from interprior.mdp.goals import Goal, GoalLayout
from interprior.models.prior import (GoalPolicy, MaskedGoalPrior, PriorModelConfig, gaussian_kl, sphere_latent)
from prior_fixtures import PICKUP, TINY, tiny_distill_config

LAYOUT = GoalLayout()


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models on a shared 2-core machine


def _model(state_dim=20, act_dim=5, seed=0, **cfg) -> MaskedGoalPrior:
    torch.manual_seed(seed)
    return MaskedGoalPrior(state_dim, act_dim, LAYOUT, PriorModelConfig(**TINY, **cfg)).eval()


def _goal(n: int, g: torch.Generator, p: float = 0.3) -> Goal:
    k = LAYOUT.num_tokens
    return Goal(full=torch.randn(n, k, LAYOUT.feature_size, generator=g),
                bits=torch.rand(n, k, LAYOUT.bit_size, generator=g) < p,
                defined=torch.ones(n, k, LAYOUT.bit_size, dtype=torch.bool),
                time=torch.rand(n, k, generator=g), layout=LAYOUT)


def test_all_hidden_goal_tokens_are_padded_out():
    g = torch.Generator().manual_seed(0)
    model = _model()
    goal = _goal(4, g)
    goal.bits[:, 1] = False  # token 1 fully hidden
    goal.bits[:, 3] = False
    state = model.state_norm(torch.randn(4, model.state_dim, generator=g))
    with torch.no_grad():
        mu, logvar = model.prior(state, goal.features(), goal.bits, goal.time)
        other = goal.full.clone()
        other[:, [1, 3]] = 100.0 * torch.randn(4, 2, LAYOUT.feature_size, generator=g)
        other_time = goal.time.clone()
        other_time[:, [1, 3]] = 7.0
        # raw features of hidden tokens and of hidden entries, and the hidden tokens' times: nothing changes
        mu2, logvar2 = model.prior(state, other, goal.bits, other_time)
    assert torch.equal(mu, mu2) and torch.equal(logvar, logvar2)
    # ...while a given component does change the output
    goal.bits[:, 1, 0] = True
    with torch.no_grad():
        mu3, _ = model.prior(state, goal.full, goal.bits, goal.time)
    assert not torch.allclose(mu, mu3)
    # the all-hidden goal is well defined (the state token is never padded)
    with torch.no_grad():
        mu0, _ = model.prior(state, goal.full, torch.zeros_like(goal.bits), goal.time)
    assert torch.isfinite(mu0).all()


def test_latents_lie_on_the_unit_sphere():
    g = torch.Generator().manual_seed(1)
    mu, logvar = 5.0 * torch.randn(64, 64, generator=g), torch.randn(64, 64, generator=g)
    for eps in (torch.randn(64, 64, generator=g), torch.zeros(64, 64)):
        z = sphere_latent(mu, logvar, eps)
        assert torch.allclose(z.norm(dim=-1), torch.ones(64), atol=1e-6)
    # the decoder only ever sees sphere latents: the training path too
    model = _model()
    seen = []
    model.decoder.register_forward_hook(lambda m, inp, out: seen.append(inp[0][:, model.state_dim:]))
    goal = _goal(3, g)
    model.forward_train(torch.randn(3, model.state_dim, generator=g), goal, torch.randn(3, 64, generator=g))
    GoalPolicy(model, 3).act(torch.randn(3, model.state_dim, generator=g), goal)
    assert len(seen) == 2 and all(torch.allclose(z.norm(dim=-1), torch.ones(3), atol=1e-5) for z in seen)


def test_a_fresh_latent_carries_its_mean():
    """A fresh model's sampled latents point where their means do (σ small): otherwise the decoder learns to ignore
    z and the goal never reaches the action."""
    g = torch.Generator().manual_seed(2)
    model = _model(initial_logvar=-6.0)
    goal = _goal(32, g)
    with torch.no_grad():
        out = model.forward_train(torch.randn(32, model.state_dim, generator=g), goal, torch.randn(32, 64, generator=g))
    for mu, logvar in ((out["mu_p"], out["logvar_p"]), (out["mu_q"], out["logvar_q"])):
        z = sphere_latent(mu, logvar, torch.randn(mu.shape, generator=g))
        assert (z * torch.nn.functional.normalize(mu, dim=-1)).sum(-1).min() > 0.8
    # at σ ≈ 1 (PyTorch's initialisation, the default) they would not: the noise of 64 dimensions outweighs the mean
    loose = MaskedGoalPrior(20, 5, LAYOUT, PriorModelConfig(**TINY))
    with torch.no_grad():
        out = loose.forward_train(torch.randn(32, 20, generator=g), goal, torch.randn(32, 64, generator=g))
    z = sphere_latent(out["mu_p"], out["logvar_p"], torch.randn(32, 64, generator=g))
    assert (z * torch.nn.functional.normalize(out["mu_p"], dim=-1)).sum(-1).mean() < 0.5
    with pytest.raises(ValueError, match="initial_logvar"):
        PriorModelConfig(initial_logvar=5.0)


def test_a_goal_reading_decoder_reads_the_given_goal_only():
    """decoder_reads_goal: with z fixed, a given goal entry changes the action, a hidden one does not; the paper's
    decoder reads no goal at all."""
    g = torch.Generator().manual_seed(4)
    z = sphere_latent(torch.randn(3, 64, generator=g), torch.full((3, 64), -6.0), torch.zeros(3, 64))
    goal = _goal(3, g)
    goal.bits[:, 2, 0] = True
    goal.bits[:, 2, 1] = False

    def moved(entry):  # token 2's entry moved by 3
        full = goal.full.clone()
        full[:, 2, entry] += 3.0
        return Goal(full, goal.bits, goal.defined, goal.time, LAYOUT)

    for reads in (True, False):
        model = _model(decoder_reads_goal=reads)
        torch.nn.init.normal_(model.action_head.weight)  # the fresh head is near zero
        s = model.state_norm(torch.randn(3, 20, generator=g))
        with torch.no_grad():
            act = lambda gl: model.decode_action(s, z, model.decoder_goal(gl.features(), gl.bits, gl.time))  # noqa: E731
            base, given, hidden = act(goal), act(moved(0)), act(moved(3))  # entry 3: body 1's x (bit 1, hidden)
        assert torch.equal(base, hidden)
        assert not torch.allclose(base, given) if reads else torch.equal(base, given)
    with pytest.raises(ValueError, match="decoder_reads_goal"):
        _model(decoder_reads_goal=True).decode_action(s, z)


def test_kl_matches_the_closed_form():
    # KL(N(1, 1) || N(0, 1)) = 1/2 per dimension
    assert torch.allclose(gaussian_kl(torch.ones(1, 3), torch.zeros(1, 3), torch.zeros(1, 3), torch.zeros(1, 3)),
                          torch.tensor([1.5]))
    # KL(N(mq, sq^2) || N(mp, sp^2)) = log(sp / sq) + (sq^2 + (mq - mp)^2) / (2 sp^2) - 1/2
    mq, sq, mp, sp = 0.3, 0.5, -1.0, 2.0
    expected = math.log(sp / sq) + (sq**2 + (mq - mp) ** 2) / (2 * sp**2) - 0.5
    got = gaussian_kl(torch.tensor([[mq]]), torch.tensor([[2 * math.log(sq)]]), torch.tensor([[mp]]),
                      torch.tensor([[2 * math.log(sp)]]))
    assert abs(float(got) - expected) < 1e-6
    same = gaussian_kl(torch.zeros(2, 4), torch.full((2, 4), 0.7), torch.zeros(2, 4), torch.full((2, 4), 0.7))
    assert torch.allclose(same, torch.zeros(2), atol=1e-7)


def test_episode_noise_is_fixed_within_an_episode():
    g = torch.Generator().manual_seed(2)
    model = _model()
    policy = GoalPolicy(model, 3, seed=5)
    state, goal = torch.randn(3, model.state_dim, generator=g), _goal(3, g)
    eps0 = policy.eps.clone()
    a0 = policy.act(state, goal)
    a1 = policy.act(state, goal)
    assert torch.equal(policy.eps, eps0) and torch.equal(a0, a1)
    policy.reset(torch.tensor([1]))
    assert torch.equal(policy.eps[[0, 2]], eps0[[0, 2]]) and not torch.equal(policy.eps[1], eps0[1])
    a2 = policy.act(state, goal)
    assert torch.equal(a2[[0, 2]], a0[[0, 2]]) and not torch.equal(a2[1], a0[1])
    assert GoalPolicy(model, 2, deterministic=True).eps.abs().sum() == 0


@pytest.mark.parametrize("decoder_reads_goal", [False, True])
def test_onnx_graph_matches_pytorch(decoder_reads_goal):
    from interprior.models.prior_onnx import export_onnx, max_difference, onnxruntime_problem

    problem = onnxruntime_problem()
    if problem:
        pytest.skip(problem)
    import tempfile
    from pathlib import Path

    model = _model(state_dim=30, act_dim=7, decoder_reads_goal=decoder_reads_goal, latent_scale=8.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, Path(tmp) / "prior.onnx")
        assert max_difference(model, path, batch=5) < 1e-4
    # the policy object on the onnxruntime runtime: same actions as on PyTorch, with the same per-episode ε
    g = torch.Generator().manual_seed(3)
    goal, state = _goal(5, g), torch.randn(5, 30, generator=g)
    fast, ref = GoalPolicy(model, 5, seed=1, runtime="onnx"), GoalPolicy(model, 5, seed=1)
    assert torch.equal(fast.eps, ref.eps) and fast.eps.abs().sum() > 0
    assert (fast.act(state, goal) - ref.act(state, goal)).abs().max() < 1e-4
    getting_up = torch.tensor([0, 1, 0, 1, 1])  # the get-up token through the exported graph too
    assert (fast.act(state, goal, getting_up) - ref.act(state, goal, getting_up)).abs().max() < 1e-4
    with pytest.raises(ValueError, match="runtime"):
        GoalPolicy(model, 1, runtime="tensorrt")


def test_last_layer_reads_token_zero_only():
    """The prior's last block computes token 0 alone; the result equals the full block's token 0."""
    g = torch.Generator().manual_seed(0)
    model = _model()
    block = model.blocks[-1]
    x = torch.randn(3, LAYOUT.num_tokens + 1, TINY["width"], generator=g)
    padding = torch.zeros(3, LAYOUT.num_tokens + 1, dtype=torch.bool)
    padding[0, 2:] = True
    with torch.no_grad():
        full, first = block(x, padding), block(x, padding, first_only=True)
    assert first.shape == (3, 1, TINY["width"])
    assert torch.allclose(full[:, :1], first, atol=1e-6)


# --- end to end ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic(synth_data):
    assert synth_data.names("box")[1] == PICKUP and synth_data.rows[5]["skill"] == "pickup"
    return synth_data


def _tiny_distill_config(synthetic):
    return tiny_distill_config(synthetic)


def test_learning_rate_schedule():
    from interprior.train.distill import DistillOptim

    constant = DistillOptim(lr=1e-3)
    assert constant.lr_at(0) == constant.lr_at(10**9) == 1e-3
    decay = DistillOptim(lr=1e-3, lr_decay_samples=(100, 300), lr_final_scale=0.1)
    assert decay.lr_at(0) == decay.lr_at(100) == 1e-3
    assert decay.lr_at(200) == pytest.approx(5.5e-4) and decay.lr_at(300) == decay.lr_at(10**6) == pytest.approx(1e-4)


def test_expert_step_share_schedule_and_execution(synthetic, tmp_path):
    """The expert-driven share falls linearly over its window to its final share (0 by default); an expert step
    executes the expert's label, a student step the student's action."""
    from interprior.config import OutOfRange
    from interprior.train.distill import DistillConfig, PriorDistiller

    sched = DistillConfig(expert_step_share=0.6, expert_step_samples=(100, 300))
    assert sched.expert_share_at(0) == sched.expert_share_at(100) == 0.6
    assert sched.expert_share_at(200) == pytest.approx(0.3) and sched.expert_share_at(300) == sched.expert_share_at(10**9) == 0
    assert DistillConfig(expert_step_share=0.5, expert_step_samples=(50, 50)).expert_share_at(50) == 0
    floor = DistillConfig(expert_step_share=0.5, expert_step_samples=(100, 300), expert_step_final=0.3)
    assert floor.expert_share_at(50) == 0.5 and floor.expert_share_at(200) == pytest.approx(0.4)
    assert floor.expert_share_at(300) == floor.expert_share_at(10**9) == pytest.approx(0.3)
    with pytest.raises(OutOfRange, match="expert_step_share"):
        DistillConfig(expert_step_share=1.5)
    with pytest.raises(OutOfRange, match="expert_step_final"):
        DistillConfig(expert_step_final=-0.1)

    for share in (1.0, 0.0):
        cfg = _tiny_distill_config(synthetic)
        cfg.expert_step_share, cfg.expert_step_samples = share, (10**9, 10**9)
        d = PriorDistiller(cfg, tmp_path / f"share{share}")
        d.env.reset()
        d._goal_obs = d.goal_env.start(reset=False)
        d.new_latents(torch.arange(cfg.env.num_envs))
        d._tracking_obs = d.env.observe()
        executed, step = [], d.goal_env.step
        d.goal_env.step = lambda a: (executed.append(a.clone()), step(a))[1]
        stats = d.collect()
        assert stats["rollout/expert_step_share"] == share
        gap = (torch.stack(executed) - d.buffer.label).abs().max()
        assert gap < 1e-6 if share == 1.0 else gap > 1e-3


def test_bf16_update_matches_float32_losses_and_keeps_float32_weights(synthetic, tmp_path, monkeypatch):
    """`optim.bf16`: the losses' forward pass runs in bfloat16 autocast, close to the float32 losses on the same
    batch; the weights and their gradients stay float32 and an update still changes them."""
    from interprior.algos.distill import distillation_losses
    from interprior.train.distill import PriorDistiller

    cfg = _tiny_distill_config(synthetic)
    cfg.optim.bf16 = True
    d = PriorDistiller(cfg, tmp_path / "bf16")
    d.env.reset()
    d._goal_obs = d.goal_env.start(reset=False)
    d.new_latents(torch.arange(cfg.env.num_envs))
    d._tracking_obs = d.env.observe()
    d.collect()
    batch = d.buffer.envs(torch.arange(cfg.env.num_envs))
    torch.manual_seed(0)
    exact = distillation_losses(d.model, batch, cfg.loss, 1e-3)
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = distillation_losses(d.model, batch, cfg.loss, 1e-3)
    assert float(low["total"].detach()) == pytest.approx(float(exact["total"].detach()), rel=0.05)
    before = [p.detach().clone() for p in d.model.parameters()]
    enabled, autocast = [], torch.autocast
    monkeypatch.setattr(torch, "autocast", lambda *a, **k: (enabled.append(k["enabled"]), autocast(*a, **k))[1])
    d.update()
    assert enabled and all(enabled)
    assert all(p.dtype == torch.float32 for p in d.model.parameters())
    assert any(not torch.equal(a, p) for a, p in zip(before, d.model.parameters()))


def test_skill_experts_label_the_clips_of_their_skill(synthetic, tmp_path):
    """A skill expert labels its skill's clips (by the manifest), the main expert every other clip; the record a
    resume checks names both; a malformed entry or a skill no clip has is refused by name."""
    from interprior.commands.demo import bundled_expert_path
    from interprior.errors import InterpriorError
    from interprior.train.checkpoint import load_checkpoint
    from interprior.train.distill import PriorDistiller
    from interprior.train.teacher import expert_labels

    reach = next(r["clip"] for r in synthetic.rows if r["object"] == "box" and r["skill"] == "reach")
    state = load_checkpoint(bundled_expert_path())
    state["model"] = {k: v * 1.25 if v.is_floating_point() else v for k, v in state["model"].items()}
    other = tmp_path / "reach_expert.pt"
    torch.save(state, other)

    cfg = _tiny_distill_config(synthetic)
    cfg.data = replace(cfg.data, clips=(reach, PICKUP))
    cfg.skill_experts = (f"reach={other}",)
    d = PriorDistiller(cfg, tmp_path / "run")
    assert d.teacher.clips_per_expert() == {"main": 1, "reach": 1}
    assert d.teacher.record["skill_experts"]["reach"]["path"] == str(other)
    env = d.env
    env.reset_to(torch.arange(4), torch.tensor([0, 1, 0, 1]), torch.zeros(4, dtype=torch.long), noise=False)
    obs = env.observe()
    labels = d.teacher.labels(env, obs)
    main = expert_labels(env, d.teacher.envs[0], d.teacher.experts[0].mu(obs))
    skill = expert_labels(env, d.teacher.envs[1], d.teacher.experts[1].mu(obs))
    on_reach = torch.tensor([name == reach for name in env.ref.clip_names])[env.clip_ids]
    assert on_reach.tolist() == [True, False, True, False] or on_reach.tolist() == [False, True, False, True]
    assert torch.equal(labels[on_reach], skill[on_reach]) and torch.equal(labels[~on_reach], main[~on_reach])
    assert (skill - main).abs().max() > 1e-3

    for entries, words in (((f"reach{other}",), "SKILL=EXPERT"), ((f"jump={other}",), "jump"),
                           ((f"reach={other}", f"reach={other}"), "more than one")):
        cfg.skill_experts = entries
        with pytest.raises(InterpriorError, match=words):
            PriorDistiller(cfg, tmp_path / "bad")


def test_prior_action_loss_trains_the_deployable_path():
    """With the optional prior-path imitation weighted, the prior network gets the imitation gradient; at weight 0
    the loss is the paper's and the term is only reported."""
    from interprior.train.distill import LossWeights, distillation_losses

    g = torch.Generator().manual_seed(3)
    model = _model().train()
    horizon, n = 2, 4
    batch = {"state_obs": torch.randn(horizon * n, 20, generator=g), "goal": _goal(horizon * n, g, p=1.0),
             "eps": torch.randn(horizon * n, 64, generator=g), "label": torch.rand(horizon * n, 5, generator=g),
             "first": torch.zeros(horizon, n, dtype=torch.bool), "horizon": horizon}
    grads = {}
    for w in (0.0, 1.0):
        model.zero_grad()
        losses = distillation_losses(model, batch, LossWeights(prior_action=w, kl_start=0.0, kl_end=0.0,
                                                               prior_norm=0.0, temporal=0.0), kl_weight=0.0)
        assert losses["action_prior"].requires_grad == (w > 0)
        losses["total"].backward()
        grads[w] = torch.cat([p.grad.flatten() for p in model.prior_out.parameters()])
        paper = losses["action"] + 0.1 * losses["reconstruction"]
        assert losses["total"].item() == pytest.approx((paper + w * losses["action_prior"]).item(), rel=1e-5)
    # the posterior is a residual on the prior, so the prior has a gradient either way; the term adds its own
    assert (grads[1.0] - grads[0.0]).abs().max() > 1e-3 * grads[0.0].abs().max()


def test_weight_average_is_kept_resumed_and_read(synthetic, tmp_path):
    """optim.ema_decay: each update folds the weights into their moving average, which the checkpoint keeps, a
    resume restores exactly, and `load_prior` (every reader of the run) returns; the live weights train as before."""
    from interprior.train.distill import PriorDistiller, load_prior

    cfg = _tiny_distill_config(synthetic)
    cfg.optim.ema_decay = 0.5
    first = PriorDistiller(cfg, tmp_path / "run")
    start = {k: v.clone() for k, v in first.model.state_dict().items()}
    first.train()  # two updates: ema = 0.25·start + 0.25·w1 + 0.5·w2
    live = first.model.state_dict()
    name = next(k for k, v in live.items() if v.is_floating_point() and not torch.equal(v, start[k]))
    ema = first.ema[name]
    assert not torch.equal(ema, live[name]) and not torch.equal(ema, start[name])
    assert (ema - start[name]).abs().max() < (live[name] - start[name]).abs().max()  # it lags the live weights
    _, model, state = load_prior(tmp_path / "run")
    assert torch.equal(model.state_dict()[name], ema) and torch.equal(state["model"][name], live[name])
    cfg.total_samples = 72
    second = PriorDistiller(cfg, tmp_path / "run")
    assert all(torch.equal(second.ema[k], v) for k, v in first.ema.items())
    assert torch.equal(second.model.state_dict()[name], live[name])
    # without the average nothing extra is kept and the readers get the live weights
    cfg.optim.ema_decay = 0.0
    plain = PriorDistiller(cfg, tmp_path / "plain")
    plain.train()
    assert plain.ema is None and "model_ema" not in torch.load(plain.run.latest(), weights_only=False)

@pytest.mark.slow  # the whole command line end to end (tens of seconds)
def test_distill_resume_eval_and_export(synthetic, tmp_path, capsys):
    from interprior.cli import main
    from interprior.train.distill import PriorDistiller

    cfg = _tiny_distill_config(synthetic)
    first = PriorDistiller(cfg, tmp_path / "run")
    first.train()
    assert first.iteration == 2 and first.samples == 48 and len(first.history) == 2
    lr = first.optimizer.param_groups[0]["lr"]  # the schedule's rate at the last update (24 samples in)
    assert lr == pytest.approx(cfg.optim.lr_at(24)) and lr < cfg.optim.lr
    assert all(math.isfinite(p["action"]) for p in first.history)
    # every buffered step carries its episode's ε: unchanged until an episode starts, fresh when one does
    buf = first.buffer
    same = (buf.eps[1:] == buf.eps[:-1]).all(-1)
    assert buf.first[1:].any() and torch.equal(same, ~buf.first[1:])
    assert first.expert.training is False and not any(p.requires_grad for p in first.expert.parameters())

    cfg.total_samples = 72  # asking for more continues the same run
    second = PriorDistiller(cfg, tmp_path / "run")
    assert second.iteration == 2 and second.samples == 48
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(first.generator.get_state(), second.generator.get_state())  # goals and ε continue the stream
    second.train()
    assert second.iteration == 3 and second.samples == 72 and len(second.history) == 3
    capsys.readouterr()

    # --min-move 0: score every snapshot, even one that hardly moves in these short horizons (the rule is below)
    assert main(["eval", "goals", "--checkpoint", str(tmp_path / "run"), "--goal", "snapshot",
                 "--max-frames", "40", "--min-move", "0"]) == 0
    table = capsys.readouterr().out
    assert PICKUP in table and "zero goal" in table and "success: prior + goal" in table
    assert "per skill: pickup" in table  # the data set's manifest names each clip's skill
    # an object target where the object already is would be met by standing still: in the first 30 frames the box
    # has not moved, so that episode is not scored; within 90 frames the pickup lifts it 72 cm, and the target is
    # timed at the largest lift, which the zero goal does not meet
    for frames, scored in (("30", 0), ("90", 1)):
        assert main(["eval", "goals", "--checkpoint", str(tmp_path / "run"), "--goal", "object", "--max-frames",
                     frames, "--json"]) == 0
        res = json.loads(capsys.readouterr().out)
        assert res["summary"]["episodes"] == scored and res["summary"]["unscored_episodes"] == 1 - scored
    assert res["episodes"][0]["baseline_success"] is False
    for goal in ("object", "object_path", "hand"):  # the steering user's goal types
        assert main(["eval", "goals", "--checkpoint", str(tmp_path / "run"), "--goal", goal, "--max-frames", "30",
                     "--json", "--min-move", "0"]) == 0
        res = json.loads(capsys.readouterr().out)
        assert res["summary"]["goal"] == goal and res["summary"]["per_skill"]["pickup"]["episodes"] == 1
        ep = res["episodes"][0]
        assert {"success", "baseline_success", "error_cm"} <= set(ep)
        if goal == "object_path":  # measured at every step
            assert ep["error_cm"] is not None and ep["error_cm"] >= 0.0
    assert main(["eval", "goals", "--checkpoint", str(tmp_path / "run"), "--goal", "full", "--max-frames", "20",
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    ep = res["episodes"][0]
    assert res["summary"]["goal"] == "full" and 1 <= ep["duration"] <= 20 and ep["frames"] == 20
    assert set(ep) >= {"success", "baseline_success", "error_cm", "baseline_error_cm"}

    # the prior under the expert's tracking protocol and rules, every goal bit on
    assert main(["eval", "tracking", "--checkpoint", str(tmp_path / "run"), "--no-baseline", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["summary"]["clips"] == 1 and 1 <= res["clips"][0]["duration"] <= res["clips"][0]["frames"]
    assert main(["eval", "tracking", "--checkpoint", str(tmp_path / "run"), "--no-baseline", "--json",
                 "--sample"]) == 0  # latents sampled per episode instead of the prior's mean: other actions
    sampled = json.loads(capsys.readouterr().out)["clips"][0]
    assert sampled["e_h_cm"] != res["clips"][0]["e_h_cm"]

    # generativity: sampled latents on one fixed goal spread apart; the ε = 0 run is one of them at distance > 0
    assert main(["eval", "goals", "--checkpoint", str(tmp_path / "run"), "--goal", "snapshot", "--latents", "3",
                 "--max-frames", "30", "--json", "--min-move", "0"]) == 0
    res = json.loads(capsys.readouterr().out)
    row = res["episodes"][0]
    assert res["summary"]["latents"] == 3 and row["pairwise_cm"] > 0.0 and row["to_mean_latent_cm"] > 0.0
    assert 0.0 <= row["sampled_success"] <= 1.0

    # the prior as one file: loads like the run, the same goal evaluation
    assert main(["train", "export", "--checkpoint", str(tmp_path / "run"), "--out", str(tmp_path / "prior.pt")]) == 0
    assert "exported the prior" in capsys.readouterr().out
    # a new run can start from the exported prior (a run whose folder is gone goes on); a misfit is refused
    from dataclasses import replace as dc_replace

    from interprior.errors import InterpriorError

    cfg.init = str(tmp_path / "prior.pt")
    carried = PriorDistiller(cfg, tmp_path / "run_init")
    assert carried.samples == 0 and "initialised from" in capsys.readouterr().out
    for a, b in zip(second.model.state_dict().values(), carried.model.state_dict().values()):
        assert torch.equal(a, b)
    wider = dc_replace(cfg, model=dc_replace(cfg.model, width=48))
    with pytest.raises(InterpriorError, match="does not fit"):
        PriorDistiller(wider, tmp_path / "run_misfit")
    assert not (tmp_path / "run_misfit" / "checkpoints").exists() or not any(
        (tmp_path / "run_misfit" / "checkpoints").iterdir())
    cfg.init = None
    for source in (tmp_path / "run", tmp_path / "prior.pt"):
        assert main(["eval", "goals", "--checkpoint", str(source), "--goal", "object", "--max-frames", "20",
                     "--json", "--min-move", "0"]) == 0
        res = json.loads(capsys.readouterr().out)
        if source == tmp_path / "run":
            from_run = res["episodes"]
    assert res["episodes"] == from_run
    # the goal table: every user goal type with ε = 0 and sampled, each row the same run as the single-type report
    assert main(["eval", "goals", "--checkpoint", str(tmp_path / "run"), "--goal", "table", "--max-frames", "20",
                 "--json", "--min-move", "0"]) == 0
    table = json.loads(capsys.readouterr().out)
    rows = {(r["goal"], r["latent"].startswith("sampled")): r for r in table["rows"]}
    assert set(rows) == {(g, s) for g in ("snapshot", "trajectory", "contact", "object", "object_path", "hand")
                         for s in (False, True)}
    single = [e["success"] for e in res["episodes"]]  # `--goal object --max-frames 20` of the file above
    assert rows[("object", False)]["success_rate"] == sum(single) / len(single)
    assert rows[("object", False)]["per_skill"]["pickup"]["episodes"] == 1
    assert table["summary"]["episodes"] == 12 and 0.0 <= table["summary"]["fall_rate"] <= 1.0
    assert main(["eval", "goals", "--checkpoint", str(tmp_path / "run"), "--goal", "table", "--sample"]) == 2
    assert "drop --sample" in capsys.readouterr().err  # the table draws both latents itself
    # the protocol, two checkpoints side by side on the same clips and seeds (the same prior twice: equal rows)
    svg = tmp_path / "protocol.svg"
    assert main(["eval", "protocol", "--checkpoint", str(tmp_path / "run"), "--checkpoint", str(tmp_path / "prior.pt"),
                 "--max-frames", "20", "--svg", str(svg), "--json"]) == 0
    proto = json.loads(capsys.readouterr().out)
    a, b = proto["rows"]
    for key in ("snap", "traj", "cont", "chain", "rinit", "fail"):
        assert a[key] == b[key] and (a[key] is None or 0.0 <= a[key] <= 1.0), key  # None: nothing scored
    assert a["episodes"]["rinit"] == 2 and a["episodes"]["chain"] + len(a["chain_left_out"]) == 1
    assert svg.read_text().count("<rect") >= 13
    assert main(["eval", "protocol", "--checkpoint", str(tmp_path / "run"), "--svg", str(svg)]) == 2  # exists

    assert main(["bench", "steer", "--checkpoint", str(tmp_path / "prior.pt"), "--steps", "20", "--json"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["steps"] == 20 and bench["steps_per_s"] > 0 and bench["real_time_multiple"] > 0
    assert bench["runtime"] == "torch"
    assert main(["bench", "steer", "--checkpoint", str(tmp_path / "prior.pt"), "--steps", "5", "--runtime", "onnx",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runtime"] == "onnx"

    # the demo shows a prior following object-only goals before the expert's table
    assert main(["demo", "--out", str(tmp_path / "demo"), "--clips", "1", "--no-video", "--json",
                 "--prior", str(tmp_path / "prior.pt")]) == 0
    out = capsys.readouterr()
    demo = json.loads(out.out)
    assert set(demo["goals"]) == {"object", "object_path"} and demo["clips"]
    assert demo["goals"]["object_path"]["summary"]["per_skill"]["pickup"]["episodes"] == 1
    assert "goal: object_path" in out.err and "zero goal" in out.err

    from interprior.models.prior_onnx import onnxruntime_problem

    assert main(["train", "export-prior", "--checkpoint", str(tmp_path / "run"), "--out",
                 str(tmp_path / "prior.onnx")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "prior.onnx").stat().st_size > 10_000
    if onnxruntime_problem() is None:
        diff = float(out.split("max |diff|")[1].split()[0])
        assert diff < 1e-4


def test_mean_latent_share_zeroes_episode_noise(synthetic, tmp_path):
    """`mean_latent_prob` episodes run at ε = 0 (the prior's mean direction); the others draw fresh noise."""
    from interprior.train.distill import PriorDistiller

    cfg = _tiny_distill_config(synthetic)
    cfg.mean_latent_prob = 1.0
    distiller = PriorDistiller(cfg, tmp_path / "all")
    ids = torch.arange(cfg.env.num_envs)
    distiller.eps[:] = 1.0
    distiller.new_latents(ids)
    assert distiller.eps.abs().sum() == 0
    distiller.cfg.mean_latent_prob = 0.0
    distiller.new_latents(ids)
    assert (distiller.eps.abs().sum(-1) > 0).all()

    from interprior.errors import InterpriorError
    from interprior.train.distill import student_env_config

    cfg.mean_latent_prob = 1.5
    with pytest.raises(InterpriorError, match="mean_latent_prob"):
        student_env_config(cfg)


def test_train_prior_cli_builds_from_the_expert(synthetic, tmp_path, capsys):
    from interprior.cli import build_parser
    from interprior.commands.demo import bundled_expert_path
    from interprior.commands.train import build_prior_config

    args = build_parser().parse_args(["train", "prior", "--expert", str(bundled_expert_path()),
                                      "--data", str(synthetic.clips_dir), "--objects", str(synthetic.objects_dir),
                                      "--out", str(tmp_path / "r"), "--set", "torch_threads=1",
                                      "--set", "loss.temporal=0.05"])
    cfg = build_prior_config(args)
    assert cfg.env.action_mode == "residual"  # the expert's env config; the student acts in delta mode
    assert cfg.student_actions == "delta"
    assert cfg.loss.temporal == 0.05 and cfg.torch_threads == 1 and cfg.model.width == 128
    assert cfg.data.data == str(synthetic.clips_dir) and cfg.env.num_envs == 32
    assert cfg.skill_experts == ()
    args = build_parser().parse_args(["train", "prior", "--expert", str(bundled_expert_path()), "--out", "r",
                                      "--data", str(synthetic.clips_dir), "--objects", str(synthetic.objects_dir),
                                      "--skill-expert", "push=rel/push_expert"])
    assert build_prior_config(args).skill_experts == (f"push={(Path.cwd() / 'rel/push_expert').resolve()}",)


def test_bench_prior_times_both_runtimes(capsys):
    from interprior.cli import main
    from interprior.models.prior_onnx import onnxruntime_problem

    args = ["bench", "prior", "--preset", "cpu", "--variant", "body_only", "--steps", "5", "--json"]
    if onnxruntime_problem() is None:
        args.append("--onnx")
    assert main(args) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["torch_ms_median"] > 0 and res["parameters_prior_decoder"] > 100_000
    if "--onnx" in args:
        assert res["onnx_ms_median"] > 0
