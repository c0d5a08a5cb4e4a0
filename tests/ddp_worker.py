"""Run by tests/test_ddp.py under ``torchrun --nproc_per_node=2`` (gloo, CPU).

Each rank builds the model from a *different* seed (broadcast_module must equalise it), fills its rollout buffer
with different random data, runs a few PPO updates and, after every update, gathers a fingerprint of all
parameters, normaliser statistics and optimiser moments from every rank. Rank 0 writes a JSON report to argv[1].
"""

from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist

from interprior.algos.ppo import PPO, PPOConfig, RolloutBuffer
from interprior.models.actor_critic import ActorCritic
from interprior.distributed import broadcast_module, cleanup, exit_process, init_distributed, shard


def flat_state(model: ActorCritic, ppo: PPO) -> torch.Tensor:
    parts = [p.detach().reshape(-1).double() for p in model.parameters()]
    parts += [b.detach().reshape(-1).double() for b in model.buffers()]
    for s in ppo.optimizer.state.values():
        parts += [s["exp_avg"].reshape(-1).double(), s["exp_avg_sq"].reshape(-1).double()]
    return torch.cat(parts)


def main(out_path: str) -> None:
    torch.set_num_threads(1)
    info = init_distributed(device="cpu")
    assert info.world_size == 2 and info.backend == "gloo", info
    obs_dim, act_dim = 5, 2
    torch.manual_seed(100 + info.rank)  # deliberately different initial weights per rank
    model = ActorCritic(obs_dim, act_dim, hidden=(16, 16))
    broadcast_module(model)
    cfg = PPOConfig(num_envs=8, horizon=4, minibatch_size=8, epochs=2, actor_lr=1e-3, critic_lr=1e-3)
    ppo = PPO(model, cfg)
    g = torch.Generator().manual_seed(1000 + info.rank)  # per-rank different data
    report = {"world_size": info.world_size, "max_diff": [], "changed": [], "count": [], "shards": []}
    report["shards"] = list(shard(10, info.rank, info.world_size))
    params = lambda: torch.cat([p.detach().reshape(-1) for p in model.parameters()])  # noqa: E731
    before = params()
    for _ in range(3):
        buf = RolloutBuffer(cfg.num_envs, cfg.horizon, obs_dim, act_dim)
        for _ in range(cfg.horizon):
            obs = torch.randn(cfg.num_envs, obs_dim, generator=g) * (2 + info.rank) + info.rank
            a, logp, v, _ = model.act(obs)
            term = torch.rand(cfg.num_envs, generator=g) < 0.2
            buf.add(obs, a, logp, v, torch.randn(cfg.num_envs, generator=g), term)
        buf.compute_returns(torch.zeros(cfg.num_envs), cfg.gamma, cfg.gae_lambda)
        ppo.update(buf)
        state = flat_state(model, ppo)
        gathered = [torch.empty_like(state) for _ in range(info.world_size)]
        dist.all_gather(gathered, state)
        report["max_diff"].append(max((x - gathered[0]).abs().max().item() for x in gathered))
        report["changed"].append((params() - before).abs().max().item())
        report["count"].append(model.obs_norm.count.item())
        before = params()
    all_shards = [None] * info.world_size
    dist.all_gather_object(all_shards, report["shards"])
    report["shards"] = all_shards
    if info.rank == 0:
        with open(out_path, "w") as f:
            json.dump(report, f)
    cleanup()
    exit_process(0)


if __name__ == "__main__":
    main(sys.argv[1])
