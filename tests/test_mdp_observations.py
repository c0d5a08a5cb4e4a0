import math

import pytest
import torch
from mdp_fixtures import random_ref_state, random_sim_state, replace, sim_from_ref, transform_world

from interprior import schema
from interprior.assets.bodies import embodiment
from interprior.mdp.observations import (
    SIM_ONLY_BLOCKS,
    heading_matrix,
    ig_feature,
    observation_block_size,
    observation_layout,
    observation_size,
    observation_slices,
    tan_norm,
    tracking_block,
    tracking_observation,
)
from interprior.rotations import heading_quat_inverse, quat_apply, quat_to_matrix

G = embodiment("full").resolved  # the SMPL-X humanoid's body groups
OBS_BLOCK_LAYOUT = observation_layout(G)
OBS_BLOCK_SIZE = observation_block_size(G)
OBS_BLOCK_SLICES = observation_slices(G)
IDENTITY_6D = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 1.0], dtype=torch.float64)


def test_layout_sizes_from_schema():
    sizes = dict(OBS_BLOCK_LAYOUT)
    assert len(sizes) == len(OBS_BLOCK_LAYOUT)  # unique names
    assert OBS_BLOCK_SIZE == sum(sizes.values()) == 1599
    assert observation_size(G, (1, 16)) == 3198 and observation_size(G) == 3198
    assert observation_size(G, (0, 1, 4, 16)) == 6396
    assert sizes["body_pos"] == 3 * (schema.NUM_BODIES - 1)
    assert sizes["body_rot"] == 6 * schema.NUM_BODIES
    assert sizes["contact"] == sizes["diff_contact"] == len(schema.CONTACT_BODIES) == 31
    assert sizes["diff_key_pos"] == sizes["ref_key_pos"] == 3 * len(schema.KEY_BODIES) == 63
    assert sizes["diff_nohand_rot"] == sizes["ref_nohand_rot"] == 6 * len(schema.NOHAND_BODIES) == 132
    # §5 table offsets
    assert OBS_BLOCK_SLICES["contact"] == slice(778, 809)
    assert OBS_BLOCK_SLICES["ref_key_pos"] == slice(1035, 1098)
    assert OBS_BLOCK_SLICES["obj_linvel"].start == 1359 and OBS_BLOCK_SLICES["diff_obj_angvel"].stop == 1380
    assert OBS_BLOCK_SLICES["ig"] == slice(1380, 1536) and OBS_BLOCK_SLICES["diff_ig"].stop == 1599


def test_shape_dtype_and_block_reuse():
    ref1, ref16 = random_ref_state(5, seed=3), random_ref_state(5, seed=4)
    sim = random_sim_state(5)
    obs = tracking_observation(sim, [ref1, ref16], G)
    assert obs.shape == (5, observation_size(G, (1, 16))) and obs.dtype == torch.float32
    assert torch.isfinite(obs).all()
    b0, b1 = obs[:, :OBS_BLOCK_SIZE], obs[:, OBS_BLOCK_SIZE:]
    assert torch.equal(b0, tracking_block(sim, ref1, G))
    assert torch.equal(b1, tracking_block(sim, ref16, G))
    for name in SIM_ONLY_BLOCKS:
        s = OBS_BLOCK_SLICES[name]
        assert torch.equal(b0[:, s], b1[:, s]), name
    # writing into a strided view of a bigger buffer (e.g. a rollout-buffer slice)
    buf = torch.full((5, obs.shape[1] + 7), -1.0)
    res = tracking_observation(sim, [ref1, ref16], G, out=buf[:, 3:-4])
    assert torch.equal(res, obs) and torch.equal(buf[:, 3:-4], obs) and (buf[:, :3] == -1).all()
    with pytest.raises(ValueError):
        tracking_observation(sim, [ref1], G, out=buf[:, 3:-4])


