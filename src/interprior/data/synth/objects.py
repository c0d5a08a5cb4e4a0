"""Generated objects: boxes, a cylinder and a stool, described by primitives and written as one .obj mesh each.

The object frame is the mesh file's frame (see `interprior.assets.objects`), centred at the vertex mean as the
InterMimic/OMOMO meshes are. Every object is symmetric about its vertical axis (boxes and stool under 90° turns,
the cylinder under any turn), so an upright object resting on the floor has its frame origin at height
`rest_height` and the grasp geometry only depends on the side the humanoid stands at.

Sizes: `box` is fixed (0.4 m cube, the object the demo trains on); the others are drawn once per seed, so every
clip of one object uses one mesh. Boxes are packing boxes (60 kg/m³; the demo's `box` 25 kg/m³, 1.6 kg; the
opt-in `heavybox`, ~0.32 m, 150 kg/m³, 4-6 kg), the cylinder and the stool solid-ish (100 and 200 kg/m³). The
opt-in `longbox` (0.42-0.45 x 0.26-0.30 x 0.26-0.30 m) is held across its short or its long side. The density goes into a sidecar `<name>.json` that the
asset pipeline reads (its default is 200 kg/m³).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from interprior import schema
from interprior.files import atomic_write_text

# kg/m³ by kind: packing boxes, a light drum, a wooden stool; the demo's `box` is a lightly filled moving box
# (1.6 kg): flat rigid hands lift it by friction, which the CPU-trained demo expert learns within its budget
DENSITY = {"box": 60.0, "cylinder": 100.0, "stool": 200.0}
NAMED_DENSITY = {"box": 25.0, "heavybox": 150.0}  # heavybox: a packing box filled with books

OBJECT_NAMES: tuple[str, ...] = ("box", "smallbox", "bigbox", "cylinder", "stool")  # the default set
EXTRA_OBJECTS: tuple[str, ...] = ("heavybox", "longbox")  # opt-in (`--objects`, recipes)
ALL_OBJECTS: tuple[str, ...] = OBJECT_NAMES + EXTRA_OBJECTS
BOX_SIZE = 0.4  # m, the fixed demo box
CYLINDER_SECTIONS = 48  # mesh facets; the flat facets sit at most r(1 - cos(pi/48)) = 0.3 mm inside the circle
STOOL_SEAT_THICKNESS = 0.04
STOOL_LEG = 0.04  # square legs


@dataclass(frozen=True)
class Part:
    """A solid primitive in the object frame: a box (half extents) or an upright cylinder (radius, half height)."""

    kind: str  # "box" | "cylinder"
    center: tuple[float, float, float]
    half: tuple[float, float, float]  # box: half extents; cylinder: (radius, radius, half height)


@dataclass(frozen=True)
class SynthObject:
    """One generated object. `grip_z` is the object-frame height where the hands hold it, `grip_half_width` the
    distance from the vertical axis to the side surfaces the palms press on (per horizontal direction for boxes:
    x and y), `push_half_depth` the same for the face pushed (boxes: the face normal to the approach)."""

    name: str
    kind: str  # "box" | "cylinder" | "stool"
    parts: tuple[Part, ...]
    density: float = schema.OBJECT_DENSITY  # kg/m³

    # --- geometry -------------------------------------------------------------------------------------------
    @property
    def bounds(self) -> np.ndarray:
        """[2, 3] axis-aligned bounds (min, max) in the object frame."""
        lo = np.min([np.subtract(p.center, p.half) for p in self.parts], axis=0)
        hi = np.max([np.add(p.center, p.half) for p in self.parts], axis=0)
        return np.stack([lo, hi])

    @property
    def rest_height(self) -> float:
        """Height of the object frame's origin when the object stands upright on the floor."""
        return float(-self.bounds[0, 2])

    @property
    def height(self) -> float:
        return float(self.bounds[1, 2] - self.bounds[0, 2])

    @property
    def volume(self) -> float:
        vol = 0.0
        for p in self.parts:
            if p.kind == "box":
                vol += 8.0 * p.half[0] * p.half[1] * p.half[2]
            else:  # the written polygon prism, not the ideal cylinder
                n = CYLINDER_SECTIONS
                vol += 0.5 * n * p.half[0] ** 2 * np.sin(2 * np.pi / n) * 2.0 * p.half[2]
        return float(vol)

    @property
    def mass(self) -> float:
        return self.density * self.volume

    @property
    def grip_part(self) -> Part:
        """The part the hands hold (the seat of the stool, else the only part)."""
        return self.parts[0]

    def side_distance(self, direction_xy: np.ndarray) -> float:
        """Distance from the grip part's vertical axis to its side surface along a horizontal object-frame
        direction that is one of the part's face normals (boxes) or any direction (cylinders)."""
        p = self.grip_part
        if p.kind == "cylinder":
            return float(p.half[0])
        d = np.abs(np.asarray(direction_xy, dtype=np.float64))
        return float(p.half[0] if d[0] >= d[1] else p.half[1])

    @property
    def grip_z(self) -> float:
        """Object-frame height of the palm centres while holding: 7.5 cm under the top edge (the hand stays on the
        side, and low objects can be reached from a squat whose hip and knee flexion stay below 85°, see
        `ik.MAX_MIDDLE_ANGLE`), the middle of the seat's edge for the stool."""
        p = self.grip_part
        if self.kind == "stool":
            return float(p.center[2])
        top = p.center[2] + p.half[2]
        return float(max(p.center[2], top - 0.075))

    @property
    def push_z(self) -> float:
        """Object-frame height of the palm centres while pushing."""
        p = self.grip_part
        if self.kind == "stool":
            return float(p.center[2])
        return float(p.center[2] + p.half[2] - 0.07)

    # --- meshes ---------------------------------------------------------------------------------------------
    def mesh(self):
        """A trimesh of all parts (one mesh, parts as separate closed shells)."""
        import trimesh

        pieces = []
        for p in self.parts:
            if p.kind == "box":
                m = trimesh.creation.box(extents=2.0 * np.asarray(p.half))
            else:
                m = trimesh.creation.cylinder(radius=p.half[0], height=2.0 * p.half[2], sections=CYLINDER_SECTIONS)
            m.apply_translation(p.center)
            pieces.append(m)
        return trimesh.util.concatenate(pieces)

    @property
    def vertices(self) -> np.ndarray:
        return np.asarray(self.mesh().vertices)

    def signed(self, points: np.ndarray, far: float = np.inf) -> np.ndarray:
        """[N] signed distance (negative inside) of object-frame points [N, 3] to the union of the parts: exact
        for boxes, the ideal cylinder for cylinders (the mesh's facets lie within 0.3 mm of it). Same interface as
        `meshdist.MeshDistance` (`far` is accepted and ignored: the analytic distance is cheap everywhere)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        out = np.full(len(p), np.inf)
        for part in self.parts:
            q = p - np.asarray(part.center)
            if part.kind == "box":
                d = np.abs(q) - np.asarray(part.half)
            else:
                d = np.stack([np.linalg.norm(q[:, :2], axis=1) - part.half[0], np.abs(q[:, 2]) - part.half[2]], 1)
            inside = np.minimum(d.max(axis=1), 0.0)
            out = np.minimum(out, np.linalg.norm(np.maximum(d, 0.0), axis=1) + inside)
        return out

    def write(self, objects_dir: str | Path) -> Path:
        """Write objects_dir/<name>/<name>.obj (atomic rename; the mesh frame is the object frame)."""
        path = Path(objects_dir) / self.name / f"{self.name}.obj"
        atomic_write_text(path, self.mesh().export(file_type="obj"))
        atomic_write_text(path.with_suffix(".json"), json.dumps({"density": self.density}) + "\n")
        return path


def _centred(name: str, kind: str, parts: list[Part]) -> SynthObject:
    """Shift the parts so that the mesh's vertex mean is the origin (the convention of the released meshes)."""
    density = NAMED_DENSITY.get(name, DENSITY[kind])
    obj = SynthObject(name, kind, tuple(parts), density)
    shift = -np.asarray(obj.mesh().vertices).mean(axis=0)
    shift[np.abs(shift) < 1e-12] = 0.0
    moved = [Part(p.kind, tuple(float(c) for c in np.add(p.center, shift)), p.half) for p in parts]
    return SynthObject(name, kind, tuple(moved), density)


