"""Stage III: the concurrent-distillation share, fallen starts that are really fallen, the success reward in the
rollout buffer, and a tiny end-to-end finetune of a tiny prior (checkpoint, resume, the prior readers, the CLI)."""

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from interprior.mdp.inbetween import is_fallen



pytestmark = pytest.mark.usefixtures("one_torch_thread")  # many small kernels: threads only add overhead


@pytest.fixture(scope="module")
def prior_run(tiny_prior_run):
    return tiny_prior_run


def _tiny_finetune_config(prior_run):
    from interprior.train.finetune import finetune_config_for

    cfg = finetune_config_for(prior_run)
    cfg.horizon_frames, cfg.margin = (3, 6), 1
    cfg.ppo = replace(cfg.ppo, horizon=6, epochs=1, minibatch_size=12)
    cfg.critic_hidden = (32,)
    cfg.tolerances = replace(cfg.tolerances, reward=2.5)
    cfg.starts = replace(cfg.starts, fall_seconds=1.5)
    cfg.total_samples = 48
    cfg.getup_reward = 0.0  # the buffer then holds the success reward alone (checked below)
    cfg.torch_threads = 1
    return cfg


def test_distillation_share_and_config_checks():
    from interprior.envs.tracking import TrackingConfig
    from interprior.errors import InterpriorError
    from interprior.train.distill import DistillConfig
    from interprior.train.finetune import (
        FinetuneConfig,
        check_finetune_config,
        distill_rows,
    )
    from interprior.train.finetune_episodes import StartDistribution

    base = DistillConfig(expert="x", env=TrackingConfig(num_envs=8))
    assert distill_rows(FinetuneConfig(prior="p", base=base, distill_share=0.25)) == 2
    assert distill_rows(FinetuneConfig(prior="p", base=base, distill_share=0.0)) == 0
    with pytest.raises(InterpriorError, match="no env"):
        check_finetune_config(FinetuneConfig(prior="p", base=base, distill_share=1.0))
    with pytest.raises(InterpriorError, match="sum to 1"):
        check_finetune_config(FinetuneConfig(prior="p", base=base, starts=StartDistribution(dataset_prob=0.9)))
    check_finetune_config(FinetuneConfig(prior="p", base=base))


