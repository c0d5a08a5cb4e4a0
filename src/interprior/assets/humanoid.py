"""MJCF builder for a humanoid described by an `Embodiment` and its figures (`assets/data/<spec_file>`): InterMimic's
SMPL-X humanoid (`smplx_humanoid.json`) or the toy body of the tests (`toy_humanoid.json`).

One builder, three variants of the SMPL-X body:
  * default shape (the spec's bone offsets),
  * subject-fitted skeleton (bone offsets from a clip's own body positions and rotations; geoms stretched with
    the bones) so any subject's data replays exactly,
  * body-only (rigid hands: finger bodies welded to the wrist, 63 DoF) for fast CPU experiments.

Body frames are never rotated (identity body quaternions) and every hinge sits at its body origin: this keeps
joint angles = intrinsic XYZ Euler angles of the body's rotation relative to its parent, and lets the torch
forward kinematics in `interprior.assets.kinematics` reproduce MuJoCo's exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from interprior.assets.embodiment import SMPLX, Embodiment

# Collision bits: humanoid geoms never collide with each other (as in InterMimic), but do with ground and objects.
HUMANOID_CONTYPE, HUMANOID_CONAFFINITY = 1, 2
GROUND_CONTYPE, GROUND_CONAFFINITY = 2, 1
OBJECT_CONTYPE, OBJECT_CONAFFINITY = 2, 3
ARMATURE = 0.02
GEOM_MARGIN = 0.001


def humanoid_spec(body: Embodiment = SMPLX) -> dict:
    return body.spec


def default_offsets(body: Embodiment = SMPLX) -> np.ndarray:
    """[B, 3] bone offsets of the default shape (row 0: the root, zero)."""
    return np.array([b["pos"] for b in body.spec["bodies"]], dtype=np.float64)


@dataclass(frozen=True)
class HumanoidOptions:
    body: Embodiment = field(default=SMPLX)
    offsets: tuple | None = None  # [B][3] bone offsets; None = default shape
    self_collision: bool = False  # InterMimic filters self-collision; on = collide except overlapping neighbours
    rgba: str = "0.82 0.62 0.45 1"


def _fmt(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _geom_scale(body: int, offsets: np.ndarray, base: np.ndarray, parents: tuple[int, ...]) -> float:
    """How much a body's geoms stretch: ratio of its bone lengths (to children, or from the parent for leaves)."""
    children = [c for c, p in enumerate(parents) if p == body]
    bones = children if children else [body]
    ratios = [np.linalg.norm(offsets[c]) / max(np.linalg.norm(base[c]), 1e-6) for c in bones if c != 0]
    return float(np.clip(np.mean(ratios), 0.5, 2.0)) if ratios else 1.0


def _geom_xml(geom: dict, scale: float, contype: int, conaffinity: int, rgba: str) -> str:
    kind = geom["type"]
    attrs = [f'type="{kind}"', f'density="{geom["density"]:.6g}"', f'contype="{contype}"',
             f'conaffinity="{conaffinity}"', f'margin="{GEOM_MARGIN}"', f'rgba="{rgba}"']
    if kind == "capsule":
        attrs += [f'fromto="{_fmt(np.array(geom["fromto"]) * scale)}"', f'size="{_fmt(geom["size"])}"']
    elif kind == "box":
        size = np.array(geom["size"], dtype=np.float64)
        size[0] *= scale  # boxes (feet, hands) stretch along their length
        attrs += [f'pos="{_fmt(np.array(geom["pos"]) * scale)}"', f'size="{_fmt(size)}"',
                  f'quat="{_fmt(geom.get("quat", [1, 0, 0, 0]))}"']
    elif kind == "sphere":
        attrs += [f'pos="{_fmt(np.array(geom["pos"]) * scale)}"', f'size="{_fmt(geom["size"])}"']
    else:
        raise ValueError(f"unsupported geom type in humanoid spec: {kind}")
    return f"<geom {' '.join(attrs)}/>"


def pd_gains(body: Embodiment = SMPLX) -> tuple[np.ndarray, np.ndarray]:
    """[full dofs] kp and kd of every hinge (the spec's joint stiffness/damping are PD gains, not springs)."""
    kp, kd = [], []
    for spec_body in body.spec["bodies"][1:]:
        for joint in spec_body["joints"]:
            kp.append(joint["stiffness"])
            kd.append(joint["damping"])
    return np.array(kp), np.array(kd)


def joint_ranges(body: Embodiment = SMPLX) -> np.ndarray:
    """[full dofs, 2] hinge ranges in radians, in the body's joint order."""
    ranges = [j["range"] for b in body.spec["bodies"][1:] for j in b["joints"]]
    return np.deg2rad(np.array(ranges, dtype=np.float64))


