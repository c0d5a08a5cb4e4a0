"""The body as data: an `Embodiment` names a humanoid's bodies, their tree, its hinge joints and its named body
groups; `BodyGroups` is those groups resolved to indices, built once when an env is made and handed to every mdp
kernel (which therefore name no body of their own).

The SMPL-X humanoid comes in two instances, `full` (153 DoF) and `body_only` (rigid hands, 63 DoF). Both keep all
52 bodies in the motion file's order, so per-body state always has the same rows. Groups are declared by body name
and resolved here; an unknown name is an error naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path

from interprior import schema
from interprior.errors import InterpriorError

# the hinge axes of every SMPL-X joint: three serial hinges x, y, z (intrinsic XYZ Euler angles)
XYZ_HINGES = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


@dataclass(frozen=True)
class BodyGroups:
    """Named body groups as index tuples into the body's rows: what observation, reward, termination, goal and
    metric kernels receive. `rotation` are the bodies whose rotations are tracked; hands list the wrist first."""

    num_bodies: int
    key: tuple[int, ...]  # tracking errors (E_h) and terminations
    rotation: tuple[int, ...]
    contact: tuple[int, ...]  # bodies whose object contact is observed and rewarded
    left_hand: tuple[int, ...]
    right_hand: tuple[int, ...]
    fingertips: tuple[int, ...]
    feet: tuple[int, ...]
    torso: tuple[int, ...] = ()  # the upper-body link whose tilt says upright or fallen (getting up)

    @property
    def hands(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return self.left_hand, self.right_hand

    @property
    def non_hand(self) -> tuple[int, ...]:
        """Every body outside both hands."""
        hand = set(self.left_hand + self.right_hand)
        return tuple(i for i in range(self.num_bodies) if i not in hand)

    @property
    def grasp(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Per hand: the wrist and the fingertips of that hand."""
        return tuple((h[0],) + tuple(b for b in self.fingertips if b in h) for h in self.hands)


@lru_cache(maxsize=None)
def load_spec(spec_file: str) -> dict:
    """A body's figures: per body its name, parent, offset (`pos`), frame rotation (`quat` wxyz, optional), hinge
    joints (axis, range in degrees, PD gains, armature) and geoms, in body order. `spec_file` names a file of
    `assets/data/` or is an absolute path (a body made at set-up, e.g. the G1's)."""
    path = Path(spec_file)
    if path.is_absolute():
        return json.loads(path.read_text())
    return json.loads(resources.files("interprior.assets").joinpath("data", spec_file).read_text())


