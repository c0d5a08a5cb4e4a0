"""Which clips a run trains on: a folder (or one file), filtered by object, subject, length or name, minus an
evenly spread held-out share. Recorded in every run's config, so evaluation reloads exactly the same clips."""

from __future__ import annotations

from dataclasses import dataclass

from interprior.config import require
from interprior.data.intermimic import list_clips, load_clip
from interprior.data.synth.dataset import clip_skills
from interprior.errors import InterpriorError


@dataclass
class DataSelection:
    data: str = ""  # folder of clips (or one clip)
    objects: str = ""  # objects folder
    # keep clips of this object; several comma-separated, or "all" (default: the first clip's object)
    object_name: str | None = None
    subjects: tuple[str, ...] = ()  # keep these subjects (default: all, must be one)
    skills: tuple[str, ...] = ()  # keep clips of these skills (by the data set's synth.json; default: all)
    shortest: int = 0  # keep the N shortest clips (0 = all)
    clips: tuple[str, ...] = ()  # explicit clip names (file stems); overrides `shortest`
    holdout: int = 0  # leave N of the selected clips out of training, spread over it (`held_out` lists them)

    def __post_init__(self):
        require(self, non_negative=("shortest", "holdout"))

    def load(self, held_out: bool = False):
        """The training clips (the selection minus its held-out ones), or with `held_out` the held-out ones."""
        return self.select(held_out)[0]

    def select(self, held_out: bool = False) -> tuple[list, dict[str, str]]:
        """`load`'s clips and the others of the folder: {clip name: why it was left out}."""
        paths = list_clips(self.data)
        clips = [load_clip(p) for p in paths]
        left_out: dict[str, str] = {}

        def keep(kept: list, why: str) -> list:
            ids = {id(c) for c in kept}
            left_out.update({c.name: why for c in clips if id(c) not in ids and c.name not in left_out})
            return kept

        if self.subjects:
            clips = keep([c for c in clips if c.subject in self.subjects], f"subject not {','.join(self.subjects)}")
        if self.skills:
            skills = clip_skills(self.data)
            if not skills:
                raise InterpriorError(f"data.skills {','.join(self.skills)}: {self.data} has no synth.json manifest "
                                      "saying which clip has which skill")
            unknown = sorted(set(self.skills) - set(skills.values()))
            if unknown:
                raise InterpriorError(f"data.skills: no clip of {self.data} has skill {', '.join(unknown)} (its skills: "
                                      f"{', '.join(sorted(set(skills.values())))})")
            clips = keep([c for c in clips if skills.get(c.name) in self.skills], f"skill not {','.join(self.skills)}")
        if self.object_name == "all":
            names = sorted({c.object_name for c in clips})
        else:
            names = self.object_name.split(",") if self.object_name else [clips[0].object_name] if clips else []
        clips = keep([c for c in clips if c.object_name in names], f"object not {','.join(map(str, names))}")
        if self.clips:
            wanted = set(self.clips)
            clips = keep([c for c in clips if c.name in wanted], "not among the selection's clips")
        elif self.shortest:
            clips = keep(sorted(clips, key=lambda c: (c.num_frames, c.name))[: self.shortest],
                         f"not among the {self.shortest} shortest")
        if not clips:
            raise InterpriorError(f"no clips selected from {self.data} (object {','.join(map(str, names))}, "
                                  f"subjects {self.subjects})")
        if self.holdout < 0 or self.holdout >= len(clips):
            raise InterpriorError(f"--hold-out (data.holdout) must be >= 0 and leave at least one of the {len(clips)} "
                                  f"selected clips for training, got {self.holdout}")
        if not self.holdout:
            return clips, left_out
        out = set(held_out_indices(len(clips), self.holdout))
        ordered = sorted(clips, key=lambda c: c.name)
        kept = [c for i, c in enumerate(ordered) if (i in out) == held_out]
        return keep(kept, "held out of training" if not held_out else "used in training"), left_out


def held_out_indices(count: int, holdout: int) -> list[int]:
    """Which of `count` clips (in name order) a hold-out of `holdout` leaves out: evenly spread, so clips of every
    object and both ends of a numbered series are represented (27 clips, 5 out: 2, 8, 13, 18, 24)."""
    return [int((i + 0.5) * count / holdout) for i in range(holdout)] if holdout else []
