"""Random but valid `SimState` / `RefState` fixtures for MDP kernel tests (no simulator).

* `random_ref_state(n)`: unit quaternions, bodies around a root ~0.9 m high, an object nearby, contact labels
  {-1, 0, +1} consistent with the body→object distances (+1: < 2 cm, 0: 2–30 cm, −1: > 12 cm). Each hand is
  "grasping" with probability `grasp_prob`: its wrist and fingertips labelled +1 and within 2 cm of the object;
  otherwise none of its bodies is labelled +1.
* `sim_from_ref(ref)`: the simulated state that matches the reference exactly (object contacts = labels == +1,
  no contact forces); pass it also as `prev` for zero accelerations.
* `random_sim_state(n)`: an independent random simulated state.
* `transform_world(state, yaw, shift)`: the same state with the whole world rotated about z and translated.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from interprior import schema
from interprior.mdp.types import RefState
from interprior.rotations import quat_apply, quat_mul, quat_normalize
from interprior.sim.batched import SimState

NB = schema.NUM_BODIES
_POSITIONS = ("root_pos", "body_pos", "obj_pos")
_ROTATIONS = ("root_rot", "body_rot", "obj_rot")
_VECTORS = ("root_linvel", "root_angvel", "body_linvel", "body_angvel", "obj_linvel", "obj_angvel",
            "object_force", "ground_force", "nearest_object_vec")


def _gen(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def random_quat(shape: tuple[int, ...], g: torch.Generator, dtype=torch.float32) -> Tensor:
    return quat_normalize(torch.randn(shape + (4,), generator=g, dtype=dtype))


def _random_directions(shape, g, dtype):
    v = torch.randn(shape + (3,), generator=g, dtype=dtype)
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-6)


def random_ref_state(n: int, seed: int = 0, dtype=torch.float32, grasp_prob: float = 0.5) -> RefState:
    g = _gen(seed)
    u = lambda *s: torch.rand(s, generator=g, dtype=dtype)  # noqa: E731
    root_pos = torch.cat([u(n, 2) * 4 - 2, 0.8 + 0.2 * u(n, 1)], dim=-1)
    root_rot = random_quat((n,), g, dtype)
    body_pos = root_pos[:, None] + (u(n, NB, 3) - 0.5)
    body_pos[:, 0] = root_pos
    body_rot = random_quat((n, NB), g, dtype)
    body_rot[:, 0] = root_rot
    obj_pos = root_pos + torch.cat([u(n, 2) - 0.5, u(n, 1) * 0.5 - 0.3], dim=-1)

    # contact labels consistent with distances
    labels = torch.randint(-1, 2, (n, NB), generator=g).to(dtype)
    hands = torch.tensor(schema.LEFT_HAND + schema.RIGHT_HAND).reshape(2, 16)
    grasp = torch.rand((n, 2), generator=g) < grasp_prob
    for h in range(2):  # two hands: a loop over groups, not envs
        hb = hands[h]
        tips = torch.tensor([hb[0].item()] + [b for b in schema.FINGERTIPS if b in hb.tolist()])
        lab = labels[:, hb]
        labels[:, hb] = torch.where(lab > 0, torch.zeros_like(lab), lab)  # no +1 unless grasping
        labels[:, tips] = torch.where(grasp[:, h : h + 1], torch.ones_like(labels[:, tips]), labels[:, tips])
    dist = torch.where(labels > 0.5, 0.02 * u(n, NB),
                       torch.where(labels < -0.5, 0.12 + 0.9 * u(n, NB), 0.02 + 0.28 * u(n, NB)))
    nearest = _random_directions((n, NB), g, dtype) * dist[..., None]

    return RefState(
        root_pos=root_pos, root_rot=root_rot, body_pos=body_pos, body_rot=body_rot,
        body_linvel=torch.randn(n, NB, 3, generator=g, dtype=dtype),
        body_angvel=torch.randn(n, NB, 3, generator=g, dtype=dtype),
        dof_pos=torch.randn(n, schema.NUM_DOFS, generator=g, dtype=dtype) * 0.3,
        obj_pos=obj_pos, obj_rot=random_quat((n,), g, dtype),
        obj_linvel=torch.randn(n, 3, generator=g, dtype=dtype) * 0.5,
        obj_angvel=torch.randn(n, 3, generator=g, dtype=dtype) * 0.5,
        contact=labels, obj_contact=(labels > 0.5).any(-1).to(dtype),
        nearest_object_vec=nearest,
    )


def sim_from_ref(ref: RefState, seed: int = 1, num_objects: int = 1) -> SimState:
    """The simulated state equal to `ref` (extra objects, if any, are random and unused)."""
    g = _gen(seed)
    n, dtype = ref.root_pos.shape[0], ref.root_pos.dtype
    extra = num_objects - 1
    obj = lambda x, k: torch.cat([x[:, None], torch.randn((n, extra, k), generator=g, dtype=dtype)], 1)  # noqa: E731
    obj_rot = obj(ref.obj_rot, 4)
    obj_rot[:, 1:] = quat_normalize(obj_rot[:, 1:])
    contact = ref.contact > 0.5
    return SimState(
        root_pos=ref.root_pos.clone(), root_rot=ref.root_rot.clone(),
        root_linvel=ref.body_linvel[:, 0].clone(), root_angvel=ref.body_angvel[:, 0].clone(),
        dof_pos=ref.dof_pos.clone(), dof_vel=torch.randn(n, ref.dof_pos.shape[1], generator=g, dtype=dtype),
        body_pos=ref.body_pos.clone(), body_rot=ref.body_rot.clone(),
        body_linvel=ref.body_linvel.clone(), body_angvel=ref.body_angvel.clone(),
        obj_pos=obj(ref.obj_pos, 3), obj_rot=obj_rot, obj_linvel=obj(ref.obj_linvel, 3),
        obj_angvel=obj(ref.obj_angvel, 3),
        object_force=torch.zeros(n, NB, 3, dtype=dtype), ground_force=torch.zeros(n, NB, 3, dtype=dtype),
        object_contact=contact, ground_contact=torch.zeros_like(contact),
        nearest_object_vec=ref.nearest_object_vec.clone(),
    )


def random_sim_state(n: int, seed: int = 2, dtype=torch.float32) -> SimState:
    """An independent random simulated state (random contacts and forces)."""
    sim = sim_from_ref(random_ref_state(n, seed=seed, dtype=dtype), seed=seed + 1)
    g = _gen(seed + 2)
    sim.object_contact = torch.rand((n, NB), generator=g) < 0.2
    sim.ground_contact = torch.rand((n, NB), generator=g) < 0.1
    sim.object_force = torch.randn(n, NB, 3, generator=g, dtype=dtype) * sim.object_contact[..., None] * 20
    sim.ground_force = torch.randn(n, NB, 3, generator=g, dtype=dtype) * sim.ground_contact[..., None] * 50
    return sim


def replace(state, **changes):
    """dataclasses.replace for SimState / RefState."""
    return dataclasses.replace(state, **changes)


def transform_world(state, yaw: Tensor | float, shift: Tensor):
    """Rotate the whole world about z by `yaw` ([N] or scalar) and translate by `shift` ([3] or [N, 3])."""
    n, dtype = state.root_pos.shape[0], state.root_pos.dtype
    yaw = torch.as_tensor(yaw, dtype=dtype).expand(n)
    q = torch.stack([torch.cos(yaw / 2), torch.zeros_like(yaw), torch.zeros_like(yaw), torch.sin(yaw / 2)], -1)
    shift = torch.as_tensor(shift, dtype=dtype).expand(n, 3)
    changes = {}
    for f in dataclasses.fields(state):
        x = getattr(state, f.name)
        extra = x.dim() - 2  # body / object dims between N and the component
        qe = q.reshape((n,) + (1,) * extra + (4,)).expand(x.shape[:-1] + (4,)) if x.dim() >= 2 else None
        if f.name in _POSITIONS:
            changes[f.name] = quat_apply(qe, x) + shift.reshape((n,) + (1,) * extra + (3,))
        elif f.name in _ROTATIONS:
            changes[f.name] = quat_mul(qe, x)
        elif f.name in _VECTORS:
            changes[f.name] = quat_apply(qe, x)
    return dataclasses.replace(state, **changes)