def humanoid_body_xml(options: HumanoidOptions = HumanoidOptions(), root_pos=(0.0, 0.0, 0.95)) -> str:
    """The nested <body> tree (to be placed in <worldbody>)."""
    hb = options.body
    spec = hb.spec
    base = default_offsets(hb)
    offsets = base if options.offsets is None else np.asarray(options.offsets, dtype=np.float64)
    if offsets.shape != (hb.num_bodies, 3):
        raise ValueError(f"bone offsets must have shape ({hb.num_bodies}, 3), got {offsets.shape}")
    jointed = set(hb.jointed_bodies)
    ranges = joint_ranges(hb)
    children: dict[int, list[int]] = {i: [] for i in range(hb.num_bodies)}
    for i, p in enumerate(hb.parents):
        if p >= 0:
            children[p].append(i)

    def body(i: int, depth: int) -> list[str]:
        b = spec["bodies"][i]
        pad = "  " * depth
        pos = root_pos if i == 0 else offsets[i]
        frame = f' quat="{_fmt(b["quat"])}"' if "quat" in b else ""
        lines = [f'{pad}<body name="{b["name"]}" pos="{_fmt(pos)}"{frame}>']
        if i == 0:
            lines.append(f'{pad}  <freejoint name="root"/>')
        elif i in jointed:
            for axis, joint in enumerate(b["joints"]):
                lo, hi = ranges[hb.dof_start[i] + axis]
                unit = _fmt(hb.joint_axes[i][axis])
                lines.append(
                    f'{pad}  <joint name="{joint["name"]}" type="hinge" axis="{unit}" range="{lo:.6g} {hi:.6g}" '
                    f'armature="{joint.get("armature", ARMATURE):.6g}" stiffness="0" damping="0" limited="true"/>'
                )
        scale = _geom_scale(i, offsets, base, hb.parents)
        for g in b["geoms"]:
            lines.append(pad + "  " + _geom_xml(g, scale, HUMANOID_CONTYPE, HUMANOID_CONAFFINITY, options.rgba))
        for c in children[i]:
            lines += body(c, depth + 1)
        lines.append(f"{pad}</body>")
        return lines

    return "\n".join(body(0, 2))


def actuator_xml(body: Embodiment = SMPLX) -> str:
    """Position actuators (PD) with the spec's gains; ctrl is the PD target angle in radians."""
    kp, kd = pd_gains(body)
    effort = [j.get("effort") for b in body.spec["bodies"][1:] for j in b["joints"]]  # motor torque limits (robots)
    lines = []
    for d in body.dof_index:
        name = body.dof_names[d]
        force = f' forcelimited="true" forcerange="{-effort[d]:.6g} {effort[d]:.6g}"' if effort[d] else ""
        lines.append(f'<position name="{name}" joint="{name}" kp="{kp[d]:.6g}" kv="{kd[d]:.6g}" ctrllimited="false"'
                     f'{force}/>')
    return "\n".join(lines)


def self_collision_excludes(model, body: Embodiment = SMPLX) -> list[tuple[str, str]]:
    """Body pairs whose geoms overlap in the zero pose (parents/children, siblings on the chest and pelvis):
    these must never collide, even when self-collision is on."""
    import mujoco

    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    pairs = set()
    for c in data.contact[: data.ncon]:
        b1, b2 = model.geom_bodyid[c.geom1], model.geom_bodyid[c.geom2]
        if b1 and b2 and b1 != b2:
            n1, n2 = model.body(b1).name, model.body(b2).name
            if n1 in body.body_index and n2 in body.body_index:
                pairs.add(tuple(sorted((n1, n2), key=body.body_index.get)))
    for i, p in enumerate(body.parents):  # always exclude direct neighbours
        if p >= 0:
            pairs.add((body.body_names[p], body.body_names[i]))
    return sorted(pairs, key=lambda t: (body.body_index[t[0]], body.body_index[t[1]]))


def pd_action_mapping(body: Embodiment = SMPLX) -> tuple[np.ndarray, np.ndarray]:
    """InterMimic's action rule: target = offset + scale * a, a in [-1, 1].

    offset = range centre, scale = half range; for joints whose centre is off zero by more than 0.1 rad
    (the asymmetric finger-tip joints) the offset becomes 0 and the scale pi. InterMimic's legacy override of
    scale 5 on dofs 5 and 17 (meant for knees, but hitting L/R_Knee_z) is not copied.
    """
    ranges = joint_ranges(body)[list(body.dof_index)]
    offset = ranges.mean(axis=1)
    scale = 0.5 * (ranges[:, 1] - ranges[:, 0])
    off_centre = np.abs(offset) > 0.1
    offset[off_centre] = 0.0
    scale[off_centre] = math.pi
    return offset, scale
