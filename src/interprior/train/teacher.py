"""The teacher of Stage II (and of Stage III's concurrent distillation): one frozen expert, or a main expert plus
skill experts that each label the clips of their own skill, as InterMimic distils per-subject teachers into one
student. A skill expert is an expert trained (or fine-tuned) on one skill's clips, e.g. with termination rules that
would hurt the other skills; the data set's `synth.json` manifest says which clip has which skill.

Labels are the experts' mean actions converted to the student's action space (`expert_labels`); with several
experts every expert labels every env (a few small MLPs) and each env keeps the label of its clip's expert.
"""

from __future__ import annotations

from typing import Sequence

import torch

from interprior.data.synth.dataset import clip_skills
from interprior.envs.tracking import TrackingConfig, TrackingEnv
from interprior.errors import InterpriorError
from interprior.train.expert import load_expert


def expert_labels(env: TrackingEnv, expert_env: TrackingConfig, expert_mu: torch.Tensor) -> torch.Tensor:
    """The expert's mean actions as actions of `env`'s action space (see `interprior.train.distill`)."""
    mu = expert_mu.clamp(-1.0, 1.0)
    if env.cfg.action_mode == expert_env.action_mode:
        return mu
    sim = env.sim
    if expert_env.action_mode == "residual":
        dof = torch.as_tensor(env.body.dof_index)
        ref_next = env.ref.tracks["dof_pos"][env.ref.flat(env.clip_ids, env.frame + 1)][:, dof]
        targets = ref_next.to(sim.action_offset) + expert_env.residual_scale * mu.to(sim.action_offset)
    else:
        targets = sim.action_to_targets(mu)
    if env.cfg.action_mode == "absolute":
        return ((targets - sim.action_offset) / sim.action_scale).clamp(-1.0, 1.0).to(expert_mu.dtype)
    if env.cfg.action_mode == "delta":
        current = env.current_dof_pos().to(targets)
        return ((targets - current) / env.cfg.residual_scale).clamp(-1.0, 1.0).to(expert_mu.dtype)
    raise InterpriorError("a residual student needs a residual expert")


def parse_skill_experts(entries: Sequence[str]) -> list[tuple[str, str]]:
    """["push_along=runs/push_expert", ...] -> [(skill, expert path)]; a malformed or repeated skill is an error."""
    pairs = []
    for entry in entries:
        skill, sep, path = str(entry).partition("=")
        if not sep or not skill.strip() or not path.strip():
            raise InterpriorError(f"skill_experts: {entry!r} is not SKILL=EXPERT (e.g. push_along=runs/push_expert)")
        pairs.append((skill.strip(), path.strip()))
    skills = [s for s, _ in pairs]
    repeated = sorted({s for s in skills if skills.count(s) > 1})
    if repeated:
        raise InterpriorError(f"skill_experts: skill {', '.join(repeated)} is given more than one expert")
    return pairs


class Teacher:
    """The frozen expert(s). `record` is what checkpoints keep (a resume checks that no expert trained on since)."""

    def __init__(self, main: str, skill_experts: Sequence[str] = ()):
        pairs = [("", main), *parse_skill_experts(skill_experts)]
        self.skills = [skill for skill, _ in pairs]  # "" for the main expert: every clip no skill expert takes
        self.paths = [path for _, path in pairs]
        self.experts, self.envs, samples = [], [], []
        for skill, path in pairs:
            try:
                cfg, model, state = load_expert(path)
            except InterpriorError as e:
                raise InterpriorError(f"skill expert {skill}: {e}" if skill else str(e)) from e
            for p in model.parameters():
                p.requires_grad_(False)
            self.experts.append(model)
            self.envs.append(cfg.env)
            samples.append(state.get("samples"))
        self.record = {"path": main, "samples": samples[0]}
        if len(pairs) > 1:
            self.record["skill_experts"] = {s: {"path": p, "samples": n}
                                            for s, p, n in zip(self.skills[1:], self.paths[1:], samples[1:])}
        self.clip_expert = torch.zeros(0, dtype=torch.long)

    @property
    def expert(self):
        """The main expert."""
        return self.experts[0]

    def bind(self, env: TrackingEnv, data_folder: str) -> None:
        """Check every expert against `env` and map its clips to their experts (by the manifest's skills)."""
        for path, expert in zip(self.paths, self.experts):
            if (expert.obs_dim, expert.act_dim) != (env.obs_dim, env.act_dim):
                raise InterpriorError(f"expert {path} takes obs {expert.obs_dim} / acts {expert.act_dim}, the env has "
                                      f"{env.obs_dim} / {env.act_dim}: use the expert's env config")
            expert.to(env.device)
        names = env.ref.clip_names
        which = torch.zeros(len(names), dtype=torch.long)
        if len(self.experts) > 1:
            skills = clip_skills(data_folder)
            known = sorted(set(skills.get(n, "?") for n in names))
            for k, skill in enumerate(self.skills[1:], start=1):
                rows = [i for i, name in enumerate(names) if skills.get(name) == skill]
                if not rows:
                    raise InterpriorError(f"skill expert {skill} ({self.paths[k]}): no clip of {data_folder} has that "
                                          f"skill (its synth.json skills: {', '.join(known)})")
                which[rows] = k
        self.clip_expert = which

    def clips_per_expert(self) -> dict[str, int]:
        return {skill or "main": int((self.clip_expert == k).sum()) for k, skill in enumerate(self.skills)}

    @torch.no_grad()
    def labels(self, env: TrackingEnv, tracking_obs: torch.Tensor) -> torch.Tensor:
        """[N, A] the label of each env's clip's expert, in `env`'s action space."""
        out = expert_labels(env, self.envs[0], self.experts[0].mu(tracking_obs))
        if len(self.experts) == 1:
            return out
        which = self.clip_expert[env.clip_ids.cpu()].to(out.device)
        for k in range(1, len(self.experts)):
            mine = which == k
            if bool(mine.any()):
                label = expert_labels(env, self.envs[k], self.experts[k].mu(tracking_obs))
                out = torch.where(mine[:, None], label.to(out), out)
        return out


class TeacherPolicy:
    """The teacher as one policy for `eval tracking --skill-expert`: each clip acted on by its skill's expert (its
    mean action), as distillation labels it. Run under the main expert's env config."""

    def __init__(self, teacher: Teacher, data_folder: str):
        self.teacher, self.data_folder, self.env = teacher, data_folder, None

    def bind_env(self, env: TrackingEnv) -> None:
        self.teacher.bind(env, self.data_folder)
        self.env = env

    def act(self, obs: torch.Tensor, deterministic: bool = True):
        mu = self.teacher.labels(self.env, obs)
        return mu, None, None, mu
