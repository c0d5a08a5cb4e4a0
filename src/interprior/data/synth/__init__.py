"""Synthetic human-object interaction clips of our own humanoid (`interprior data synth`).

Modules, in the order the data flows: `objects` (generated objects and their meshes), `grasp` (where the hands go,
where to stand), `reach` (how deep to crouch), `keyframes` (postures), `gait` (footsteps), `timeline` (keyframed
channels), `skills` (reach / pickup / carry / push scripts -> IK targets and object track), `hands` (finger poses),
`ik` (whole-body IK with mink on the simulator's humanoid), `labels` (contact labels), `generate` (seed -> clip),
`defects` (capture-like damage), `quality` (measurements), `dataset` (writing a folder), with helpers `bodygeom`,
`meshdist` and `threads`.
"""

from interprior.data.synth.defects import DEFECTS, apply_defects
from interprior.data.synth.generate import ClipSpec, clip_specs, generate_clip
from interprior.data.synth.objects import OBJECT_NAMES, SynthObject, make_objects
from interprior.data.synth.quality import quality_report, summarize
from interprior.data.synth.skills import SKILLS

__all__ = ["DEFECTS", "OBJECT_NAMES", "SKILLS", "ClipSpec", "SynthObject", "apply_defects", "clip_specs",
           "generate_clip", "make_objects", "quality_report", "summarize"]
