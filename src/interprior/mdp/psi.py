"""Physical State Initialization (InterMimic): start episodes from *simulated* states that went well, not only
from the (imperfect) motion capture.

Per (clip, frame) the buffer keeps `slots` candidate start states: slot 0 is the motion capture itself (score 1,
never replaced), slots 1.. hold simulated states with a score in (0.5, 1]. After an episode that ran from `start`
to `end`, each visited frame t (10 frames in from both ends) scores (end − t) / (end_max − t), the share of the
feasible rest of the episode it survived; the best env per (clip, t) replaces the lowest-scoring simulated slot
when its score exceeds 0.5. All simulated scores decay slowly so stale states give way. Resets pick a slot with
probability proportional to its score. States are opaque float vectors (the env packs and unpacks them); the
buffer lives on the CPU.
"""

from __future__ import annotations

import torch
from torch import Tensor

ACCEPT = 0.5
DECAY = 1e-5
EDGE = 10  # frames skipped at both ends of an episode
MIN_EPISODE = 30


class PsiBuffer:
    def __init__(self, num_clips: int, max_len: int, slots: int, state_dim: int):
        if slots < 2:
            raise ValueError("PSI needs at least 2 slots (motion capture + one simulated)")
        self.num_clips, self.max_len, self.slots = num_clips, max_len, slots
        self.states = torch.zeros(num_clips, max_len, slots - 1, state_dim)
        self.scores = torch.zeros(num_clips, max_len, slots)
        self.scores[..., 0] = 1.0

    def sample_slots(self, clip_ids: Tensor, frames: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """[n] slot per reset, drawn with probability proportional to the slot scores."""
        probs = self.scores[clip_ids, frames.clamp(max=self.max_len - 1)]
        return torch.multinomial(probs, 1, generator=generator).flatten()

    def apply(self, state, clip_ids: Tensor, frames: Tensor, generator, pack, unpack):
        """Replace the motion-capture reset state by a stored simulated one where a simulated slot is drawn."""
        slot = self.sample_slots(clip_ids, frames, generator)
        use = slot > 0
        if not bool(use.any()):
            return state
        packed = pack(state)
        rows = use.nonzero().flatten()
        packed[rows] = self.states[clip_ids[rows], frames[rows], slot[rows] - 1].to(packed)
        return unpack(packed)

    def record(self, clip_ids: Tensor, starts: Tensor, ends: Tensor, clip_lengths: Tensor, rollout_len: int,
               trajectories: Tensor) -> int:
        """Score finished episodes and store their good states. trajectories [E, L, D]: the packed simulated state
        at frames start + j. Returns how many (clip, frame) slots were written."""
        e, length, _ = trajectories.shape
        j = torch.arange(length)[None, :].expand(e, -1)
        t = starts[:, None] + j
        end_max = torch.minimum(clip_lengths, starts + rollout_len)[:, None]
        valid = (j >= EDGE) & (t < ends[:, None] - EDGE) & ((ends - starts) > MIN_EPISODE)[:, None]
        score = (ends[:, None] - t).float() / (end_max - t).clamp_min(1).float()
        valid &= score > ACCEPT
        env_idx, j_idx = valid.nonzero(as_tuple=True)
        written = 0
        if len(env_idx):
            s = score[env_idx, j_idx]
            keys = clip_ids[env_idx] * self.max_len + t[env_idx, j_idx]
            # best env per (clip, frame): sort by score, then stably by key, keep each key's first entry
            order = torch.argsort(s, descending=True)
            order = order[torch.argsort(keys[order], stable=True)]
            k = keys[order]
            first = torch.ones_like(k, dtype=torch.bool)
            first[1:] = k[1:] != k[:-1]
            best = order[first]
            clips, frames = clip_ids[env_idx[best]], t[env_idx[best], j_idx[best]]
            slot = self.scores[clips, frames, 1:].argmin(dim=-1)  # lowest-scoring simulated slot
            self.states[clips, frames, slot] = trajectories[env_idx[best], j_idx[best]].to(self.states)
            self.scores[clips, frames, slot + 1] = s[best]
            written = len(best)
        self.scores[..., 1:] *= 1.0 - DECAY
        return written
