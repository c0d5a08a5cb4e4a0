"""Scene = humanoid + object(s) + ground, compiled into one MjModel shared by every backend.

`SceneLayout` records where each quantity lives in qpos/qvel/ctrl/sensordata so backends never search by name
in the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from interprior import schema
from interprior.assets import humanoid as hum
from interprior.assets.embodiment import Embodiment
from interprior.assets.mjcf_body import mjcf_parts

FLOOR = "floor"


@dataclass(frozen=True)
class SceneConfig:
    body: Embodiment = hum.SMPLX  # the humanoid (`interprior.assets.embodiment`)
    offsets: tuple | None = None  # subject-fitted bone offsets [B][3]; None = default shape
    objects: Sequence = ()  # ObjectAsset instances (see interprior.assets.objects)
    physics_dt: float = schema.PHYSICS_DT
    substeps: int = 4  # MuJoCo steps per control step: 30 Hz control at 120 Hz physics
    friction: float = schema.FRICTION
    self_collision: bool = False
    solver_iterations: int = 20
    ls_iterations: int = 10
    object_contact_sensors: bool = True

    @property
    def control_dt(self) -> float:
        return self.physics_dt * self.substeps


def object_body_name(i: int, asset) -> str:
    return f"object{i}_{asset.name}"


def build_scene_xml(cfg: SceneConfig) -> str:
    hopts = hum.HumanoidOptions(body=cfg.body, offsets=cfg.offsets, self_collision=cfg.self_collision)
    assets = "\n".join(a.asset_xml(prefix=f"object{i}_") for i, a in enumerate(cfg.objects))
    bodies = "\n".join(
        a.body_xml(object_body_name(i, a), pos=(1.0 + i, 0.0, 1.0), quat_wxyz=(1.0, 0.0, 0.0, 0.0))
        for i, a in enumerate(cfg.objects)
    )
    sensors = []
    for b in cfg.body.body_names:
        sensors.append(f'<contact name="{b}__ground" body1="{b}" geom2="{FLOOR}" data="found force" reduce="netforce"/>')
        if cfg.object_contact_sensors:
            for i, a in enumerate(cfg.objects):
                sensors.append(
                    f'<contact name="{b}__obj{i}" body1="{b}" body2="{object_body_name(i, a)}" '
                    'data="found force" reduce="netforce"/>'
                )
    humanoid_contype = 3 if cfg.self_collision else hum.HUMANOID_CONTYPE
    defaults = robot_assets = ""
    if cfg.body.mjcf:  # a robot's own body tree (meshes, classes) from its model file
        parts = mjcf_parts(cfg.body, humanoid_contype, hum.HUMANOID_CONAFFINITY)
        defaults, robot_assets, humanoid_xml = parts.defaults, parts.assets, parts.body
    else:
        humanoid_xml = hum.humanoid_body_xml(hopts)
        if cfg.self_collision:
            humanoid_xml = humanoid_xml.replace(f'contype="{hum.HUMANOID_CONTYPE}"', f'contype="{humanoid_contype}"')
    return f"""<mujoco model="interprior_scene">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{cfg.physics_dt:.10g}" integrator="implicitfast" cone="pyramidal" solver="Newton"
          iterations="{cfg.solver_iterations}" ls_iterations="{cfg.ls_iterations}"/>
  <visual>
    <headlight ambient="0.45 0.45 0.45" diffuse="0.6 0.6 0.6" specular="0.1 0.1 0.1"/>
    <global offwidth="1920" offheight="1080"/>
    <quality shadowsize="2048"/>
  </visual>
{defaults}
  <asset>
    <texture name="sky" type="skybox" builtin="gradient" rgb1="0.62 0.74 0.86" rgb2="0.16 0.2 0.26" width="256" height="256"/>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.32 0.36 0.42" rgb2="0.42 0.46 0.52" width="512" height="512"/>
    <material name="grid" texture="grid" texrepeat="8 8" reflectance="0.05"/>
{robot_assets}
{assets}
  </asset>
  <worldbody>
    <light name="sun" pos="0 0 6" dir="0.2 0.3 -1" directional="true" diffuse="0.6 0.6 0.6" castshadow="true"/>
    <geom name="{FLOOR}" type="plane" size="0 0 0.05" material="grid" friction="{cfg.friction} 0.005 0.0001"
          contype="{hum.GROUND_CONTYPE}" conaffinity="{hum.GROUND_CONAFFINITY}"/>
{humanoid_xml}
{bodies}
  </worldbody>
  <contact>
{{EXCLUDES}}
  </contact>
  <actuator>
{hum.actuator_xml(cfg.body)}
  </actuator>
  <sensor>
{chr(10).join(sensors)}
  </sensor>
