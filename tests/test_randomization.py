"""Dynamics randomization on the CPU backend."""

import torch

from interprior.assets.objects import load_object
from interprior.assets.scene import SceneConfig, build_scene
from interprior.data.synthetic import write_box_mesh
from interprior.sim.mujoco_cpu import MujocoCpuBackend
from interprior.sim.randomization import RandomizationRanges, apply_to_models, model_copies, sample_randomization


def test_centred_box_accepts_centre_of_mass_offsets(tmp_path):
    # a centred box compiles as a "simple" body whose inertial frame is its body frame; moving its centre of mass
    # must not make mj_setConst refuse the model
    write_box_mesh(tmp_path, "box", 0.4)
    scene = build_scene(SceneConfig(objects=(load_object(tmp_path, "box", cache_dir=tmp_path / "cache"),)))
    backend = MujocoCpuBackend(scene.model, 3, scene.config.substeps, nthread=1)
    rand = sample_randomization(scene.model, 3, RandomizationRanges(com_offset=0.01), torch.Generator().manual_seed(0))
    backend.randomize(rand)  # per-env MjModel copies with the new values, mj_setConst on each
    copies = model_copies(scene.model, 3)
    apply_to_models(copies, scene.model, rand)  # the same on copies this test can read
    obj = scene.model.nbody - 1
    moved = [copies[i].body_ipos[obj] for i in range(3)]
    assert all(abs(m - scene.model.body_ipos[obj]).max() > 1e-5 for m in moved)
    backend.step(torch.zeros(3, scene.model.nu, dtype=torch.float64))
    assert torch.isfinite(backend.qpos()).all()
    backend.close()