@dataclass(frozen=True)
class Embodiment:
    """A humanoid as data. `groups` maps a group name to body names; `spec_file` holds the figures of its bodies
    and hinges (`load_spec`). The *full* joint vector is every non-root body's hinges in body order (what motion
    data holds); `jointed_bodies` are simulated with their hinges, the others are welded to their parent. `mjcf`:
    a model file whose body tree (geoms, meshes) the scene takes instead of building one from the spec's geoms."""

    name: str
    body_names: tuple[str, ...]
    parents: tuple[int, ...]
    jointed_bodies: tuple[int, ...]
    groups: tuple[tuple[str, tuple[str, ...]], ...]
    spec_file: str = "smplx_humanoid.json"
    mjcf: str | None = None
    fall_height: float = schema.FALL_HEIGHT  # m, root below this = fallen
    root_height: float = 0.95  # m, where the scene puts the root before any reset

    @property
    def num_bodies(self) -> int:
        return len(self.body_names)

    @cached_property
    def joint_axes(self) -> tuple[tuple[tuple[float, float, float], ...], ...]:
        """Per body, the unit axes of its hinges in its own frame, in order (the root: none)."""
        return tuple(tuple(tuple(float(x) for x in j["axis"]) for j in b["joints"] if j.get("type", "hinge") == "hinge")
                     for b in self.spec["bodies"])

    @cached_property
    def body_frames(self) -> tuple[tuple[float, float, float, float], ...]:
        """Per body, its frame's rotation in its parent's frame (wxyz; SMPL-X and the toy body: identity)."""
        return tuple(tuple(float(x) for x in b.get("quat", (1.0, 0.0, 0.0, 0.0))) for b in self.spec["bodies"])

    @cached_property
    def dof_start(self) -> tuple[int, ...]:
        """Per body, where its hinges begin in the full joint vector (the root: 0, it has none)."""
        starts, at = [0], 0
        for axes in self.joint_axes[1:]:
            starts.append(at)
            at += len(axes)
        return tuple(starts)

    @property
    def num_full_dofs(self) -> int:
        """Hinges of every body but the root (welded ones included): the motion data's joint vector."""
        return sum(len(a) for a in self.joint_axes)

    @cached_property
    def dof_index(self) -> tuple[int, ...]:
        """Positions of the simulated hinges inside the full joint vector."""
        return tuple(self.dof_start[b] + k for b in self.jointed_bodies for k in range(len(self.joint_axes[b])))

    @property
    def num_dofs(self) -> int:
        return len(self.dof_index)

    @property
    def euler_xyz(self) -> bool:
        """Every non-root body turns by three hinges x, y, z in an unrotated frame (SMPL-X, the toy body): joint
        angles are then intrinsic XYZ Euler angles, which the kinematics compute in closed form."""
        return (all(a == XYZ_HINGES for a in self.joint_axes[1:])
                and all(f == (1.0, 0.0, 0.0, 0.0) for f in self.body_frames))

    @cached_property
    def spec(self) -> dict:
        spec = load_spec(self.spec_file)
        names = tuple(b["name"] for b in spec["bodies"])
        if names != self.body_names:
            raise InterpriorError(f"embodiment {self.name!r}: {self.spec_file} lists bodies {names[:4]}..., "
                                  f"not the embodiment's order")
        return spec

    @cached_property
    def dof_names(self) -> tuple[str, ...]:
        """Names of the full joint vector's hinges (the MJCF joint and actuator names)."""
        return tuple(j["name"] for b in self.spec["bodies"][1:] for j in b["joints"])

    @cached_property
    def levels(self) -> tuple[tuple[int, ...], ...]:
        """Bodies by depth in the tree (root excluded): forward kinematics does one batched step per level."""
        depth = [0] * self.num_bodies
        for i in range(1, self.num_bodies):
            depth[i] = depth[self.parents[i]] + 1
        return tuple(tuple(i for i in range(self.num_bodies) if depth[i] == d) for d in range(1, max(depth) + 1))

    @cached_property
    def body_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.body_names)}

    def group(self, name: str) -> tuple[int, ...]:
        """The indices of group `name`'s bodies (an unknown group or body is an error naming it)."""
        named = dict(self.groups)
        if name not in named:
            raise InterpriorError(f"embodiment {self.name!r} has no body group {name!r}; it has {', '.join(named)}")
        missing = [b for b in named[name] if b not in self.body_index]
        if missing:
            raise InterpriorError(f"embodiment {self.name!r}: group {name!r} names unknown bodies {missing}")
        return tuple(self.body_index[b] for b in named[name])

    @cached_property
    def resolved(self) -> BodyGroups:
        """The groups as indices: resolved once, shared by every env of this body."""
        return BodyGroups(num_bodies=self.num_bodies, **{f: self.group(f) for f in (
            "key", "rotation", "contact", "left_hand", "right_hand", "fingertips", "feet", "torso")})


def _smplx_groups() -> tuple[tuple[str, tuple[str, ...]], ...]:
    names = schema.BODY_NAMES
    by_index = lambda indices: tuple(names[i] for i in indices)  # noqa: E731
    return (
        ("key", by_index(schema.KEY_BODIES)),
        ("rotation", by_index(schema.NOHAND_BODIES)),
        ("contact", by_index(schema.CONTACT_BODIES)),
        ("left_hand", by_index(schema.LEFT_HAND)),
        ("right_hand", by_index(schema.RIGHT_HAND)),
        ("fingertips", by_index(schema.FINGERTIPS)),
        ("feet", by_index(schema.FEET)),
        ("torso", ("Chest",)),
    )


def smplx(variant: schema.HumanoidVariant) -> Embodiment:
    return Embodiment(name=variant.name, body_names=schema.BODY_NAMES, parents=schema.BODY_PARENTS,
                      jointed_bodies=variant.jointed_bodies, groups=_smplx_groups())


def toy() -> Embodiment:
    """A small humanoid (13 bodies, 36 hinges): what tests use to show that nothing below the body description names
    an SMPL-X body. Its figures are `assets/data/toy_humanoid.json`."""
    names = ("root", "thigh_l", "shin_l", "foot_l", "thigh_r", "shin_r", "foot_r", "chest", "head", "arm_l", "hand_l",
             "arm_r", "hand_r")
    parents = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 7, 9, 7, 11)
    key = names[1:]
    groups = (("key", key), ("rotation", names), ("contact", key), ("left_hand", ("hand_l",)),
              ("right_hand", ("hand_r",)), ("fingertips", ()), ("feet", ("foot_l", "foot_r")), ("torso", ("chest",)))
    return Embodiment(name="toy", body_names=names, parents=parents, jointed_bodies=tuple(range(1, len(names))),
                      groups=groups, spec_file="toy_humanoid.json")


EMBODIMENTS: dict[str, Embodiment] = {**{name: smplx(v) for name, v in schema.VARIANTS.items()}, "toy": toy()}
SMPLX = EMBODIMENTS["full"]  # SMPL-X with every hinge (all its variants share this full joint vector)