</mujoco>
"""


@dataclass
class SceneLayout:
    """Addresses inside the compiled model, in schema order."""

    num_objects: int
    humanoid_body_ids: np.ndarray  # [B] MuJoCo body ids
    object_body_ids: np.ndarray  # [n_obj]
    dof_qpos_adr: np.ndarray  # [variant dofs] qpos addresses of the hinges, schema order
    dof_qvel_adr: np.ndarray
    object_qpos_adr: np.ndarray  # [n_obj] start of each object's free joint (7 values)
    object_qvel_adr: np.ndarray
    ground_sensor_adr: np.ndarray  # [B] sensordata address of each body's ground contact (found, fx, fy, fz)
    object_sensor_adr: np.ndarray  # [B, n_obj]
    action_offset: np.ndarray  # [variant dofs]
    action_scale: np.ndarray
    extra: dict = field(default_factory=dict)


@dataclass
class Scene:
    config: SceneConfig
    xml: str
    model: object  # mujoco.MjModel
    layout: SceneLayout

    @property
    def body(self) -> Embodiment:
        return self.config.body


def _layout(model, cfg: SceneConfig) -> SceneLayout:
    import mujoco

    names = cfg.body.body_names
    body_ids = np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, n) for n in names])
    obj_ids = np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, object_body_name(i, a))
                        for i, a in enumerate(cfg.objects)], dtype=np.int64)
    dof_names = [cfg.body.dof_names[d] for d in cfg.body.dof_index]
    jids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in dof_names]
    obj_jnt = [model.body_jntadr[b] for b in obj_ids]

    def sensor_adr(name: str) -> int:
        return int(model.sensor_adr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SENSOR, name)])

    ground = np.array([sensor_adr(f"{b}__ground") for b in names])
    if cfg.object_contact_sensors and cfg.objects:
        objs = np.array([[sensor_adr(f"{b}__obj{i}") for i in range(len(cfg.objects))] for b in names])
    else:
        objs = np.zeros((len(names), 0), dtype=np.int64)
    offset, scale = hum.pd_action_mapping(cfg.body)
    return SceneLayout(
        num_objects=len(cfg.objects),
        humanoid_body_ids=body_ids,
        object_body_ids=obj_ids,
        dof_qpos_adr=np.array([model.jnt_qposadr[j] for j in jids], dtype=np.int64),
        dof_qvel_adr=np.array([model.jnt_dofadr[j] for j in jids], dtype=np.int64),
        object_qpos_adr=np.array([model.jnt_qposadr[j] for j in obj_jnt], dtype=np.int64),
        object_qvel_adr=np.array([model.jnt_dofadr[j] for j in obj_jnt], dtype=np.int64),
        ground_sensor_adr=ground,
        object_sensor_adr=objs,
        action_offset=offset,
        action_scale=scale,
        extra={"dof_index": cfg.body.dof_index},
    )


def build_scene(cfg: SceneConfig = SceneConfig()) -> Scene:
    """Compile the scene. Overlapping neighbours are found by compiling once with self-collision on."""
    import mujoco

    xml = build_scene_xml(cfg)
    probe_cfg = SceneConfig(body=cfg.body, offsets=cfg.offsets, self_collision=True, object_contact_sensors=False)
    probe = mujoco.MjModel.from_xml_string(build_scene_xml(probe_cfg).replace("{EXCLUDES}", ""))
    pairs = hum.self_collision_excludes(probe, cfg.body)
    if cfg.body.mjcf:
        pairs = sorted(set(pairs) | set(mjcf_parts(cfg.body, 1, 2).excludes))
    excludes = "\n".join(f'    <exclude body1="{a}" body2="{b}"/>' for a, b in pairs)
    xml = xml.replace("{EXCLUDES}", excludes)
    model = mujoco.MjModel.from_xml_string(xml)
    if model.body(1).name != cfg.body.body_names[0]:
        raise RuntimeError("humanoid must be the first body tree in the scene")
    return Scene(config=cfg, xml=xml, model=model, layout=_layout(model, cfg))


def lowest_point(model, data, num_bodies: int = schema.NUM_BODIES) -> float:
    """Lowest world z over the humanoid's geoms (bodies 1..num_bodies) at the current pose (exact for spheres,
    capsules, boxes)."""
    import mujoco

    lowest = np.inf
    for g in range(model.ngeom):
        if model.geom_bodyid[g] == 0 or model.geom_bodyid[g] > num_bodies:
            continue
        kind, size = model.geom_type[g], model.geom_size[g]
        pos, mat = data.geom_xpos[g], data.geom_xmat[g].reshape(3, 3)
        if kind == mujoco.mjtGeom.mjGEOM_SPHERE:
            z = pos[2] - size[0]
        elif kind == mujoco.mjtGeom.mjGEOM_CAPSULE:
            z = pos[2] - abs(mat[2, 2]) * size[1] - size[0]
        elif kind == mujoco.mjtGeom.mjGEOM_BOX:
            z = pos[2] - np.abs(mat[2, :]) @ size[:3]
        else:
            z = pos[2] - model.geom_rbound[g]
        lowest = min(lowest, z)
    return float(lowest)


def standing_pelvis_height(model, num_bodies: int = schema.NUM_BODIES) -> float:
    """Pelvis height when the zero pose stands with its lowest point on the floor."""
    import mujoco

    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    return float(data.xpos[1][2] - lowest_point(model, data, num_bodies))