def test_world_yaw_and_translation_invariance():
    n = 16
    ref1, ref16 = random_ref_state(n, seed=5, dtype=torch.float64), random_ref_state(n, seed=6, dtype=torch.float64)
    sim = random_sim_state(n, seed=7, dtype=torch.float64)
    yaw = torch.linspace(-3.0, 3.0, n, dtype=torch.float64)
    shift = torch.randn(n, 3, dtype=torch.float64) * 3.0
    shift[:, 2] = 0.0  # root height (and the object's z) are absolute by design
    before = tracking_observation(sim, [ref1, ref16], G)
    after = tracking_observation(transform_world(sim, yaw, shift),
                                 [transform_world(ref1, yaw, shift), transform_world(ref16, yaw, shift)], G)
    assert (before - after).abs().max() < 1e-9


def test_diff_terms_vanish_when_sim_equals_ref():
    ref = random_ref_state(6, seed=8, dtype=torch.float64)
    sim = sim_from_ref(ref, num_objects=2)
    obs = tracking_block(sim, ref, G)
    s = OBS_BLOCK_SLICES
    for name in ("diff_key_pos", "diff_contact", "diff_key_linvel", "diff_nohand_angvel", "diff_obj_pos",
                 "diff_obj_linvel", "diff_obj_angvel", "diff_ig"):
        assert obs[:, s[name]].abs().max() < 1e-12, name
    # relative rotations are the identity
    rel = obs[:, s["diff_nohand_rot"]].reshape(6, -1, 6)
    assert (rel - IDENTITY_6D).abs().max() < 1e-12
    assert (obs[:, s["diff_obj_rot"]] - IDENTITY_6D).abs().max() < 1e-12
    # the reference pose blocks then equal the simulated ones
    body_pos = obs[:, s["body_pos"]].reshape(6, -1, 3)  # bodies 1..51
    key = torch.tensor(schema.KEY_BODIES)
    assert torch.allclose(obs[:, s["ref_key_pos"]].reshape(6, -1, 3), body_pos[:, key - 1], atol=1e-12)
    body_rot = obs[:, s["body_rot"]].reshape(6, -1, 6)
    nohand = torch.tensor(schema.NOHAND_BODIES)
    assert torch.allclose(obs[:, s["ref_nohand_rot"]].reshape(6, -1, 6), body_rot[:, nohand], atol=1e-12)


def test_ref_key_pos_is_the_reference_pose():
    """Quirk fix: the block holds the reference key bodies relative to the sim root, not the sim pose."""
    ref = random_ref_state(3, seed=9, dtype=torch.float64)
    sim = sim_from_ref(ref)
    moved = ref.body_pos.clone()
    moved[:, 1:] += torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    obs = tracking_block(sim, replace(ref, body_pos=moved), G)
    s = OBS_BLOCK_SLICES
    key = list(schema.KEY_BODIES)
    expect = ((moved[:, key] - sim.root_pos[:, None]) @ heading_matrix(sim.root_rot)).reshape(3, -1)
    assert torch.allclose(obs[:, s["ref_key_pos"]], expect, atol=1e-12)
    sim_key = obs[:, s["body_pos"]].reshape(3, -1, 3)[:, [k - 1 for k in key]].reshape(3, -1)
    assert not torch.allclose(obs[:, s["ref_key_pos"]], sim_key)


def test_heading_frame_conventions():
    # a root yawed by +90° and pitched: heading matches rotations.heading_quat_inverse and ignores the pitch
    yaw, pitch = math.pi / 2, 0.4
    qz = torch.tensor([math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)], dtype=torch.float64)
    qy = torch.tensor([math.cos(pitch / 2), 0, math.sin(pitch / 2), 0], dtype=torch.float64)
    from interprior.rotations import quat_mul

    q = quat_mul(qz, qy)[None]
    v = torch.tensor([[0.0, 1.0, 0.5]], dtype=torch.float64)
    local = (v[:, None] @ heading_matrix(q))[:, 0]
    assert torch.allclose(local, quat_apply(heading_quat_inverse(q), v), atol=1e-12)
    assert torch.allclose(local, torch.tensor([[1.0, 0.0, 0.5]], dtype=torch.float64), atol=1e-12)
    # tan-norm = first and third rotation-matrix columns
    qr = random_ref_state(2, seed=1, dtype=torch.float64).body_rot
    m = quat_to_matrix(qr)
    assert torch.allclose(tan_norm(qr), torch.cat([m[..., :, 0], m[..., :, 2]], -1), atol=1e-12)


