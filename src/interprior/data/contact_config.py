"""Thresholds of the kinematic contact-label inference (`interprior.data.contacts`): `ContactConfig`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from interprior import schema

# Extra distance (m) before a body counts as "far" (-1), per body: the SMPL-X segments the released labels were made
# from carry more flesh than the humanoid's collision geoms (thighs and belly most). Calibrated on the 27 OMOMO_new
# sample clips (subject 2, largetable and woodchair; the per-object optima agree to ~1-2 cm), rounded to 5 mm.
# Bodies not listed: 0.
FAR_SLACK: dict[str, float] = {
    "Pelvis": 0.03, "L_Hip": 0.06, "R_Hip": 0.06, "L_Knee": 0.015, "R_Knee": 0.015,
    "Torso": 0.06, "Spine": 0.03, "Neck": 0.015, "Head": 0.02, "L_Thorax": 0.015, "R_Thorax": 0.015,
    "L_Elbow": 0.02, "R_Elbow": 0.02,
}


@dataclass(frozen=True)
class ContactConfig:
    """Thresholds of the inference (metres, seconds). Defaults tuned on the 27 OMOMO_new sample clips (one set
    of values for all clips; see the module docstring and `contact_agreement`)."""

    near_distance: float = 0.02  # (iii) and the fixed +1 threshold outside interaction (paper 0.01, converter 0.02)
    sigma_margin: float = 0.01  # adaptive sigma = d_min + margin (paper: 0.005 on SMPL-X vertices)
    far_distance: float = 0.10  # -1 beyond this (paper: sigma_p = 0.1) plus the body's far slack
    far_slack: tuple[tuple[str, float], ...] = tuple(FAR_SLACK.items())  # (body name, extra metres)
    max_interaction_distance: float = 0.10  # no interaction when every body is farther than this
    airborne_height: float = 0.05  # object's lowest point above the floor by more than this = airborne
    free_fall_tolerance: float = 6.0  # m/s²: |a - g| above this = an external force acts on an airborne object
    static_step: float = 0.005  # m per frame: the object is static when it moves less
    friction: float = schema.FRICTION  # mu of the friction-only test (ii)
    friction_tolerance: float = 4.0  # m/s²: residual acceleration beyond friction that counts as a push
    use_ground_test: bool = True  # condition (ii)
    ground_height: float = 0.10  # a foot part lower than this above the floor may be on the ground
    foot_static_step: float = 0.02  # m per frame (toe, horizontal): a slower foot is planted
    hand_parts: str = "smplx"  # "smplx": converter's segmentation (thumb = wrist, 12 fingers share); "bodies"
    scale_geoms: bool = True  # stretch capsules with the clip's bone lengths (boxes keep their size)
    geom_inflation: float = 0.0  # added to every geom's radius/half-size (SMPL-X flesh vs. collision geoms)
    frame_chunk: int = 64  # frames per batch of the distance computation (memory and speed only)

    def __post_init__(self) -> None:
        if self.hand_parts not in ("smplx", "bodies"):
            raise ValueError(f"hand_parts must be 'smplx' or 'bodies', got {self.hand_parts!r}")
        unknown = [name for name, _ in self.far_slack if name not in schema.BODY_INDEX]
        if unknown:
            raise ValueError(f"far_slack names unknown bodies: {unknown}")

    def far_thresholds(self) -> Tensor:
        """[52] per-body distance beyond which a body is far (-1)."""
        out = torch.full((schema.NUM_BODIES,), self.far_distance, dtype=torch.float64)
        for name, slack in self.far_slack:
            out[schema.BODY_INDEX[name]] += slack
        return out


DEFAULT_CONFIG = ContactConfig()
