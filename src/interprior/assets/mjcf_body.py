"""A humanoid whose body tree comes from a model file (`Embodiment.mjcf`, e.g. the fetched Unitree G1) instead of
the spec's geoms: its default classes, assets (mesh paths made absolute), body tree and contact excludes, as XML
fragments for the scene builder (`interprior.assets.scene`), with our collision bits and the spec's armature.
The file's own actuators, sensors and keyframes are left out: the scene adds its own from the spec."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from interprior.assets.embodiment import Embodiment


@dataclass(frozen=True)
class MjcfParts:
    defaults: str  # <default> elements
    assets: str  # children of <asset>
    body: str  # the root <body> element
    excludes: tuple[tuple[str, str], ...]  # body pairs the file excludes from collision


def _fmt(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _collision_bits(root: ET.Element, contype: int, conaffinity: int) -> None:
    """Geoms (and geom defaults) that collide get the humanoid's bits: never each other, always ground and objects."""
    for geom in root.iter("geom"):
        if int(geom.get("contype", "1")) or int(geom.get("conaffinity", "1")):
            if "contype" in geom.attrib or "conaffinity" in geom.attrib or geom.get("class") is None:
                geom.set("contype", str(contype))
                geom.set("conaffinity", str(conaffinity))


def mjcf_parts(body: Embodiment, contype: int, conaffinity: int) -> MjcfParts:
    """The fragments of `body.mjcf` (its root body placed at `body.root_height`)."""
    path = Path(body.mjcf)
    tree = ET.parse(path).getroot()
    compiler = tree.find("compiler")
    meshdir = path.parent / (compiler.get("meshdir", "") if compiler is not None else "")
    assets = tree.find("asset")
    for element in assets.iter() if assets is not None else ():
        if element.get("file"):
            element.set("file", str((meshdir / element.get("file")).resolve()))
    defaults = tree.findall("default")
    for d in defaults:
        _collision_bits(d, contype, conaffinity)
    root = tree.find("worldbody").find("body")
    if root is None or root.get("name") != body.body_names[0]:
        raise ValueError(f"{path}: the first body of its worldbody is not {body.body_names[0]!r}")
    root.set("pos", _fmt((0.0, 0.0, body.root_height)))
    _collision_bits(root, contype, conaffinity)
    armature = {j["name"]: j["armature"] for b in body.spec["bodies"] for j in b["joints"] if "armature" in j}
    for joint in root.iter("joint"):
        if joint.get("name") in armature:
            joint.set("armature", f"{armature[joint.get('name')]:.6g}")
    contact = tree.find("contact")
    excludes = tuple((e.get("body1"), e.get("body2")) for e in contact.iter("exclude")) if contact is not None else ()
    text = lambda elements: "\n".join(ET.tostring(e, encoding="unicode") for e in elements)  # noqa: E731
    return MjcfParts(defaults=text(defaults), assets=text(list(assets) if assets is not None else []),
                     body=ET.tostring(root, encoding="unicode"), excludes=excludes)