def make_box(name: str, size_xyz) -> SynthObject:
    sx, sy, sz = (float(s) for s in size_xyz)
    return _centred(name, "box", [Part("box", (0.0, 0.0, 0.0), (sx / 2, sy / 2, sz / 2))])


def make_cylinder(name: str, radius: float, height: float) -> SynthObject:
    return _centred(name, "cylinder", [Part("cylinder", (0.0, 0.0, 0.0), (radius, radius, height / 2))])


def make_stool(name: str, seat: float, height: float) -> SynthObject:
    """Seat (first part: the one held) on four square legs that end exactly at the seat's underside."""
    t, leg = STOOL_SEAT_THICKNESS, STOOL_LEG
    parts = [Part("box", (0.0, 0.0, height - t / 2), (seat / 2, seat / 2, t / 2))]
    inset = seat / 2 - 0.01 - leg / 2
    leg_h = height - t
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(Part("box", (sx * inset, sy * inset, leg_h / 2), (leg / 2, leg / 2, leg_h / 2)))
    return _centred(name, "stool", parts)


def make_objects(seed: int) -> dict[str, SynthObject]:
    """The object set of one seed (names without underscores: clip names are <subject>_<object>_<index>)."""
    rng = np.random.default_rng([int(seed), 7919])  # own stream: sizes do not depend on the number of clips
    u = rng.uniform
    side = u(0.26, 0.34)
    big = u(0.42, 0.45)
    out = {
        "box": make_box("box", (BOX_SIZE, BOX_SIZE, BOX_SIZE)),
        "smallbox": make_box("smallbox", (side, side * u(0.9, 1.0), u(0.24, 0.30))),
        "bigbox": make_box("bigbox", (big, big * u(0.92, 1.0), u(0.36, 0.42))),
        "cylinder": make_cylinder("cylinder", u(0.12, 0.15), u(0.32, 0.42)),
        "stool": make_stool("stool", u(0.34, 0.38), u(0.42, 0.47)),
    }
    # drawn after the default set's sizes, which therefore do not change
    heavy = u(0.30, 0.34)
    out["heavybox"] = make_box("heavybox", (heavy, heavy * u(0.92, 1.0), u(0.28, 0.34)))
    out["longbox"] = make_box("longbox", (u(0.42, 0.45), u(0.26, 0.30), u(0.26, 0.30)))
    return out
