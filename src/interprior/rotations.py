"""Batched rotation helpers on torch tensors. Quaternions are **wxyz** everywhere inside the package.

Files store xyzw: convert with `xyzw_to_wxyz` / `wxyz_to_xyzw` at the IO boundary only.
MuJoCo's three serial hinges x, y, z of a joint compose as R = Rx(a) Ry(b) Rz(c): intrinsic XYZ Euler angles.
"""

from __future__ import annotations

import torch
from torch import Tensor


def xyzw_to_wxyz(q: Tensor) -> Tensor:
    return torch.cat([q[..., 3:4], q[..., :3]], dim=-1)


def wxyz_to_xyzw(q: Tensor) -> Tensor:
    return torch.cat([q[..., 1:], q[..., :1]], dim=-1)


def quat_normalize(q: Tensor) -> Tensor:
    return q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def quat_conj(q: Tensor) -> Tensor:
    return torch.cat([q[..., :1], -q[..., 1:]], dim=-1)


def quat_mul(a: Tensor, b: Tensor) -> Tensor:
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def quat_apply(q: Tensor, v: Tensor) -> Tensor:
    """Rotate vectors v [..., 3] by unit quaternions q [..., 4]."""
    w, xyz = q[..., :1], q[..., 1:]
    t = 2.0 * torch.cross(xyz.expand_as(v), v, dim=-1)
    return v + w * t + torch.cross(xyz.expand_as(v), t, dim=-1)


def quat_apply_inverse(q: Tensor, v: Tensor) -> Tensor:
    return quat_apply(quat_conj(q), v)


def quat_angle(q: Tensor) -> Tensor:
    """Rotation angle in [0, pi] of unit quaternions."""
    return 2.0 * torch.atan2(q[..., 1:].norm(dim=-1), q[..., 0].abs())


def quat_to_matrix(q: Tensor) -> Tensor:
    w, x, y, z = quat_normalize(q).unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(q.shape[:-1] + (3, 3))


def axis_angle_to_quat(axis_angle: Tensor) -> Tensor:
    angle = axis_angle.norm(dim=-1, keepdim=True)
    half = 0.5 * angle
    # sin(x/2)/x -> 1/2 for small x
    scale = torch.where(angle > 1e-8, torch.sin(half) / angle.clamp_min(1e-12), 0.5 - angle**2 / 48.0)
    return torch.cat([torch.cos(half), axis_angle * scale], dim=-1)


def quat_to_axis_angle(q: Tensor) -> Tensor:
    q = torch.where(q[..., :1] < 0, -q, q)
    sin_half = q[..., 1:].norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(sin_half, q[..., :1])
    scale = torch.where(sin_half > 1e-8, angle / sin_half.clamp_min(1e-12), 2.0 + angle**2 / 12.0)
    return q[..., 1:] * scale


def quat_from_euler_xyz(euler: Tensor) -> Tensor:
    """Intrinsic XYZ Euler angles [..., 3] -> quaternion of Rx(a) Ry(b) Rz(c)."""
    half = 0.5 * euler
    c, s = torch.cos(half), torch.sin(half)
    zeros = torch.zeros_like(c[..., 0])
    qx = torch.stack([c[..., 0], s[..., 0], zeros, zeros], -1)
    qy = torch.stack([c[..., 1], zeros, s[..., 1], zeros], -1)
    qz = torch.stack([c[..., 2], zeros, zeros, s[..., 2]], -1)
    return quat_mul(quat_mul(qx, qy), qz)


def euler_xyz_from_quat(q: Tensor) -> Tensor:
    """Quaternion -> intrinsic XYZ Euler angles (a, b, c) with R = Rx(a) Ry(b) Rz(c), b in [-pi/2, pi/2]."""
    m = quat_to_matrix(q)
    # R = Rx Ry Rz: R[0,2] = sin b, R[1,2] = -sin a cos b, R[2,2] = cos a cos b,
    # R[0,1] = -cos b sin c, R[0,0] = cos b cos c.
    b = torch.asin(m[..., 0, 2].clamp(-1.0, 1.0))
    a = torch.atan2(-m[..., 1, 2], m[..., 2, 2])
    c = torch.atan2(-m[..., 0, 1], m[..., 0, 0])
    return torch.stack([a, b, c], dim=-1)


def heading_quat_inverse(q: Tensor) -> Tensor:
    """Inverse of the yaw-only rotation of q (the root heading frame used by observations)."""
    fwd = quat_apply(q, torch.tensor([1.0, 0.0, 0.0], dtype=q.dtype, device=q.device).expand(q.shape[:-1] + (3,)))
    yaw = torch.atan2(fwd[..., 1], fwd[..., 0])
    half = -0.5 * yaw
    zeros = torch.zeros_like(half)
    return torch.stack([torch.cos(half), zeros, zeros, torch.sin(half)], dim=-1)


def matrix_from_euler_xyz(euler: Tensor) -> Tensor:
    """Intrinsic XYZ Euler angles [..., 3] -> rotation matrices Rx(a) Ry(b) Rz(c) [..., 3, 3]."""
    c, s = torch.cos(euler), torch.sin(euler)
    ca, cb, cc = c.unbind(-1)
    sa, sb, sc = s.unbind(-1)
    return torch.stack(
        [
            cb * cc, -cb * sc, sb,
            ca * sc + sa * sb * cc, ca * cc - sa * sb * sc, -sa * cb,
            sa * sc - ca * sb * cc, sa * cc + ca * sb * sc, ca * cb,
        ],
        dim=-1,
    ).reshape(euler.shape[:-1] + (3, 3))


def matrix_to_quat(m: Tensor) -> Tensor:
    """Rotation matrices [..., 3, 3] -> unit quaternions wxyz with w >= 0 (branch-free Shepperd variant)."""
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # four candidate (unnormalised) quaternions, each well conditioned where its own component is largest
    cand = torch.stack(
        [
            torch.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20], -1),
            torch.stack([m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21], -1),
            torch.stack([m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22], -1),
        ],
        dim=-2,
    )  # [..., 4, 4]
    diag = torch.stack([cand[..., 0, 0], cand[..., 1, 1], cand[..., 2, 2], cand[..., 3, 3]], -1)
    best = diag.argmax(dim=-1, keepdim=True)
    q = torch.gather(cand, -2, best[..., None].expand(best.shape[:-1] + (1, 4))).squeeze(-2)
    q = quat_normalize(q)
    return torch.where(q[..., :1] < 0, -q, q)