def test_finetune_kernels_and_end_to_end(prior_run, tmp_path, capsys):
    from interprior.cli import main
    from interprior.train.finetune import Finetuner

    cfg = _tiny_finetune_config(prior_run)
    first = Finetuner(cfg, tmp_path / "run3")
    rl = first.is_rl
    assert rl.tolist() == [False, True, True, True]  # round(0.25 · 4) distillation rows, first
    first.train()
    saved_stream = first.generator.get_state().clone()  # as checkpointed (the checks below draw from it)
    assert first.iteration == 2 and first.samples == 48 and len(first.history) == 2
    buf = first.buffer
    # the success reward feeds the buffer: exactly 0 or r_succ, and never on distillation rows
    assert set(buf.rewards.unique().tolist()) <= {0.0, 2.5} and (buf.rewards[:, ~rl] == 0).all()
    # distillation rows act with the policy's mean and carry the expert's labels; RL rows explore around it
    assert first.labels[:, ~rl].abs().sum() > 0
    assert all(torch.isfinite(torch.tensor(p["distill"])) for p in first.history)
    # truncations: RL rows the tracking env cut off (not at their goal time) bootstrap from their own last state
    assert not (buf.dones & buf.timeouts).any() and not buf.timeouts[:, ~rl].any()
    n = first.env.num_envs
    env_end, goal_end = torch.tensor([True, True, True, False]), torch.tensor([False, False, True, False])
    ends = SimpleNamespace(reasons={"env": env_end, "goal_time": goal_end})
    step = SimpleNamespace(truncated=torch.ones(n, dtype=torch.bool), truncated_observation=first.goal_env.observe())
    cut, values = first._truncations(step, ends)
    assert cut.tolist() == [False, True, False, False]  # a distillation row, a goal-time end, a running row: no
    assert values.shape == (n,) and torch.isfinite(values).all()
    step.truncated = torch.zeros(n, dtype=torch.bool)  # terminated by the env (e.g. diverged): no bootstrap
    assert not first._truncations(step, ends)[0].any()

    # the reward kernel on constructed goals: the goal at the current state is reached, a far one is not
    ep = first.episodes
    env = first.env
    ids = ep.rows
    ep.goal_clip[ids], ep.goal_frame[ids] = env.clip_ids[ids], env.frame[ids]
    ep.goal_bits[ids] = False
    ep.goal_bits[ids, first.goal_env.layout.bit_slices["obj_pos"].start] = True
    state = env.sim.state()
    ref_obj = env.ref.state(env.clip_ids, env.frame, env.device).obj_pos
    far = replace(state, obj_pos=state.obj_pos + 5.0)
    near = replace(state, obj_pos=ref_obj[:, None].to(state.obj_pos).expand_as(state.obj_pos).clone())
    assert ep.reward(near)[ids].tolist() == [2.5] * len(ids) and ep.reward(far).abs().sum() == 0
    assert ep.reward(near)[~rl].abs().sum() == 0

    # fallen starts are really fallen (pelvis low or torso tilted), made in physics
    assert ep.pool is not None and len(ep.pool[1]) > 0
    ep.probs = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    ep.begin(ids)
    state = env.sim.state()
    torso = env.groups.torso[0]
    assert (ep.kind[ids] == 2).all()
    assert is_fallen(state.root_pos[ids, 2].cpu(), state.body_rot[ids, torso].cpu()).all()

    # resume continues the same run
    cfg.total_samples = 72
    second = Finetuner(cfg, tmp_path / "run3")
    assert second.iteration == 2 and second.samples == 48
    for a, b in zip(first.policy.state_dict().values(), second.policy.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(saved_stream, second.generator.get_state())  # starts and goals continue the stream
    second.train()
    assert second.iteration == 3 and second.samples == 72
    capsys.readouterr()

    # every prior reader takes the finetune run
    run3 = str(tmp_path / "run3")
    assert main(["eval", "goals", "--checkpoint", run3, "--goal", "object", "--max-frames", "20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["goal"] == "object"
    assert main(["eval", "protocol", "--checkpoint", run3, "--max-frames", "20", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["rows"]) == 1
    assert main(["train", "export", "--checkpoint", run3, "--out", str(tmp_path / "p3.pt")]) == 0
    assert "exported the prior" in capsys.readouterr().out
    assert main(["eval", "curve", run3, "--json"]) == 0
    assert "step_success" in capsys.readouterr().out


def test_train_finetune_cli(prior_run, tmp_path, capsys):
    from interprior.cli import main

    out = tmp_path / "bad"
    assert main(["train", "finetune", "--prior", str(prior_run), "--out", str(out), "--set", "nope=1"]) == 2
    assert not out.exists()
    assert main(["train", "finetune", "--prior", str(prior_run), "--out", str(out), "--set",
                 "starts.dataset_prob=0.9"]) == 2
    assert not out.exists()
    before = sorted(p.name for p in Path(prior_run).rglob("*"))
    assert main(["train", "finetune", "--prior", str(prior_run), "--out", str(prior_run)]) == 2  # another stage's run
    assert sorted(p.name for p in Path(prior_run).rglob("*")) == before
    good = tmp_path / "good"
    assert main(["train", "finetune", "--prior", str(prior_run), "--out", str(good), "--samples", "1",
                 "--set", "ppo.horizon=3", "--set", "horizon_frames=[3,5]", "--set", "critic_hidden=[16]",
                 "--set", "starts.fallen_prob=0", "--set", "starts.dataset_prob=0.8"]) == 0
    saved = json.loads((good / "finetune.json").read_text())
    assert saved["prior"] == str(Path(prior_run).resolve()) and saved["_preset"] == "cpu"
    assert "expert" in json.loads((good / "config.json").read_text())
    from interprior.train.runs import load_run

    assert load_run(good, kind="prior").state["stage"] == "finetune"
