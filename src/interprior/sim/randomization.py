"""Per-env dynamics randomization, described once and applied by both backends.

A `DynamicsRandomization` holds per-env multipliers/offsets of four MjModel fields (geom friction, body mass,
body inertia, body centre of mass). `randomized_fields` turns it into the new field values from the nominal
model; the CPU backend writes them into one MjModel copy per env (`apply_to_models`, then `mj_setConst`), the
Warp backend into per-world model arrays (then `mujoco_warp.set_const`). Both recompute the constants that
depend on mass (subtree mass, inverse weights used to soften contacts), so the two engines stay comparable.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields

import torch
from torch import Tensor

# MjModel fields that a randomization writes, and the derived fields each engine recomputes afterwards.
RANDOMIZED_FIELDS = ("geom_friction", "body_mass", "body_inertia", "body_ipos")
DERIVED_FIELDS = ("body_subtreemass", "body_invweight0", "dof_invweight0", "tendon_invweight0", "actuator_acc0")


@dataclass
class DynamicsRandomization:
    """Per-env values, n envs. The world body (0) should keep scale 1 and offset 0."""

    friction_scale: Tensor  # [n, ngeom] multiplies geom_friction (slide, spin, roll); contact friction is the
    #                         max over the two geoms, so scaling every geom by s scales all contact friction by s
    mass_scale: Tensor  # [n, nbody] multiplies body_mass
    inertia_scale: Tensor  # [n, nbody] multiplies body_inertia (principal moments)
    com_offset: Tensor  # [n, nbody, 3] added to body_ipos (centre of mass in the body frame, metres)

    @property
    def num_envs(self) -> int:
        return self.mass_scale.shape[0]

    @staticmethod
    def nominal(model, n: int) -> "DynamicsRandomization":
        """No change: all scales 1, offsets 0."""
        return DynamicsRandomization(
            friction_scale=torch.ones(n, model.ngeom, dtype=torch.float64),
            mass_scale=torch.ones(n, model.nbody, dtype=torch.float64),
            inertia_scale=torch.ones(n, model.nbody, dtype=torch.float64),
            com_offset=torch.zeros(n, model.nbody, 3, dtype=torch.float64),
        )

    def select(self, index) -> "DynamicsRandomization":
        return DynamicsRandomization(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def to(self, device=None, dtype=None) -> "DynamicsRandomization":
        return DynamicsRandomization(**{f.name: getattr(self, f.name).to(device, dtype) for f in fields(self)})

    def check(self, model) -> None:
        n = self.num_envs
        expected = {"friction_scale": (n, model.ngeom), "mass_scale": (n, model.nbody),
                    "inertia_scale": (n, model.nbody), "com_offset": (n, model.nbody, 3)}
        for name, shape in expected.items():
            value = getattr(self, name)
            if tuple(value.shape) != shape:
                raise ValueError(f"DynamicsRandomization.{name} has shape {tuple(value.shape)}, expected {shape}")
        for name in ("friction_scale", "mass_scale", "inertia_scale"):
            if not bool((getattr(self, name) > 0).all()):
                raise ValueError(f"DynamicsRandomization.{name} must be positive")


@dataclass(frozen=True)
class RandomizationRanges:
    """Uniform ranges for `sample_randomization`."""

    friction: tuple[float, float] = (0.7, 1.3)  # one scale per env, shared by all geoms
    mass: tuple[float, float] = (0.9, 1.1)  # one scale per body and env
    inertia: tuple[float, float] = (1.0, 1.0)  # extra per-body factor on top of the mass scale (1 = same density)
    com_offset: float = 0.0  # per-axis offset in [-com_offset, com_offset] metres, per body and env


def sample_randomization(model, n: int, ranges: RandomizationRanges = RandomizationRanges(),
                         generator: torch.Generator | None = None, bodies=None) -> DynamicsRandomization:
    """Draw n envs' values. `bodies` (ids) limits mass/inertia/com changes to those bodies (default: all but the
    world body). Inertia scales with mass by default: a body that gets heavier at the same shape gets denser."""

    def uniform(shape, lo_hi):
        lo, hi = lo_hi
        return lo + (hi - lo) * torch.rand(shape, generator=generator, dtype=torch.float64)

    rand = DynamicsRandomization.nominal(model, n)
    rand.friction_scale[:] = uniform((n, 1), ranges.friction)
    chosen = torch.zeros(model.nbody, dtype=torch.bool)
    chosen[list(range(1, model.nbody)) if bodies is None else list(bodies)] = True
    chosen[0] = False
    mass = uniform((n, model.nbody), ranges.mass)
    inertia = mass * uniform((n, model.nbody), ranges.inertia)
    offset = uniform((n, model.nbody, 3), (-ranges.com_offset, ranges.com_offset))
    rand.mass_scale = torch.where(chosen, mass, rand.mass_scale)
    rand.inertia_scale = torch.where(chosen, inertia, rand.inertia_scale)
    rand.com_offset = torch.where(chosen[:, None], offset, rand.com_offset)
    return rand


def nominal_fields(model, device=None, dtype=torch.float64) -> dict[str, Tensor]:
    """The randomized fields of the nominal MjModel as torch tensors (no env dimension)."""
    return {name: torch.as_tensor(getattr(model, name), device=device, dtype=dtype) for name in RANDOMIZED_FIELDS}


def randomized_fields(nominal: dict[str, Tensor], rand: DynamicsRandomization) -> dict[str, Tensor]:
    """New per-env field values [n, ...] from the nominal values and a randomization (batched, any device)."""
    return {
        "geom_friction": nominal["geom_friction"][None] * rand.friction_scale[..., None],
        "body_mass": nominal["body_mass"][None] * rand.mass_scale,
        "body_inertia": nominal["body_inertia"][None] * rand.inertia_scale[..., None],
        "body_ipos": nominal["body_ipos"][None] + rand.com_offset,
    }


def model_copies(model, n: int) -> list:
    """n independent copies of an MjModel (mujoco.rollout accepts one model per env)."""
    return [copy.copy(model) for _ in range(n)]


def apply_to_models(models: list, nominal_model, rand: DynamicsRandomization, env_ids=None) -> None:
    """CPU counterpart of `MujocoWarpBackend.randomize`: write the randomized fields into the per-env MjModel
    copies `models[env_ids]` (all when None) and recompute their mass-dependent constants with mj_setConst.
    Values are computed from `nominal_model`, so repeated calls do not compound."""
    import mujoco

    ids = list(range(len(models))) if env_ids is None else [int(i) for i in torch.as_tensor(env_ids).reshape(-1)]
    if len(ids) != rand.num_envs:
        raise ValueError(f"randomization has {rand.num_envs} envs, but {len(ids)} env ids were given")
    rand.check(nominal_model)
    values = {k: v.numpy() for k, v in randomized_fields(nominal_fields(nominal_model), rand.to("cpu")).items()}
    if any(models[i] is nominal_model for i in ids) or len({id(models[i]) for i in ids}) != len(ids):
        raise ValueError("apply_to_models needs one MjModel copy per env (see model_copies), not shared models")
    data = mujoco.MjData(nominal_model)  # scratch data for mj_setConst (it runs kinematics at qpos0)
    for row, i in enumerate(ids):  # one MjModel per env: the CPU engine has no batched model
        m = models[i]
        for name, value in values.items():
            getattr(m, name)[:] = value[row]
        # a moved centre of mass leaves the inertial frame off the body frame: drop the compiler's "same frame" /
        # "simple body" shortcuts (set for e.g. a centred box), which mj_setConst would otherwise reject
        m.body_sameframe[:] = 0
        m.body_simple[:] = 0
        m.dof_simplenum[:] = 0
        mujoco.mj_setConst(m, data)
