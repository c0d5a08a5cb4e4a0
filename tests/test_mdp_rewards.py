import dataclasses
import math

import pytest
import torch
from mdp_fixtures import random_ref_state, random_sim_state, replace, sim_from_ref, transform_world

from interprior import schema
from interprior.assets.bodies import embodiment
from interprior.mdp.rewards import RewardWeights, embodiment_weights, tracking_reward
from interprior.rotations import axis_angle_to_quat, quat_mul

N = 6
G = embodiment("full").resolved
ALL_ON = RewardWeights(pv=1.0, rv=1.0, orv=1.0)  # the code's zero-weight terms switched on for the tests
NONHAND = [i for i in range(schema.NUM_BODIES) if i not in schema.LEFT_HAND + schema.RIGHT_HAND]
LEFT = list(schema.LEFT_HAND)
LEFT_GRASP = [schema.BODY_INDEX["L_Wrist"]] + [b for b in schema.FINGERTIPS if b in schema.LEFT_HAND]


def _rotate(q, angle, axis=(0.3, -0.5, 0.8)):
    a = torch.tensor(axis, dtype=q.dtype)
    a = a / a.norm() * angle
    return quat_mul(axis_angle_to_quat(a).expand(q.shape), q)


@pytest.mark.parametrize("grasp_prob", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reward_is_one_when_sim_equals_ref(grasp_prob, dtype):
    ref = random_ref_state(32, seed=1, dtype=dtype, grasp_prob=grasp_prob)
    sim = sim_from_ref(ref, num_objects=2)
    reward, terms = tracking_reward(sim, ref, sim, G, ALL_ON)
    assert reward.shape == (32,) and reward.dtype == dtype
    assert (reward - 1.0).abs().max() < 1e-5
    for name, t in terms.items():
        assert t.shape == (32,) and (t - 1.0).abs().max() < 1e-5, name
    reward_d, terms_d = tracking_reward(sim, ref, sim, G)  # default weights too
    assert (reward_d - 1.0).abs().max() < 1e-5


def test_reward_is_product_of_terms_in_unit_interval():
    ref = random_ref_state(N, seed=2)
    sim, prev = random_sim_state(N, seed=3), random_sim_state(N, seed=4)
    reward, terms = tracking_reward(sim, ref, prev, G, ALL_ON)
    assert torch.allclose(reward, torch.stack(list(terms.values())).prod(0))
    for name, t in terms.items():
        assert ((t >= 0) & (t <= 1)).all(), name
    assert (reward < 1).all()


def _setup(grasp_prob=0.0):
    ref = random_ref_state(N, seed=5, dtype=torch.float64, grasp_prob=grasp_prob)
    return ref, sim_from_ref(ref)


# perturbation(ref, sim, level) -> (sim, ref, prev); level 0 must reproduce sim == ref
def _body_pos(ref, sim, s):
    p = sim.body_pos.clone()
    p[:, 1:] += s * torch.tensor([0.6, -0.3, 0.2], dtype=p.dtype)
    return replace(sim, body_pos=p), ref, sim


def _body_rot(ref, sim, s):
    q = sim.body_rot.clone()
    q[:, 1:] = _rotate(q[:, 1:], s)
    return replace(sim, body_rot=q), ref, sim


def _add(field, obj=False):
    def f(ref, sim, s):
        x = getattr(sim, field).clone()
        if obj:
            x[:, 0] += s * torch.tensor([0.3, 0.5, -0.4], dtype=x.dtype)
        else:
            x += s * torch.tensor([0.3, 0.5, -0.4], dtype=x.dtype)
        moved = replace(sim, **{field: x})
        return moved, ref, moved  # prev moves too: no acceleration
    return f


def _obj_rot(ref, sim, s):
    q = sim.obj_rot.clone()
    q[:, 0] = _rotate(q[:, 0], s)
    return replace(sim, obj_rot=q), ref, sim


def _ig(ref, sim, s):
    # the same shift for every body: E_ig = Σ w_d s² = s² whatever w_d becomes
    v = sim.nearest_object_vec + s * torch.tensor([0.0, 0.6, 0.8], dtype=sim.root_pos.dtype)
    return replace(sim, nearest_object_vec=v), ref, sim


def _promotion(ref, sim, s):
    lab = ref.contact.clone()
    lab[:, NONHAND[:4]] = 1.0
    c = lab > 0.5
    c[:, NONHAND[: int(s)]] = False  # s missed promoted contacts
    ref = replace(ref, contact=lab)
    sim = replace(sim_from_ref(ref), object_contact=c)
    return sim, ref, sim


def _penalty(ref, sim, s):
    lab = ref.contact.clone()
    lab[:, NONHAND[:4]] = -1.0
    c = lab > 0.5
    c[:, NONHAND[: int(s)]] = True  # s unwanted contacts
    ref = replace(ref, contact=lab)
    sim = replace(sim_from_ref(ref), object_contact=c)
    return sim, ref, sim


def _hand_contact(ref, sim, s):
    # the left hand grasps in the reference (6 bodies labelled +1); the sim drops s of them (s <= 3 keeps
    # the reference-free "wrap" count at >= 3, so only the guidance term changes)
    c = sim.object_contact.clone()
    c[:, LEFT_GRASP[: int(s)]] = False
    return replace(sim, object_contact=c), ref, sim


def _hand_free(ref, sim, s):
    v = sim.nearest_object_vec.clone()
    v[:, LEFT_GRASP] += v[:, LEFT_GRASP] / v[:, LEFT_GRASP].norm(dim=-1, keepdim=True) * s  # s further out
    return replace(sim, nearest_object_vec=v), ref, sim


def _dof_acc(ref, sim, s):
    return sim, ref, replace(sim, dof_vel=sim.dof_vel - s)


def _obj_acc(ref, sim, s):
    lin = sim.obj_linvel.clone()
    lin[:, 0] -= s
    return sim, ref, replace(sim, obj_linvel=lin)


def _force(ref, sim, s):
    f = sim.object_force.clone()
    f[:, LEFT] += s * 100.0 * torch.tensor([0.0, 0.0, 1.0], dtype=f.dtype)
    return replace(sim, object_force=f), ref, sim


CASES = {
    "rp": (_body_pos, (0.0, 0.05, 0.2), False),
    "rr": (_body_rot, (0.0, 0.3, 1.0), False),
    "rpv": (_add("body_linvel"), (0.0, 0.5, 2.0), False),
    "rrv": (_add("body_angvel"), (0.0, 0.5, 2.0), False),
    "rop": (_add("obj_pos", obj=True), (0.0, 0.1, 0.5), False),
    "ror": (_obj_rot, (0.0, 0.5, 2.0), False),
    "ropv": (_add("obj_linvel", obj=True), (0.0, 0.5, 2.0), False),
    "rorv": (_add("obj_angvel", obj=True), (0.0, 0.5, 2.0), False),
    "rig": (_ig, (0.0, 0.1, 0.4), False),
    "rcg_other": (_promotion, (0, 1, 3), False),
    "rcg_all": (_penalty, (0, 1, 3), False),
    "rcg_hand": (_hand_contact, (0, 1, 3), True),
    "rhand_free": (_hand_free, (0.0, 0.1, 0.3), True),
    "reg_dof": (_dof_acc, (0.0, 3.0, 20.0), False),
    "reg_obj": (_obj_acc, (0.0, 3.0, 20.0), False),
    "reg_force": (_force, (0.0, 1.0, 5.0), False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_term_decreases_with_its_error(name):
    perturb, levels, grasp = CASES[name]
    ref, sim = _setup(grasp_prob=1.0 if grasp else 0.0)
    rewards, values = [], []
    for s in levels:
        r, terms = tracking_reward(*perturb(ref, sim, s), G, ALL_ON)
        rewards.append(r)
        values.append(terms[name])
        others = {k: v for k, v in terms.items() if k != name}
        if name != "rhand_free":  # moving the hand away from the object also changes the ig error
            for k, v in others.items():
                assert (v - 1.0).abs().max() < 1e-9, (name, k)
    assert (values[0] - 1.0).abs().max() < 1e-9 and (rewards[0] - 1.0).abs().max() < 1e-9
    assert (values[1] < values[0]).all() and (values[2] < values[1]).all()
    assert (rewards[1] < rewards[0]).all() and (rewards[2] < rewards[1]).all()


def test_contact_terms_fire_only_in_their_cases():
    ref, sim = _setup()
    lab = torch.zeros_like(ref.contact)
    r_elbow, l_knee, head = (schema.BODY_INDEX[n] for n in ("R_Elbow", "L_Knee", "Head"))
    lab[:, r_elbow] = 1.0  # promoted (the code's rcg_other range missed the right arm)
    lab[:, l_knee] = -1.0  # penalised
    lab[:, LEFT_GRASP[1]] = 1.0  # a left fingertip: hand guidance, not rcg_other
    ref = replace(ref, contact=lab)
    base = sim_from_ref(ref)

    def terms(**changes):
        return tracking_reward(replace(base, **changes), ref, None, G)[1]

    t = terms()
    assert all(float(t[k].min()) == 1.0 for k in ("rcg_other", "rcg_all", "rcg_hand"))
    c = base.object_contact.clone()
    c[:, r_elbow] = False
    t = terms(object_contact=c)
    assert (t["rcg_other"] < 1).all() and (t["rcg_all"] == 1).all() and (t["rcg_hand"] == 1).all()
    c = base.object_contact.clone()
    c[:, l_knee] = True
    t = terms(object_contact=c)
    assert (t["rcg_all"] < 1).all() and (t["rcg_other"] == 1).all()
    g = base.ground_contact.clone()
    g[:, l_knee] = True  # ground contact of a "-1" body is not penalised
    assert (terms(ground_contact=g)["rcg_all"] == 1).all()
    c = base.object_contact.clone()
    c[:, head] = True  # unlabelled (0) body touching: neutral
    t = terms(object_contact=c)
    assert all((t[k] == 1).all() for k in ("rcg_other", "rcg_all", "rcg_hand"))
    c = base.object_contact.clone()
    c[:, LEFT_GRASP[1]] = False  # the reference left hand touches, the sim hand does not
    t = terms(object_contact=c)
    assert (t["rcg_hand"] < 1).all() and (t["rcg_hand"] >= 0.5).all() and (t["rcg_other"] == 1).all()
    c[:, LEFT[5]] = True  # any other left-hand body touching satisfies the guidance
    assert (terms(object_contact=c)["rcg_hand"] == 1).all()
    # no reference hand contact: touching or not does not matter
    ref0 = replace(ref, contact=torch.zeros_like(lab))
    c = torch.zeros_like(base.object_contact)
    c[:, LEFT] = True
    for cc in (c, torch.zeros_like(c)):
        t = tracking_reward(replace(base, object_contact=cc), ref0, None, G)[1]
        assert (t["rcg_hand"] == 1).all() and (t["rhand_free"] == 1).all()


def test_feet_position_weight_fix():
    """Feet (ankles and toes) always get position weight >= 1; the code's bug hit knees instead."""
    ref, sim = _setup()
    far = torch.tensor([0.0, 0.0, 5.0], dtype=torch.float64)
    near = torch.tensor([0.0, 0.0, 0.05], dtype=torch.float64)
    vec = far.expand(N, schema.NUM_BODIES, 3).clone()
    vec[:, schema.BODY_INDEX["Head"]] = near  # one body near the object takes almost all of w_d
    ref = replace(ref, nearest_object_vec=vec)
    sim = replace(sim, nearest_object_vec=vec)
    for body, weighted in (("L_Toe", True), ("R_Ankle", True), ("L_Knee", False)):
        p = sim.body_pos.clone()
        p[:, schema.BODY_INDEX[body]] += torch.tensor([0.1, 0.0, 0.0], dtype=p.dtype)
        rp = tracking_reward(replace(sim, body_pos=p), ref, None, G)[1]["rp"]
        full = math.exp(-30.0 * 0.01 / schema.NUM_BODIES)
        if weighted:
            assert torch.allclose(rp, torch.full_like(rp, full))
        else:
            assert (rp > 1 - (1 - full) * 0.05).all()


def test_reference_free_hand_prefers_the_simulated_object():
    """The sim object sits 20 cm from the reference object. A sim hand wrapped around the *simulated* object
    scores higher than a sim hand copying the reference hand pose (20 cm away from it, not touching)."""
    ref, sim = _setup(grasp_prob=1.0)
    shift = torch.tensor([0.2, 0.0, 0.0], dtype=torch.float64)
    obj_pos = sim.obj_pos.clone()
    obj_pos[:, 0] += shift
    on_object = replace(sim, obj_pos=obj_pos)  # hands wrap the moved object: small vectors, contacts on
    c = sim.object_contact.clone()
    c[:, list(schema.LEFT_HAND + schema.RIGHT_HAND)] = False
    like_ref = replace(sim, obj_pos=obj_pos, nearest_object_vec=sim.nearest_object_vec + shift, object_contact=c)
    t_on = tracking_reward(on_object, ref, None, G)[1]["rhand_free"]
    t_ref = tracking_reward(like_ref, ref, None, G)[1]["rhand_free"]
    assert torch.allclose(t_on, torch.ones_like(t_on))
    assert (t_ref < t_on).all() and (t_ref > 0).all()


def test_world_invariance_and_energy_masking():
    ref = random_ref_state(N, seed=8, dtype=torch.float64)
    sim, prev = random_sim_state(N, seed=9, dtype=torch.float64), random_sim_state(N, seed=10, dtype=torch.float64)
    yaw = torch.linspace(-3, 3, N, dtype=torch.float64)
    shift = torch.tensor([1.5, -2.0, 0.0], dtype=torch.float64)
    r0, t0 = tracking_reward(sim, ref, prev, G, ALL_ON)
    r1, _ = tracking_reward(*(transform_world(x, yaw, shift) for x in (sim, ref, prev)), G, ALL_ON)
    assert torch.allclose(r0, r1, rtol=1e-9, atol=0.0)
    _, t = tracking_reward(sim, ref, None, G, ALL_ON)
    assert (t["reg_dof"] == 1).all() and (t["reg_obj"] == 1).all() and (t0["reg_dof"] < 1).all()


def test_embodiment_weights_and_config():
    v1, v2 = torch.randn(N, 52, 3), torch.randn(N, 52, 3)
    wd = embodiment_weights(v1, v2)
    assert torch.allclose(wd.sum(-1), torch.ones(N)) and (wd > 0).all()
    w = RewardWeights.from_dict({"p": 20.0, "or": 0.2})
    assert w.p == 20.0 and w.or_ == 0.2 and dataclasses.asdict(w)["cg_all"] == 3.0
    with pytest.raises(ValueError):
        RewardWeights.from_dict({"nope": 1.0})


def test_stability_terms_are_off_by_default_and_fall_with_their_errors():
    """Robot stabilisation: no factor at weight 0 (the reward stays bit for bit); each factor is 1 at no error and
    falls as its error grows; feet off the ground and a first step after a reset do not count."""
    from interprior.mdp.rewards import stability_terms
    from interprior.rotations import axis_angle_to_quat

    sim = random_sim_state(4, seed=3, dtype=torch.float64)
    assert stability_terms(sim, G, RewardWeights()) == {}
    w = RewardWeights(feet_flat=2.0, upright=3.0, action_rate=1.0, joint_limits=4.0)
    tilted = axis_angle_to_quat(torch.tensor([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [0.6, 0.0, 0.0], [0.6, 0.0, 0.0]],
                                             dtype=sim.body_rot.dtype))
    rot = sim.body_rot.clone()
    rot[:, list(G.feet)] = tilted[:, None]
    rot[:, G.torso[0]] = tilted
    ground = torch.zeros_like(sim.ground_contact)
    ground[:3, list(G.feet)] = True  # row 3: feet in the air
    limits = torch.tensor([[-1.0, 1.0]] * sim.dof_pos.shape[1], dtype=sim.dof_pos.dtype)
    dof = torch.zeros_like(sim.dof_pos)
    dof[1:, 0] = torch.tensor([0.9, 1.2, 1.5], dtype=dof.dtype)  # inside the margin, then beyond it
    state = replace(sim, body_rot=rot, ground_contact=ground, dof_pos=dof)
    action = torch.zeros(4, 5, dtype=torch.float64)
    prev = action.clone()
    prev[1:, 0] = torch.tensor([0.1, 0.5, 1.0], dtype=torch.float64)
    t = stability_terms(state, G, w, action, prev, limits)
    assert set(t) == {"rfeet_flat", "rupright", "raction_rate", "rjoint_limits"}
    for name in ("rfeet_flat", "rupright", "raction_rate", "rjoint_limits"):
        assert float(t[name][0]) == 1.0, name
    assert 1.0 > t["rfeet_flat"][1] > t["rfeet_flat"][2] and float(t["rfeet_flat"][3]) == 1.0
    assert 1.0 > t["rupright"][1] > t["rupright"][2] == t["rupright"][3]
    assert 1.0 > t["raction_rate"][1] > t["raction_rate"][2] > t["raction_rate"][3]
    assert float(t["rjoint_limits"][1]) == 1.0 > t["rjoint_limits"][2] > t["rjoint_limits"][3]
    assert float(stability_terms(state, G, w, action, None, limits)["raction_rate"].min()) == 1.0  # just reset
    reward, terms = tracking_reward(state, random_ref_state(4, seed=5, dtype=torch.float64), None, G, w, stability=t)
    assert torch.allclose(reward, torch.stack(list(terms.values())).prod(0))
