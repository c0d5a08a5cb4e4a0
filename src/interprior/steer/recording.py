"""What a steering session recorded: per control step the simulated humanoid and object, the MuJoCo qpos (for a
video) and the goal's targets (markers). It becomes InterMimic-format clips (one per episode: a reset starts a new
one, so no clip holds a jump) and an MP4 with the goal targets drawn.

Clip contents: root, body positions and rotations as simulated; the file's exp-map dof columns from the body
rotations (relative to the parent, as the synthetic clips write them); the active object's pose; contact labels +1
where a body touches the object (MuJoCo's contact sensors), -1 where its origin is farther than
`FAR_LABEL_DISTANCE` from the object's surface points, else 0 (unknown); the object flag where any body touches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from interprior.assets.embodiment import SMPLX, Embodiment
from interprior.data.clip import Clip
from interprior.data.intermimic import save_clip
from interprior.rotations import quat_conj, quat_mul, quat_to_axis_angle
from interprior.sim.batched import SimState
from interprior.viz.video import check_outputs

FAR_LABEL_DISTANCE = 0.25  # m, body origin to the object's nearest surface point beyond which a label is -1
MIN_CLIP_FRAMES = 2  # shorter episodes (a reset right after another) are not written
# marker colours (RGBA) and radii (m): object target, hand targets
OBJECT_MARKER = ((0.95, 0.55, 0.1, 0.7), 0.06)
HAND_MARKER = ((0.2, 0.45, 0.95, 0.7), 0.04)


@dataclass
class Episode:
    """One stretch without a reset: frames [start, stop) of the recording, of one object."""

    index: int
    object_name: str
    start: int
    stop: int


def clip_name(subject: str, object_name: str, index: int) -> str:
    """`sub0_box_000`: the subject, the object (the second-to-last `_` part names it, as in every clip) and the
    episode's number."""
    return f"{subject}_{object_name}_{index:03d}"


class Recording:
    """Frames appended by `Steering` (`add`); episodes begin at every reset (`begin`)."""

    def __init__(self, fps: float, subject: str = "sub0", body: Embodiment = SMPLX):
        self.fps, self.subject, self.body = fps, subject, body
        self.episodes: list[Episode] = []
        self._frames: dict[str, list[Tensor]] = {k: [] for k in ("qpos", "root_pos", "root_rot", "body_pos",
                                                                  "body_rot", "obj_pos", "obj_rot", "touching",
                                                                  "distance", "targets", "error")}

    @property
    def num_frames(self) -> int:
        return len(self._frames["qpos"])

    def begin(self, object_name: str) -> None:
        """A new episode from the next frame on."""
        n = self.num_frames
        self.episodes.append(Episode(len(self.episodes), object_name, n, n))

    def add(self, state: SimState, qpos: Tensor, targets: Tensor, error: float | None) -> None:
        """Append row 0 of `state`; `qpos` [nq]; `targets` [3, 3] (object, left hand, right hand; NaN where not
        given); `error` the goal error (m) or None."""
        f = self._frames
        f["qpos"].append(qpos.detach().double().cpu().clone())
        for key in ("root_pos", "root_rot", "body_pos", "body_rot"):
            f[key].append(getattr(state, key)[0].detach().cpu().clone())
        f["obj_pos"].append(state.obj_pos[0, 0].detach().cpu().clone())
        f["obj_rot"].append(state.obj_rot[0, 0].detach().cpu().clone())
        f["touching"].append(state.object_contact[0].detach().cpu().clone())
        f["distance"].append(state.nearest_object_vec[0].detach().norm(dim=-1).cpu())
        f["targets"].append(targets.detach().double().cpu())
        f["error"].append(torch.tensor(float("nan") if error is None else error, dtype=torch.float64))
        self.episodes[-1].stop = self.num_frames

    def _stack(self, key: str, start: int = 0, stop: int | None = None) -> Tensor:
        return torch.stack(self._frames[key][start:stop])

    # --- clips --------------------------------------------------------------------------------------------------
    def written_episodes(self) -> list[Episode]:
        return [e for e in self.episodes if e.stop - e.start >= MIN_CLIP_FRAMES]

    def clip(self, episode: Episode) -> Clip:
        """The episode as an InterMimic clip (see the module docstring)."""
        s, e = episode.start, episode.stop
        body_pos, body_rot = self._stack("body_pos", s, e).double(), self._stack("body_rot", s, e).double()
        body_rot = body_rot / body_rot.norm(dim=-1, keepdim=True)
        parents = list(self.body.parents[1:])
        local = quat_mul(quat_conj(body_rot[:, parents]), body_rot[:, 1:])
        t = e - s
        touching = self._stack("touching", s, e).bool()
        far = self._stack("distance", s, e) > FAR_LABEL_DISTANCE
        contact = torch.where(touching, 1.0, torch.where(far, -1.0, 0.0))
        obj_rot = self._stack("obj_rot", s, e).double()
        root_rot = self._stack("root_rot", s, e).double()
        return Clip(
            name=clip_name(self.subject, episode.object_name, episode.index), fps=self.fps,
            root_pos=self._stack("root_pos", s, e).float(),
            root_rot=(root_rot / root_rot.norm(dim=-1, keepdim=True)).float(),
            dof_expmap=quat_to_axis_angle(local).reshape(t, -1).float(), body_pos=body_pos.float(),
            body_rot=body_rot.float(), obj_pos=self._stack("obj_pos", s, e).float(),
            obj_rot=(obj_rot / obj_rot.norm(dim=-1, keepdim=True)).float(),
            obj_contact=touching.any(dim=1).float(), contact=contact.float(), subject=self.subject,
            object_name=episode.object_name, body=None if self.body.num_bodies == SMPLX.num_bodies else self.body.name)

    def clip_paths(self, folder: str | Path, episodes: list[Episode] | None = None) -> list[Path]:
        episodes = self.written_episodes() if episodes is None else episodes
        return [Path(folder) / f"{clip_name(self.subject, e.object_name, e.index)}.pt" for e in episodes]

    def write_clips(self, folder: str | Path, force: bool = False) -> list[Path]:
        """One clip file per episode of at least `MIN_CLIP_FRAMES` frames. -> the paths written."""
        episodes = self.written_episodes()
        paths = self.clip_paths(folder, episodes)
        check_outputs(paths, "--record", force=force)
        for episode, path in zip(episodes, paths):
            save_clip(self.clip(episode), path)
        return paths

    # --- video --------------------------------------------------------------------------------------------------
    def write_video(self, path: str | Path, model, width: int = 640, height: int = 480) -> Path:
        """An MP4 of every recorded frame with the goal targets as spheres (object orange, hands blue) and the
        time and goal error written top left."""
        from interprior.viz.render import write_video

        targets = self._stack("targets").numpy()  # [T, 3, 3]
        errors = self._stack("error").numpy()
        starts = np.zeros(self.num_frames, dtype=np.int64)
        for episode in self.episodes:
            starts[episode.start:episode.stop] = episode.start
        markers = [(targets[:, :1], *OBJECT_MARKER), (targets[:, 1:], *HAND_MARKER)]

        def overlay(t: int) -> str:
            error = "" if math.isnan(errors[t]) else f"   goal error {100 * errors[t]:.0f} cm"
            return f"{(t - starts[t]) / self.fps:5.1f} s{error}"

        return write_video(path, model, self._stack("qpos").numpy(), markers=markers, fps=self.fps, width=width,
                           height=height, overlay_text=overlay)
