"""The tiny Stage II prior the tests share: the bundled demo expert as teacher, one synthetic box pickup clip, a
tiny network. `tiny_distill_config` is the recipe; conftest's `tiny_prior_run` trains it once per test run."""

from dataclasses import replace
from pathlib import Path

from interprior.models.prior import PriorModelConfig

PICKUP = "sub0_box_005"  # the synthetic box pickup clip (see conftest's synth_data)
TINY = dict(width=32, heads=4, layers=2, ff_width=64, token_hidden=(32,), encoder_hidden=(32,), decoder_hidden=(32,))


def tiny_distill_config(synthetic):
    from interprior.commands.demo import bundled_expert_path
    from interprior.train.distill import DistillConfig, cpu_preset
    from interprior.train.expert import load_expert

    expert = bundled_expert_path()
    expert_cfg, _, _ = load_expert(expert)
    cfg = cpu_preset(DistillConfig())
    cfg.expert = str(Path(expert).resolve())
    cfg.data = replace(expert_cfg.data, data=str(synthetic.clips_dir), objects=str(synthetic.objects_dir),
                       object_name="box", clips=(PICKUP,))
    cfg.env = replace(expert_cfg.env, num_envs=4, psi_slots=1, episode_length=4)  # episodes end inside a rollout
    cfg.model = PriorModelConfig(**TINY)
    cfg.optim.horizon, cfg.optim.epochs, cfg.optim.minibatches = 6, 1, 2
    cfg.prior_rollout_prob = 0.5
    cfg.mean_latent_prob = 0.0  # every new episode draws fresh ε
    cfg.total_samples = 48
    cfg.torch_threads = 1
    cfg.optim.lr_decay_samples, cfg.optim.lr_final_scale = (0, 96), 0.5
    return cfg
