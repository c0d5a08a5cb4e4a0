"""Contact labels of a generated clip, with the meaning the file format gives them (`interprior.data.contacts`).

The object flag is the planned contact span (a palm, or both, on the object). Per body, the distance-based rule of the
inference is used (distances from the body geoms to the exact mesh, see `bodygeom`) with that flag as "interaction": +1 for bodies within (nearest distance + 1 cm) during contact,
-1 beyond the far distance (plus flesh slack), 0 otherwise; planted feet are exempt from -1 and touching the
ground never makes a +1 (only the object counts). On top of the rule, the hands touching the object are +1
throughout contact (both SMPL-X hand parts, as the released files label them), a hand that is not on the object is never +1
(one-hand touches), and nothing is +1 outside contact (by construction no body touches the object then).
"""

from __future__ import annotations

import numpy as np
import torch

from interprior import schema
from interprior.data.clip import Clip
from interprior.data.contacts import DEFAULT_CONFIG, contact_labels, merge_hand_parts
from interprior.data.synth.bodygeom import body_distances

HAND_BODIES = schema.LEFT_HAND + schema.RIGHT_HAND


def label_contacts(clip: Clip, md, contact: np.ndarray, planted: np.ndarray, hands: np.ndarray | None = None) -> tuple:
    """-> (labels [T, 52] float32 in {-1, 0, 1}, object flag [T] float32 in {0, 1}).

    md: the object's distance (a SynthObject or a `MeshDistance`), contact: [T] bool, planted: [T, 2] bool (L, R
    feet), hands: [T, 2] bool, which palms are on the object (default: both while `contact`)."""
    contact = np.asarray(contact, dtype=bool)
    hands = np.repeat(contact[:, None], 2, axis=1) if hands is None else np.asarray(hands, dtype=bool)
    flag = torch.as_tensor(contact)
    dist = merge_hand_parts(body_distances(clip, md))
    on_ground = torch.zeros_like(dist, dtype=torch.bool)
    idx = schema.BODY_INDEX
    for k, side in enumerate("LR"):
        feet = [idx[f"{side}_Ankle"], idx[f"{side}_Toe"]]
        on_ground[:, feet] = torch.as_tensor(np.asarray(planted[:, k], dtype=bool))[:, None]
    labels = contact_labels(dist, flag, on_ground, DEFAULT_CONFIG)
    labels[~flag] = labels[~flag].clamp(max=0.0)
    for k, part in enumerate((schema.LEFT_HAND, schema.RIGHT_HAND)):
        on = torch.as_tensor(hands[:, k])
        cols = torch.tensor(part)
        labels[on.nonzero().flatten()[:, None], cols[None]] = 1.0
        off = (flag & ~on).nonzero().flatten()[:, None]
        labels[off, cols[None]] = labels[off, cols[None]].clamp(max=0.0)
    return labels.float(), flag.float()
