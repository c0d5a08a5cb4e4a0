"""Reference contact labels inferred from kinematics (InterMimic supplementary C.1), for clips that lack them.

The released motion files carry per-body labels {-1, 0, +1} and an object-interaction flag made by InterAct's
converter from SMPL-X *vertices* (intermimic-code-facts §3). We only have the 52 body frames, so each body's
extent is approximated by its collision geom from the humanoid spec (capsule, sphere or box; capsules stretched
with the clip's own bone lengths), placed with the clip's body rotations, and its distance to the object is the
distance from that geom to the object's 1024 surface points (moved by the clip's object pose; 0 when inside).
The floor is the lowest point of the object or of any body geom over the whole clip (as the converter does with
SMPL-X vertices).

Per frame t, with d[b] the distance of body b to the object and d_min = min_b d[b]:

* **interaction** (the object flag) holds when d_min <= `max_interaction_distance` and any of
    (i)   the object is airborne (lowest surface point more than `airborne_height` above the ground) and its
          acceleration is not free fall: |a - g| > `free_fall_tolerance` (g = (0, 0, -9.81));
    (ii)  the object rests on the ground, is not static (moves more than `static_step` per frame) and its
          horizontal acceleration is not what sliding friction alone produces: friction can only *decelerate*
          a sliding object, by mu*g against its velocity, so |a_h + mu*g*v_h/|v_h|| > `friction_tolerance`
          means something else pushes or pulls it (a constant-velocity push gives a residual of mu*g = 8.8 m/s²);
    (iii) d_min < `near_distance`;
  (the converter differs: its free-fall test compares the acceleration with +g, a sign slip that makes "airborne"
  alone count as interaction, and it computes but never uses a ground test; with our thresholds neither matters
  on the samples);
* label **+1** where d[b] < sigma, sigma = d_min + `sigma_margin` when interaction holds, else `near_distance`;
* label **-1** where d[b] > `far_distance` + the body's slack (`FAR_SLACK`: SMPL-X flesh beyond the geoms)
  and the body is not on the ground: for the feet (ankle + toe of
  one side together) "on the ground" means either part lower than `ground_height` above the floor while that
  foot is planted (its toe moves less than `foot_static_step` horizontally per frame; when both feet move, the
  slower one counts as planted), as in the converter; other bodies are never exempt;
* else 0. A -1 wins over +1 (only possible when d_min is within `sigma_margin` of `far_distance`).

Hands follow the converter's SMPL-X segmentation (verified on every OMOMO_new frame): the thumb segments share
the wrist's label (the SMPL-X "hand" part holds palm and thumb) and the 12 other finger segments share one label
(the "fingers" part). With `hand_parts="bodies"` every body gets its own label instead.

Accelerations are second differences of the object position at the clip's frame rate. All operations are
batched over frames (frames are processed in chunks only to bound memory).

Thresholds (`ContactConfig`; one set for every clip, no per-clip tuning). The paper's values (sigma margin 5 mm,
near 1 cm) are for SMPL-X vertices; on collision geoms against 1024 surface points a 1 cm margin and the
converter's 2 cm near distance agree best. The dynamics thresholds (airborne 5 cm, free-fall tolerance 6 m/s²,
static step 5 mm, friction residual 4 m/s²) change nothing measurable on the samples (agreement identical for
airborne heights 0.02-0.10 m and with the ground test off): there the flag is decided by the distance.

Agreement with the stored OMOMO_new labels (27 clips, 5834 frames, subject 2; fraction of frames × bodies with the
same label, and precision / recall of +1):

    group        agreement   +1 precision   +1 recall      paper thresholds, no slack (agreement)
    left hand      93.7 %       89.6 %        95.3 %         91.2 %
    right hand     93.7 %       95.5 %        89.2 %         88.1 %
    feet           99.5 %       (1 stored +1 in the whole set)   99.7 %
    other          97.3 %       47.0 %        56.4 %         95.6 %
    all 52         95.3 %       91.7 %        91.8 %         92.2 %
    object flag    99.2 % of frames                          98.8 %

Per object: largetable (17 clips) all 94.7 %, flag 98.8 %; woodchair (10 clips) all 96.1 %, flag 99.7 %.
Labelling each hand body separately instead of by SMPL-X part drops the hands to 73 % / 71 %.

Implementation: thresholds in `interprior.data.contact_config`, body geoms and distances in
`interprior.data.contact_geometry`, object dynamics in `interprior.data.contact_dynamics`, agreement with stored
labels in `interprior.data.contact_agreement`; this module combines them into labels and re-exports their names.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from interprior import schema
from interprior.assets.objects import find_object_mesh, read_mesh, sample_surface_points
from interprior.data.clip import Clip
from interprior.data.contact_agreement import (  # noqa: F401  (re-exported: public API of this module)
    BODY_GROUPS,
    AgreementCounts,
    add_agreement,
    contact_agreement,
    contact_agreement_counts,
    summarize_agreement,
)
from interprior.data.contact_config import DEFAULT_CONFIG, FAR_SLACK, ContactConfig  # noqa: F401  (re-exported)
from interprior.data.contact_dynamics import GRAVITY, object_dynamics, second_difference  # noqa: F401
from interprior.data.contact_geometry import (  # noqa: F401  (re-exported: public API of this module)
    BodyGeometry,
    body_lowest_z,
    body_object_distances,
    clip_geometry,
    default_geometry,
    geom_scale,
    merge_hand_parts,
    object_points_z,
)
from interprior.data.intermimic import list_clips, load_clip, save_clip
from interprior.errors import DataFileError, InterpriorError


# --------------------------------------------------------------------------------------------------------------
# inference
# --------------------------------------------------------------------------------------------------------------
@dataclass
class ContactInference:
    """Everything the inference computed, per frame (for inspection and tests)."""

    labels: Tensor  # [T, 52] float32 {-1, 0, 1}
    interaction: Tensor  # [T] bool (the object flag)
    distance: Tensor  # [T, 52] body-object distance per label part (hand parts merged as labelled)
    min_distance: Tensor  # [T]
    airborne: Tensor  # [T] bool
    static: Tensor  # [T] bool
    airborne_force: Tensor  # [T] bool, condition (i)
    ground_push: Tensor  # [T] bool, condition (ii)
    near: Tensor  # [T] bool, condition (iii)
    on_ground: Tensor  # [T, 52] bool, bodies exempt from -1
    ground_z: float


def infer_contact_details(clip: Clip, points: Tensor | np.ndarray,
                          config: ContactConfig = DEFAULT_CONFIG) -> ContactInference:
    """The full inference for one clip against object surface points [P, 3] (object frame)."""
    cfg = config
    pts = torch.as_tensor(np.asarray(points), dtype=torch.float64)
    geometry = clip_geometry(clip, cfg)
    dist = body_object_distances(clip.body_pos, clip.body_rot, clip.obj_pos, clip.obj_rot, pts, geometry,
                                 cfg.frame_chunk)
    if cfg.hand_parts == "smplx":
        dist = merge_hand_parts(dist)
    d_min = dist.amin(dim=1)

    # object dynamics
    body_low = body_lowest_z(clip.body_pos, clip.body_rot, geometry)  # [T, 52]
    obj_low = object_points_z(clip.obj_pos, clip.obj_rot, pts).amin(dim=1)  # [T]
    ground_z = float(torch.minimum(obj_low.min(), body_low.min()))
    dyn = object_dynamics(clip.obj_pos, clip.obj_rot, pts, ground_z, clip.fps, cfg)
    near = d_min < cfg.near_distance
    interaction = (dyn["airborne_force"] | dyn["ground_push"] | near) & (d_min <= cfg.max_interaction_distance)

    # labels
    positive = dist < adaptive_sigma(d_min, interaction, cfg)[:, None]
    on_ground = feet_on_ground(clip.body_pos, body_low - ground_z, positive, cfg)
    labels = contact_labels(dist, interaction, on_ground, cfg)
    return ContactInference(
        labels=labels, interaction=interaction, distance=dist, min_distance=d_min, airborne=dyn["airborne"],
        static=dyn["static"], airborne_force=dyn["airborne_force"], ground_push=dyn["ground_push"], near=near,
        on_ground=on_ground, ground_z=ground_z,
    )


def adaptive_sigma(min_distance: Tensor, interaction: Tensor, config: ContactConfig = DEFAULT_CONFIG) -> Tensor:
    """[T] +1 threshold: nearest distance + `sigma_margin` during interaction, else `near_distance`."""
    return torch.where(interaction, min_distance + config.sigma_margin,
                       torch.full_like(min_distance, config.near_distance))


def contact_labels(distance: Tensor, interaction: Tensor, on_ground: Tensor,
                   config: ContactConfig = DEFAULT_CONFIG) -> Tensor:
    """[T, 52] float32 labels from per-body distances [T, 52]: +1 below the adaptive sigma, -1 beyond the body's
    far threshold unless `on_ground` [T, 52], else 0 (-1 wins)."""
    d_min = distance.amin(dim=1)
    positive = distance < adaptive_sigma(d_min, interaction, config)[:, None]
    far = config.far_thresholds().to(distance)
    negative = (distance > far) & ~on_ground
    labels = torch.zeros(distance.shape, dtype=torch.float32)
    labels[positive] = 1.0
    labels[negative] = -1.0
    return labels


def feet_on_ground(body_pos: Tensor, height: Tensor, positive: Tensor, cfg: ContactConfig) -> Tensor:
    """[T, 52] bool: bodies exempt from -1 because they may be on the ground (the feet, per side). `height` [T, 52]
    is each geom's lowest point above the floor, `positive` [T, 52] the +1 test."""
    idx = schema.BODY_INDEX
    num_frames = body_pos.shape[0]
    toes = body_pos[:, [idx["L_Toe"], idx["R_Toe"]], :2].double()  # [T, 2, 2]
    move = torch.zeros(num_frames, 2, dtype=torch.float64)
    if num_frames > 1:
        move[1:] = (toes[1:] - toes[:-1]).norm(dim=-1)
    planted = move < cfg.foot_static_step
    both_moving = ~planted.any(dim=1)
    slower_left = move[:, 0] <= move[:, 1]
    planted[:, 0] |= both_moving & slower_left
    planted[:, 1] |= both_moving & ~slower_left
    planted[0] = True  # the converter has no motion test on the first frame
    out = torch.zeros_like(positive)
    for k, side in enumerate("LR"):
        pair = [idx[f"{side}_Ankle"], idx[f"{side}_Toe"]]
        low = (height[:, pair] <= cfg.ground_height).any(dim=1) & planted[:, k]
        exempt = low | positive[:, pair].any(dim=1)
        out[:, pair] = exempt[:, None]
    return out


