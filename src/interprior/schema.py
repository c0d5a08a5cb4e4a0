"""The one place that owns body order, body groups, DoF layout and the motion-file column layout.

Everything else derives its dimensions from here. Body order is the depth-first order of InterMimic's
SMPL-X humanoid, which is also the order of bodies in the motion files. Quaternions inside the package are
**wxyz** (MuJoCo's order); files store xyzw and are converted at the IO boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

BODY_NAMES: tuple[str, ...] = (
    "Pelvis",
    "L_Hip", "L_Knee", "L_Ankle", "L_Toe",
    "R_Hip", "R_Knee", "R_Ankle", "R_Toe",
    "Torso", "Spine", "Chest", "Neck", "Head",
    "L_Thorax", "L_Shoulder", "L_Elbow", "L_Wrist",
    "L_Index1", "L_Index2", "L_Index3",
    "L_Middle1", "L_Middle2", "L_Middle3",
    "L_Pinky1", "L_Pinky2", "L_Pinky3",
    "L_Ring1", "L_Ring2", "L_Ring3",
    "L_Thumb1", "L_Thumb2", "L_Thumb3",
    "R_Thorax", "R_Shoulder", "R_Elbow", "R_Wrist",
    "R_Index1", "R_Index2", "R_Index3",
    "R_Middle1", "R_Middle2", "R_Middle3",
    "R_Pinky1", "R_Pinky2", "R_Pinky3",
    "R_Ring1", "R_Ring2", "R_Ring3",
    "R_Thumb1", "R_Thumb2", "R_Thumb3",
)
NUM_BODIES = len(BODY_NAMES)  # 52
BODY_INDEX = {name: i for i, name in enumerate(BODY_NAMES)}


def _parent(name: str) -> int:
    """Parent index in the depth-first tree (fingers hang off the wrist, segments off the previous one)."""
    if name == "Pelvis":
        return -1
    side = name[:2]
    if name[-1] in "123" and name[:-1].split("_")[1] in ("Index", "Middle", "Pinky", "Ring", "Thumb"):
        seg = int(name[-1])
        return BODY_INDEX[f"{side}Wrist"] if seg == 1 else BODY_INDEX[name[:-1] + str(seg - 1)]
    chain = {
        "L_Hip": "Pelvis", "L_Knee": "L_Hip", "L_Ankle": "L_Knee", "L_Toe": "L_Ankle",
        "R_Hip": "Pelvis", "R_Knee": "R_Hip", "R_Ankle": "R_Knee", "R_Toe": "R_Ankle",
        "Torso": "Pelvis", "Spine": "Torso", "Chest": "Spine", "Neck": "Chest", "Head": "Neck",
        "L_Thorax": "Chest", "L_Shoulder": "L_Thorax", "L_Elbow": "L_Shoulder", "L_Wrist": "L_Elbow",
        "R_Thorax": "Chest", "R_Shoulder": "R_Thorax", "R_Elbow": "R_Shoulder", "R_Wrist": "R_Elbow",
    }
    return BODY_INDEX[chain[name]]


BODY_PARENTS: tuple[int, ...] = tuple(_parent(n) for n in BODY_NAMES)

# Joints: every body but the pelvis has three serial hinges x, y, z (intrinsic XYZ Euler angles).
AXES = ("x", "y", "z")
DOFS_PER_JOINT = 3
NUM_JOINTS = NUM_BODIES - 1  # 51
NUM_DOFS = NUM_JOINTS * DOFS_PER_JOINT  # 153
DOF_NAMES: tuple[str, ...] = tuple(f"{b}_{a}" for b in BODY_NAMES[1:] for a in AXES)

# --- body groups -------------------------------------------------------------------------------------------
FINGER_BODIES: tuple[int, ...] = tuple(i for i, n in enumerate(BODY_NAMES) if n[-1] in "123")
LEFT_HAND: tuple[int, ...] = tuple(range(BODY_INDEX["L_Wrist"], BODY_INDEX["L_Thumb3"] + 1))  # wrist + 15
RIGHT_HAND: tuple[int, ...] = tuple(range(BODY_INDEX["R_Wrist"], BODY_INDEX["R_Thumb3"] + 1))
# "No hand" bodies: everything but the finger segments (22 incl. pelvis).
WRIST_BODIES: tuple[int, ...] = (BODY_INDEX["L_Wrist"], BODY_INDEX["R_Wrist"])
NOHAND_BODIES: tuple[int, ...] = tuple(i for i in range(NUM_BODIES) if i not in FINGER_BODIES)
# Key bodies for tracking errors (E_h) and terminations: the non-finger bodies without the pelvis (21).
KEY_BODIES: tuple[int, ...] = NOHAND_BODIES[1:]
FINGERTIPS: tuple[int, ...] = tuple(i for i in FINGER_BODIES if BODY_NAMES[i].endswith("3"))
CONTACT_BODIES: tuple[int, ...] = KEY_BODIES + FINGERTIPS  # 31
FEET: tuple[int, ...] = tuple(BODY_INDEX[n] for n in ("L_Ankle", "L_Toe", "R_Ankle", "R_Toe"))


@dataclass(frozen=True)
class HumanoidVariant:
    """Which bodies carry hinge joints. Every variant keeps all 52 bodies (rigid ones are welded),
    so per-body state always has 52 rows and the same order."""

    name: str
    jointed_bodies: tuple[int, ...]

    @property
    def num_dofs(self) -> int:
        return len(self.jointed_bodies) * DOFS_PER_JOINT

    @property
    def dof_index(self) -> tuple[int, ...]:
        """Positions of this variant's DoFs inside the full 153-vector."""
        return tuple((b - 1) * DOFS_PER_JOINT + a for b in self.jointed_bodies for a in range(DOFS_PER_JOINT))


FULL = HumanoidVariant("full", tuple(range(1, NUM_BODIES)))
BODY_ONLY = HumanoidVariant("body_only", KEY_BODIES)  # rigid hands: 21 joints, 63 DoF
VARIANTS = {v.name: v for v in (FULL, BODY_ONLY)}

# --- InterMimic motion file layout (float32 [T, 591], 30 fps, z-up, quaternions xyzw) --------------------------
FILE_FPS = 30.0
FILE_COLUMNS = 591
COL_ROOT_POS = slice(0, 3)
COL_ROOT_ROT = slice(3, 7)
COL_UNUSED_A = slice(7, 9)
COL_DOF = slice(9, 9 + NUM_DOFS)  # 9:162, exp-map per joint (Isaac Gym's convention), informational only
COL_BODY_POS = slice(162, 162 + 3 * NUM_BODIES)  # 162:318
COL_OBJ_POS = slice(318, 321)
COL_OBJ_ROT = slice(321, 325)
COL_UNUSED_B = slice(325, 330)
COL_OBJ_CONTACT = 330
COL_CONTACT = slice(331, 331 + NUM_BODIES)  # 331:383, labels {-1, 0, +1}
COL_BODY_ROT = slice(383, 383 + 4 * NUM_BODIES)  # 383:591
assert COL_BODY_ROT.stop == FILE_COLUMNS

# --- timing and physics constants -----------------------------------------------------------------------------
CONTROL_HZ = 30.0
PHYSICS_DT = 1.0 / 120.0  # MuJoCo step: 1/60 s with 2 substeps
OBJECT_DENSITY = 200.0
FRICTION = 0.9
NUM_OBJECT_POINTS = 1024
OBJECT_POINTS_SEED = 2024
MAX_CONVEX_HULLS = 64
FALL_HEIGHT = 0.3  # pelvis below this = fallen