def test_contact_flags_and_diff_use_object_contact():
    ref = random_ref_state(2, seed=10)
    sim = sim_from_ref(ref)
    cb = list(schema.CONTACT_BODIES)
    lab = torch.zeros(2, schema.NUM_BODIES)
    lab[:, cb[0]], lab[:, cb[1]], lab[:, cb[2]], lab[:, cb[3]] = 1, 1, -1, -1
    oc = torch.zeros(2, schema.NUM_BODIES, dtype=torch.bool)
    oc[:, cb[1]] = oc[:, cb[3]] = oc[:, cb[4]] = True  # matched +1, unwanted on −1, unlabelled
    gc = torch.ones_like(oc)  # ground contact everywhere must not show up
    obs = tracking_block(replace(sim, object_contact=oc, ground_contact=gc), replace(ref, contact=lab), G)
    s = OBS_BLOCK_SLICES
    flags, diff = obs[:, s["contact"]], obs[:, s["diff_contact"]]
    assert flags[0, :6].tolist() == [0, 1, 0, 1, 1, 0] and flags[0, 6:].sum() == 0
    assert diff[0, :6].tolist() == [1, 0, 0, 1, 0, 0] and diff[0, 6:].abs().sum() == 0


def test_ig_feature():
    v = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.3, 0.4], [2.0, 0.0, 0.0]])
    f = ig_feature(v)
    assert torch.equal(f[0], torch.zeros(3))
    assert torch.allclose(f[1].norm(), torch.tensor(math.exp(-2.5)))
    assert torch.allclose(f[1] / f[1].norm(), v[1] / 0.5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_device_and_dtype_follow_inputs(dtype):
    ref = random_ref_state(2, seed=11, dtype=dtype)
    obs = tracking_observation(random_sim_state(2, dtype=dtype), [ref], G)
    assert obs.dtype == dtype and obs.device == ref.root_pos.device


@pytest.mark.parametrize("n", [1, 3, 64])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numpy_path_is_bit_for_bit_the_torch_kernels(monkeypatch, n, dtype):
    """The CPU observation (numpy arithmetic, torch transcendentals) equals the torch kernels exactly, for the
    SMPL-X and the body_only groups, a non-finite env, and a strided `out`."""
    import interprior.mdp.observations as obs_mod

    for groups in (G, embodiment("body_only").resolved):
        refs = [random_ref_state(n, seed=21 + k, dtype=dtype) for k in range(2)]
        sim = random_sim_state(n, seed=23, dtype=dtype)
        sim.root_pos[0, 1] = float("nan")
        sim.body_rot[-1, 3, 0] = float("inf")
        fast = tracking_observation(sim, refs, groups)
        buf = torch.zeros(n, fast.shape[1] + 5, dtype=dtype)
        tracking_observation(sim, refs, groups, out=buf[:, 2:-3])
        monkeypatch.setattr(obs_mod, "NUMPY_PATH", False)
        slow = tracking_observation(sim, refs, groups)
        monkeypatch.setattr(obs_mod, "NUMPY_PATH", True)
        same = lambda a, b: torch.equal(a.nan_to_num(), b.nan_to_num()) and torch.equal(a.isnan(), b.isnan())  # noqa: E731
        assert same(fast, slow) and same(buf[:, 2:-3], slow) and fast.dtype == dtype
        assert torch.isnan(slow[0]).any()  # the diverged env's NaN propagates, as in the torch kernels


def test_repeated_columns_point_at_equal_columns():
    from interprior.mdp.observations import repeated_columns

    source = repeated_columns(G, (1, 16))
    obs = tracking_observation(random_sim_state(4, seed=31), [random_ref_state(4, seed=s) for s in (32, 33)], G)
    assert source.shape == (obs.shape[1],) and bool((source <= torch.arange(obs.shape[1])).all())
    assert torch.equal(obs[:, source], obs)
    shared = int((source != torch.arange(obs.shape[1])).sum())
    assert shared == sum(OBS_BLOCK_SLICES[b].stop - OBS_BLOCK_SLICES[b].start for b in SIM_ONLY_BLOCKS)
    assert torch.equal(repeated_columns(G, (1,)), torch.arange(OBS_BLOCK_SIZE))