def _points_of(asset) -> np.ndarray:
    return np.asarray(asset.surface_points if hasattr(asset, "surface_points") else asset, dtype=np.float64)


def infer_contacts(clip: Clip, asset, config: ContactConfig = DEFAULT_CONFIG) -> tuple[Tensor, Tensor]:
    """Reference contact labels [T, 52] float32 {-1, 0, +1} and object flag [T] float32 {0, 1} for a clip.

    `asset` is an `ObjectAsset` (its 1024 `surface_points` are used) or an array of object-frame points [P, 3]."""
    result = infer_contact_details(clip, _points_of(asset), config)
    return result.labels, result.interaction.to(torch.float32)


def with_inferred_contacts(clip: Clip, asset, config: ContactConfig = DEFAULT_CONFIG) -> Clip:
    """A copy of the clip whose contact labels and object flag are the inferred ones (a note says so)."""
    labels, flag = infer_contacts(clip, asset, config)
    return replace(clip, contact=labels, obj_contact=flag,
                   notes=list(clip.notes) + ["contact labels inferred from kinematics (interprior.data.contacts)"])


def has_contact_labels(clip: Clip) -> bool:
    """False when every label column and the object flag are zero (a file without labels)."""
    return bool(clip.contact.ne(0).any() or clip.obj_contact.ne(0).any())


