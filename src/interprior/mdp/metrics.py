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


def object_point_error_exceeds(sim_pos: Tensor, sim_rot: Tensor, ref_pos: Tensor, ref_rot: Tensor, points: Tensor,
                               threshold: float) -> Tensor:
    """[N] bool: `object_point_error(...) > threshold`, the same decisions, the error computed only for the envs that
    a cheap upper bound does not settle: |(R_sim - R_ref) p + s| <= |s| + |R_sim - R_ref|_F |p| with
    |R_sim - R_ref|_F = 2 sqrt(2) sin(angle / 2) = 2 sqrt(2 (1 - cos²(angle / 2))) and |p| <= sqrt(3) max |p_i|.
    In float64; the margins cover the float32 rounding of the error itself. On the CPU: it saves the [N, P, 3]
    products of most steps (most envs are far from the threshold)."""
    pts = points.to(sim_pos)
    if sim_pos.device.type != "cpu":  # the row selection would wait for the device every step
        return object_point_error(sim_pos, sim_rot, ref_pos, ref_rot, pts) > threshold
    q1, q2 = sim_rot.double(), ref_rot.to(sim_rot.device).double()
    cos_half = (q1 * q2).sum(-1).abs() / (q1.norm(dim=-1) * q2.norm(dim=-1))
    rot_norm = 2.0 * (2.0 * (1.0 - cos_half.square()).clamp_min(0.0)).sqrt()
    radius = pts.abs().amax(dim=(-1, -2)).double() * 3.0**0.5  # [N], or one for shared points
    bound = (sim_pos.double() - ref_pos.double()).norm(dim=-1) + rot_norm * radius
    settled = bound * (1.0 + 1e-3) + 1e-5 < threshold  # NaN stays unsettled
    out = torch.zeros(sim_pos.shape[0], dtype=torch.bool, device=sim_pos.device)
    rows = (~settled).nonzero().flatten()
    if len(rows):
        sub = pts if pts.dim() == 2 else pts[rows]
        out[rows] = object_point_error(sim_pos[rows], sim_rot[rows], ref_pos[rows], ref_rot[rows], sub) > threshold
    return out
