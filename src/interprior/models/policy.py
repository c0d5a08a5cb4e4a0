"""The policy interface PPO trains: the expert's MLP actor-critic, and (next) the goal prior with a critic for
Stage III or a Transformer student. Observations may be one tensor or a dict of named tensors (structured: a self
observation, goal features, bits, times); the rollout buffer stores whichever the policy takes.
"""

from __future__ import annotations

from typing import Iterator, Protocol, Union

from torch import Tensor, nn

Observation = Union[Tensor, dict[str, Tensor]]


class Policy(Protocol):
    """What `interprior.algos.ppo.PPO` needs of a model."""

    def act(self, obs: Observation, deterministic: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """-> (actions, log_prob, value, mean action), batched over envs."""
        ...

    def evaluate(self, obs: Observation, actions: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """-> (log_prob, entropy, value, mean action) of stored `actions` under the current parameters."""
        ...

    def value(self, obs: Observation) -> Tensor:
        ...

    def update_normalizer(self, obs: Observation) -> None:
        """Fold a rollout's observations into the input statistics (PPO calls it once per update)."""
        ...

    def actor_parameters(self) -> Iterator[nn.Parameter]:
        ...

    def critic_parameters(self) -> Iterator[nn.Parameter]:
        ...


def is_policy(model: object) -> bool:
    """True when `model` has every method of `Policy` (a structural check, for clear errors)."""
    return all(callable(getattr(model, name, None)) for name in
               ("act", "evaluate", "value", "update_normalizer", "actor_parameters", "critic_parameters"))
