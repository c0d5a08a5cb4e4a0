"""The tracking errors, defined once: E_h (mean key-body position error) and E_o (mean object surface-point error).

Terminations, both evaluators and replay use these. Pure batched tensor functions, any device; the caller picks
the bodies (an env resolves its body group to an index tensor once).
"""

from __future__ import annotations

import torch
from torch import Tensor

from interprior.rotations import quat_to_matrix


def body_position_error(sim_body_pos: Tensor, ref_body_pos: Tensor, bodies: Tensor | tuple[int, ...]) -> Tensor:
    """[N] E_h: mean distance (m) between simulated and reference positions [N, B, 3] of `bodies`."""
    index = torch.as_tensor(bodies, device=sim_body_pos.device)
    sim = sim_body_pos.index_select(1, index)
    ref = ref_body_pos.to(sim_body_pos).index_select(1, index)
    return (sim - ref).norm(dim=-1).mean(-1)


def object_point_error(sim_pos: Tensor, sim_rot: Tensor, ref_pos: Tensor, ref_rot: Tensor, points: Tensor) -> Tensor:
    """[N] E_o: mean distance (m) between the object's surface points placed at the simulated pose (pos [N, 3],
    rot [N, 4] wxyz) and at the reference pose. `points`: object-frame points [P, 3], or [N, P, 3] per env."""
    pts = points.to(sim_pos)
    # sim_p − ref_p = (R_sim − R_ref) p + (t_sim − t_ref): one batched matmul instead of two point transforms
    rot_diff = quat_to_matrix(sim_rot) - quat_to_matrix(ref_rot.to(pts))
    shift = sim_pos - ref_pos.to(pts)
    return (pts @ rot_diff.transpose(-1, -2) + shift[:, None, :]).norm(dim=-1).mean(-1)