# --------------------------------------------------------------------------------------------------------------
# labelling files (the `interprior data contacts` command)
# --------------------------------------------------------------------------------------------------------------
def object_surface_points(objects_dir, name: str) -> np.ndarray:
    """The object's 1024 surface points (object frame), exactly `load_object(...).surface_points`, without the
    convex decomposition (mesh read + seeded sampling only)."""
    return sample_surface_points(read_mesh(find_object_mesh(objects_dir, name)))


def label_files(path, objects_dir, out_dir=None, in_place: bool = False, force: bool = False,
                config: ContactConfig = DEFAULT_CONFIG):
    """Infer labels for the clips at `path` (a .pt file or a folder) and write them; yields one report dict per
    clip. Clips whose label columns and object flag are all zero are labelled; clips with labels are relabelled
    only with `force` (their stored labels are compared with the inferred ones either way) and otherwise copied
    unchanged into `out_dir` (left alone with `in_place`). Writes are atomic (`save_clip`).

    Exactly one of `out_dir` / `in_place` must be given; `out_dir` must not be the folder the inputs live in."""
    if (out_dir is None) == (not in_place):
        raise ValueError("give exactly one of out_dir or in_place=True")
    files = list_clips(path)
    if out_dir is not None:
        out_dir = Path(out_dir)
        sources = {f.resolve().parent for f in files}
        if out_dir.exists() and out_dir.resolve() in sources:
            raise DataFileError(out_dir, "is the input folder: refusing to overwrite inputs (use --in-place)")
    points_cache: dict[str, np.ndarray] = {}
    for file in files:
        row: dict = {"file": str(file), "clip": file.stem}
        try:
            clip = load_clip(file)
            row["frames"] = clip.num_frames
            name = clip.object_name
            if name is None:
                raise DataFileError(file, "cannot tell the object from the file name (expected subX_<object>_NNN.pt)")
            had = has_contact_labels(clip)
            row["had_labels"] = had
            target = file if in_place else out_dir / file.name
            row["output"] = str(target)
            if name not in points_cache:
                points_cache[name] = object_surface_points(objects_dir, name)
            result = infer_contact_details(clip, points_cache[name], config)
            if had:
                add_agreement(row, result, clip)
            if force or not had:
                labelled = replace(clip, contact=result.labels, obj_contact=result.interaction.to(torch.float32))
                save_clip(labelled, target)
                row["action"] = "relabelled" if had else "labelled"
                row["object_flag_fraction"] = float(result.interaction.float().mean())
                if clip.notes:
                    row["notes"] = list(clip.notes)
            elif in_place:
                row["action"] = "kept (has labels; --force relabels)"
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, target)
                row["action"] = "copied unchanged (has labels; --force relabels)"
        except InterpriorError as err:
            row["action"] = "error"
            row["error"] = str(err)
        yield row
