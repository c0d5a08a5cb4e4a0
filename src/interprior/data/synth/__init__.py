"""Synthetic human-object interaction clips of our own humanoid (`interprior data synth`).

Modules, in the order the data flows: `objects` (generated objects and their meshes), `grasp` (where the hands go,
where to stand), `reach` (how deep to crouch), `keyframes` (postures), `gait` (footsteps), `paths` (walking routes:
turns on the spot and curves), `timeline` (keyframed channels), `script` (a clip's channels -> IK targets and
object track), `placement` (object pose, grasp stance, held poses), `skills` (the registry and reach / pickup /
carry / push), `skills_locomotion` (walk, locomote), `skills_touch` (touch), `skills_handling` (lift_hold, place,
push_along), `hands` (finger poses), `ik` (whole-body IK with mink on the simulator's humanoid), `labels` (contact
labels), `generate` (seed -> clip), `defects` (capture-like damage), `quality` (measurements), `recipe` (data set
recipes), `dataset` (writing a folder), with helpers `bodygeom`, `meshdist` and `threads`.
"""

from interprior.data.synth.defects import DEFECTS, apply_defects
from interprior.data.synth.generate import ClipSpec, clip_specs, generate_clip
from interprior.data.synth.objects import ALL_OBJECTS, OBJECT_NAMES, SynthObject, make_objects
from interprior.data.synth.quality import quality_report, summarize
from interprior.data.synth.recipe import load_recipe
from interprior.data.synth.skills import ALL_SKILLS, SKILLS, STEER_SKILLS

__all__ = ["ALL_OBJECTS", "ALL_SKILLS", "DEFECTS", "OBJECT_NAMES", "SKILLS", "STEER_SKILLS", "ClipSpec",
           "SynthObject", "apply_defects", "clip_specs", "generate_clip", "load_recipe", "make_objects",
           "quality_report", "summarize"]
