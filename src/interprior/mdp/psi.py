"""Physical State Initialization (InterMimic, intermimic-code-facts §7.3): start episodes from *simulated* states
that went well, not only from the (imperfect) motion capture.

Per (clip, frame) the buffer keeps `slots` candidate start states with a score each: slot 0 is the motion capture
itself (score 1, never replaced; its state comes from the reference, the buffer stores nothing for it), slots
1.. hold simulated states (score 0 = empty). After episodes that ran from `start` to `end` (longer than
`min_episode` frames), every visited frame t in [start + edge, end - edge) scores

    score(t) = (end - t) / (end_max - t),   end_max = min(clip_len, start + rollout_len),

the share of the feasible rest of the episode that the policy survived from t. Per (clip, t) the best env wins;
if its score exceeds `accept` (0.5) its simulated state at t overwrites the lowest-scoring simulated slot (score
set to the new score). Then every simulated score decays by ×(1 - decay) so stale states give way. Resets draw a
slot with probability ∝ score, and hybrid initialisation draws the start frame with probability `start_prob` at
0, else ∝ 1 / Σ_slots score over t in [0, len - rollout_len) - favouring frames where little good state exists.

States are opaque float vectors [state_dim] (the env defines and packs them). Storage is CPU and dense:
`scores` [num_clips, max_len, slots], `states` [num_clips, max_len, slots - 1, state_dim] (num_clips × max_len ×
(slots - 1) × state_dim floats: 27 clips × 310 frames × 2 × 332 ≈ 22 MB). Everything is batched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor


@dataclass(frozen=True)
class PsiConfig:
    accept: float = 0.5  # a state is stored only when its score exceeds this
    decay: float = 1e-5  # simulated scores × (1 - decay) after every update
    edge: int = 10  # frames skipped at both ends of an episode
    min_episode: int = 30  # episodes of at most this many frames are ignored
    update_prob: float = 0.005  # `update`: chance that a batch of finished episodes is recorded (paper 0.005)
    start_prob: float = 0.1  # hybrid init: chance of starting at frame 0 (teacher 0.1, student 0.5)


StateSource = Tensor | Callable[[Tensor, Tensor], Tensor]


class PsiBuffer:
    """Simulated start states per (clip, frame, slot). `clip_lengths` [num_clips] (default: all `max_len`): frames
    past a clip's end are clamped to its last frame, and start frames are drawn within it."""

    def __init__(self, num_clips: int, max_len: int, slots: int, state_dim: int, config: PsiConfig = PsiConfig(),
                 clip_lengths: Tensor | None = None, dtype: torch.dtype = torch.float32):
        if slots < 2:
            raise ValueError("PSI needs at least 2 slots (motion capture + one simulated)")
        lengths = torch.full((num_clips,), int(max_len), dtype=torch.long) if clip_lengths is None else \
            torch.as_tensor(clip_lengths, dtype=torch.long).cpu()
        if lengths.shape != (num_clips,) or bool((lengths < 1).any()) or int(lengths.max()) > max_len:
            raise ValueError(f"clip_lengths must be [{num_clips}] values in 1..{max_len}")
        self.num_clips, self.max_len, self.slots, self.state_dim = num_clips, int(max_len), slots, state_dim
        self.config = config
        self.lengths = lengths
        self.states = torch.zeros(num_clips, self.max_len, slots - 1, state_dim, dtype=dtype)
        self.scores = torch.zeros(num_clips, self.max_len, slots)
        self.scores[..., 0] = 1.0
        self.num_updates = 0

    # --- indexing ---------------------------------------------------------------------------------------------
    def _index(self, clip_ids: Tensor, frames: Tensor) -> tuple[Tensor, Tensor]:
        """(clip, frame) index tensors on the CPU, frames clamped into the clip."""
        clip_ids = torch.as_tensor(clip_ids, dtype=torch.long).cpu()
        frames = torch.as_tensor(frames, dtype=torch.long).cpu()
        return clip_ids, torch.minimum(frames.clamp_min(0), self.lengths[clip_ids] - 1)

    def scores_at(self, clip_ids: Tensor, frames: Tensor) -> Tensor:
        """[n, slots] scores (slot 0 = motion capture = 1)."""
        return self.scores[self._index(clip_ids, frames)]

    def states_at(self, clip_ids: Tensor, frames: Tensor, slots: Tensor) -> Tensor:
        """[n, state_dim] stored simulated states for slots >= 1 (rows with slot 0 are zeros: use the reference)."""
        slots = torch.as_tensor(slots, dtype=torch.long).cpu()
        c, f = self._index(clip_ids, frames)
        out = self.states[c, f, (slots - 1).clamp_min(0)].clone()
        out[slots == 0] = 0.0
        return out

    # --- resets -------------------------------------------------------------------------------------------------
    def sample(self, clip_ids: Tensor, frames: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """[n] slot per reset, drawn with probability ∝ the slot scores (0 = motion capture)."""
        probs = self.scores_at(clip_ids, frames)
        if probs.shape[0] == 0:
            return torch.zeros(0, dtype=torch.long)
        return torch.multinomial(probs, 1, generator=generator).flatten()

    sample_slots = sample  # older name

    def apply(self, state, clip_ids: Tensor, frames: Tensor, generator: torch.Generator | None,
              pack: Callable, unpack: Callable):
        """Draw a slot per reset and replace the motion-capture reset `state` by the stored simulated state where
        a simulated slot is drawn. `pack(state) -> [n, state_dim]`, `unpack([n, state_dim]) -> state`."""
        slot = self.sample(clip_ids, frames, generator)
        use = slot > 0
        if not bool(use.any()):
            return state
        packed = pack(state)
        rows = use.nonzero().flatten()
        clip_ids, frames = torch.as_tensor(clip_ids).cpu(), torch.as_tensor(frames).cpu()
        packed[rows.to(packed.device)] = self.states_at(clip_ids[rows], frames[rows], slot[rows]).to(packed)
        return unpack(packed)

    def sample_start_frames(self, clip_ids: Tensor, rollout_len: int, generator: torch.Generator | None = None,
                            start_prob: float | None = None) -> Tensor:
        """[n] hybrid-initialisation start frames: 0 with probability `start_prob` (default: config), else t in
        [0, len - rollout_len) drawn ∝ 1 / Σ_slots score(clip, t) (frame 0 when the clip is not longer than
        `rollout_len`)."""
        p0 = self.config.start_prob if start_prob is None else start_prob
        clip_ids = torch.as_tensor(clip_ids, dtype=torch.long).cpu()
        n = clip_ids.shape[0]
        if n == 0:
            return torch.zeros(0, dtype=torch.long)
        limit = (self.lengths[clip_ids] - int(rollout_len)).clamp_min(1)  # [n] number of candidate frames
        t = torch.arange(self.max_len)
        valid = t[None, :] < limit[:, None]  # [n, max_len]
        weight = torch.where(valid, 1.0 / self.scores[clip_ids].sum(-1), torch.zeros(()))
        frames = torch.multinomial(weight, 1, generator=generator).flatten()
        at_start = torch.rand(n, generator=generator) < p0
        return torch.where(at_start, torch.zeros_like(frames), frames)

    # --- recording finished episodes -------------------------------------------------------------------------
    def episode_scores(self, starts: Tensor, ends: Tensor, clip_lengths: Tensor, rollout_len: int,
                       steps: int) -> tuple[Tensor, Tensor]:
        """(score [E, steps], valid [E, steps]) for frames t = start + j, j < steps."""
        cfg = self.config
        starts, ends = starts.long().cpu(), ends.long().cpu()
        j = torch.arange(steps)[None, :]
        t = starts[:, None] + j
        end_max = torch.minimum(clip_lengths.long().cpu(), starts + int(rollout_len))[:, None]
        valid = (t >= starts[:, None] + cfg.edge) & (t < ends[:, None] - cfg.edge)
        valid &= ((ends - starts) > cfg.min_episode)[:, None]
        score = (ends[:, None] - t).float() / (end_max - t).clamp_min(1).float()
        return score, valid

    def record(self, clip_ids: Tensor, starts: Tensor, ends: Tensor, clip_lengths: Tensor, rollout_len: int,
               states: StateSource, steps: int | None = None) -> int:
        """Score finished episodes (E of them) and store their good states; then decay. `states` is either the
        packed simulated states [E, L, state_dim] at frames start + j (j = 0..L-1), or a callback
        `(episodes [k], j [k]) -> [k, state_dim]` called once for the winners only (`steps` = L is then required).
        Returns the number of (clip, frame) entries written."""
        cfg = self.config
        clip_ids = torch.as_tensor(clip_ids, dtype=torch.long).cpu()
        if callable(states):
            if steps is None:
                raise ValueError("record with a state callback needs steps (the episode buffer length)")
            length = int(steps)
        else:
            length = int(states.shape[1])
        score, valid = self.episode_scores(torch.as_tensor(starts), torch.as_tensor(ends),
                                           torch.as_tensor(clip_lengths), rollout_len, length)
        t = torch.as_tensor(starts).long().cpu()[:, None] + torch.arange(length)[None, :]
        valid &= t < self.lengths[clip_ids][:, None]
        valid &= score > cfg.accept
        env_idx, j_idx = valid.nonzero(as_tuple=True)
        written = 0
        if env_idx.numel():
            s = score[env_idx, j_idx]
            clips, frames = clip_ids[env_idx], t[env_idx, j_idx]
            rows = clips * self.max_len + frames  # one key per (clip, frame)
            # best env per (clip, frame): order by score (descending), then stably by row; keep each row's first
            order = torch.argsort(s, descending=True, stable=True)
            order = order[torch.argsort(rows[order], stable=True)]
            r = rows[order]
            first = torch.ones_like(r, dtype=torch.bool)
            first[1:] = r[1:] != r[:-1]
            best = order[first]
            clips, frames, s = clips[best], frames[best], s[best]
            slot = self.scores[clips, frames, 1:].argmin(dim=-1)  # lowest-scoring simulated slot (first on ties)
            if callable(states):
                new = states(env_idx[best], j_idx[best])
            else:
                new = states[env_idx[best].to(states.device), j_idx[best].to(states.device)]
            self.states[clips, frames, slot] = new.detach().to("cpu", self.states.dtype)
            self.scores[clips, frames, slot + 1] = s
            written = int(clips.numel())
        self.scores[..., 1:] *= 1.0 - cfg.decay
        self.num_updates += 1
        return written

    record_episode = record

    def update(self, clip_ids: Tensor, starts: Tensor, ends: Tensor, clip_lengths: Tensor, rollout_len: int,
               states: StateSource, generator: torch.Generator | None = None, steps: int | None = None
               ) -> int | None:
        """Sparse `record`: runs with probability `config.update_prob` per call (one call per batch of finished
        episodes). Returns the number written, or None when this call was skipped (no decay either)."""
        if float(torch.rand(1, generator=generator)) >= self.config.update_prob:
            return None
        return self.record(clip_ids, starts, ends, clip_lengths, rollout_len, states, steps)

    # --- checkpoints ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"states": self.states, "scores": self.scores, "lengths": self.lengths,
                "num_updates": self.num_updates}

    def load_state_dict(self, state: dict) -> None:
        if not torch.equal(torch.as_tensor(state["lengths"]), self.lengths) or \
                tuple(state["states"].shape) != tuple(self.states.shape):
            raise ValueError("PSI checkpoint was made for other clips, slots or state size")
        self.states.copy_(state["states"])
        self.scores.copy_(state["scores"])
        self.num_updates = int(state.get("num_updates", 0))
