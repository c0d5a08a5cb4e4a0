"""The Stage II student's view of the current state: humanoid, object and their interaction, no reference.

InterPrior's x_t (§3.1): human kinematics, object kinematics, and interaction terms, all in the simulated root's
heading frame. The same conventions as the teacher observation's simulation-only blocks
(`interprior.mdp.observations`): positions relative to the root, 6-D tan-norm rotations, contact flags of the
contact bodies, interaction-graph features; plus the object's pose relative to the root (the teacher reads it as
a difference to the reference instead). Pure, batched, any device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from interprior.assets.embodiment import BodyGroups
from interprior.mdp.observations import group_index, heading_cos_sin, ig_feature, tan_norm_vectors, to_heading


def self_observation_layout(groups: BodyGroups) -> tuple[tuple[str, int], ...]:
    nb = groups.num_bodies
    return (
        ("root_height", 1),
        ("body_pos", 3 * (nb - 1)),     # bodies 1.. relative to the root
        ("body_rot", 6 * nb),           # tan-norm, heading frame
        ("body_linvel", 3 * nb),
        ("body_angvel", 3 * nb),
        ("obj_pos", 3),                 # object relative to the root
        ("obj_rot", 6),                 # tan-norm, heading frame
        ("obj_linvel", 3),
        ("obj_angvel", 3),
        ("contact", len(groups.contact)),  # object contact flags of the contact bodies
        ("ig", 3 * nb),                 # interaction-graph features, every body
    )


def self_observation_size(groups: BodyGroups) -> int:
    """980 for the SMPL-X humanoid."""
    return sum(size for _, size in self_observation_layout(groups))


def self_observation(sim, groups: BodyGroups) -> Tensor:
    """[N, self_observation_size(groups)] from a `SimState` (object 0)."""
    n, nb = sim.root_pos.shape[0], groups.num_bodies
    heading = heading_cos_sin(sim.root_rot)
    world = torch.cat([
        sim.body_pos[:, 1:] - sim.root_pos[:, None],                     # nb - 1
        tan_norm_vectors(sim.body_rot).reshape(n, 2 * nb, 3),           # 2 nb
        sim.body_linvel,                                                  # nb
        sim.body_angvel,                                                  # nb
        sim.obj_pos[:, :1] - sim.root_pos[:, None],                      # 1
        tan_norm_vectors(sim.obj_rot[:, 0]),                              # 2
        sim.obj_linvel[:, :1],                                            # 1
        sim.obj_angvel[:, :1],                                            # 1
        sim.nearest_object_vec,                                           # nb
    ], dim=1)
    local = to_heading(world, heading)
    ig = ig_feature(local[:, -nb:]).reshape(n, -1)
    contact = sim.object_contact.index_select(1, group_index(groups, "contact", sim.root_pos.device)).to(sim.root_pos.dtype)
    return torch.cat([sim.root_pos[:, 2:3], local[:, :-nb].reshape(n, -1), contact, ig], dim=1)
