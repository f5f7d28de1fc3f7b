"""Dopamine-gated KC->MBON plasticity (flyenv.brains.olfactory.plasticity): the
compartment map from the data, known answers of the rule (no dopamine -> no change;
pairing depresses only the paired compartment's active-KC synapses), reward -> PAM and
punishment -> PPL1 only, reset by init_state, gradients to the plasticity rates, the
fused and op-by-op paths agree, and plasticity off leaves the brain as it was."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from flyenv.brains.olfactory.brain import (
    BrainState,
    OlfactoryBrain,
    OlfactoryBrainConfig,
    PlasticBrainState,
)
from flyenv.brains.olfactory.plasticity import (
    COMPARTMENTS,
    DAN_COMPARTMENTS,
    MBON_COMPARTMENTS,
    MBPlasticityConfig,
    compartment_mean_weight,
    compartment_of_dan,
    compartment_of_mbon,
    compartment_table,
)
from flyenv.connectome.mushroom_body import load_mushroom_body

warnings.filterwarnings("ignore", message=".*Sparse.*")

G = 55  # glomeruli


@pytest.fixture(scope="module")
def mb():
    return load_mushroom_body()


@pytest.fixture(scope="module")
def brain(mb):
    torch.manual_seed(0)
    return OlfactoryBrain(OlfactoryBrainConfig(plasticity=MBPlasticityConfig()), mushroom_body=mb)


def _obs(batch: int, reinforcement, seed: int = 3, dtype=torch.float32) -> torch.Tensor:
    """OdorConditioning-like observation: 2G ORN rates, 3 self-motion, reinforcement."""
    g = torch.Generator().manual_seed(seed)
    base = 0.05 + 0.5 * torch.rand(batch, G, generator=g, dtype=dtype)
    obs = torch.zeros(batch, 2 * G + 4, dtype=dtype)
    obs[:, :G], obs[:, G : 2 * G] = base, 0.95 * base
    obs[:, -1] = torch.as_tensor(reinforcement, dtype=dtype)
    return obs


def _comp_mask(pl, comp: str) -> torch.Tensor:
    """(n_syn,) synapses that have ``comp`` among their compartments."""
    return pl.syn_comp[:, COMPARTMENTS.index(comp)] > 0


# ---------------------------------------------------------------- compartments
def test_compartments_from_the_data(mb, brain):
    neu = mb.neurons
    # every MBON and DAN type of the data is in the tables
    for t in neu.cell_type[mb.populations["MBON"]]:
        assert str(t) in MBON_COMPARTMENTS
    for t in neu.cell_type[mb.populations["DAN"]]:
        assert str(t) in DAN_COMPARTMENTS
    assert compartment_of_mbon("MBON11") == ("γ1", "pedc")  # MBON-γ1pedc>α/β
    assert compartment_of_mbon("MBON05") == ("γ4",)  # dendrites γ4, axon to γ1γ2
    assert compartment_of_dan("PPL101") == ("γ1", "pedc")
    assert compartment_of_dan("PAM07") == ("γ4",)  # teaches γ4, input in γ1γ2
    assert compartment_of_dan("PPL201") == ()
    comp = brain.plasticity.compartments
    # the DAN->MBON edges of the data agree with the name-based compartments
    assert comp.dan_mbon_agreement > 0.95
    # reward and punishment compartments are disjoint
    rows = {r["compartment"]: r for r in compartment_table(mb)}
    for r in rows.values():
        assert len(r["dan_clusters"]) <= 1, r
    assert rows["α1"]["dan_clusters"] == ["PAM"] and rows["α1"]["valence"] == "avoid"
    assert rows["γ1"]["dan_clusters"] == ["PPL1"] and rows["γ1"]["valence"] == "approach"
    assert rows["pedc"]["mbon_types"] == {"MBON11": 1}
    # each KC->MBON synapse sits in compartments of its KC's lobe
    lobes = {"γ": "KCg", "α1": "KCab", "α'3": "KCapbp"}
    kc_types = neu.cell_type[mb.populations["KC"]]
    for c, prefix in lobes.items():
        pre = brain.plasticity.syn_pre[_comp_mask(brain.plasticity, c if c != "γ" else "γ1")]
        assert all(str(kc_types[k]).startswith(prefix) for k in pre.tolist())
    # MBON valence: glutamatergic MBON07 (α1, PAM) avoids, GABAergic MBON11 (PPL1) approaches
    types = list(comp.mbon_types)
    assert comp.mbon_valence_compartment[types.index("MBON07")] == -1
    assert comp.mbon_valence_compartment[types.index("MBON11")] == 1
    assert comp.mbon_valence_compartment[types.index("MBON22")] == 0  # calyx: no DAN


# ---------------------------------------------------------------- the rule
def test_no_dan_activity_no_weight_change(brain):
    pl = brain.plasticity
    b2 = 6
    g = torch.Generator().manual_seed(0)
    factors = 0.2 + 0.8 * torch.rand(pl.n_syn, b2, generator=g)  # already depressed
    elig = torch.rand(pl.n_kc, b2, generator=g)
    counts = (torch.rand(pl.n_kc, b2, generator=g) < 0.3).float() * 3
    dan = torch.zeros(pl.n_dan, b2)
    f, e = pl.update(factors, elig, counts, dan, step_ms=10.0)
    assert torch.equal(f, factors)  # exactly
    assert not torch.equal(e, elig)  # the trace still follows the KCs
    # and in the brain: odor without reinforcement, 15 agent steps
    st = brain.init_state(3)
    obs = _obs(3, [0.0, 0.0, 0.0])
    with torch.no_grad():
        for _ in range(15):
            _, st, _ = brain.step(obs, st)
    assert st.kc_eligibility.sum() > 0  # KCs were active
    assert torch.equal(st.kc_mbon_factor, torch.ones_like(st.kc_mbon_factor))
    assert torch.equal(st.dan, torch.zeros_like(st.dan))


def test_pairing_depresses_only_the_paired_compartments_active_kc_synapses(brain):
    pl = brain.plasticity
    comp = pl.compartments
    b2 = 4
    # dopamine in α1 only: its DANs (PAM11) active, in column 0 and 2; columns 1, 3: none
    dan = torch.zeros(pl.n_dan, b2)
    alpha1 = torch.tensor(["α1" in c for c in comp.dan_compartments])
    assert alpha1.sum() == 8  # PAM11 cells
    dan[alpha1, 0] = dan[alpha1, 2] = 1.0
    in_a1 = _comp_mask(pl, "α1")
    a1_pre = pl.syn_pre[in_a1].unique()
    counts = torch.zeros(pl.n_kc, b2)
    active = a1_pre[::2]  # half the KCs presynaptic in α1 ...
    other = torch.tensor([k for k in range(pl.n_kc) if k not in set(a1_pre.tolist())][:200])
    counts[active] = 2.0
    counts[other] = 2.0  # ... and KCs with no α1 synapse
    factors = torch.ones(pl.n_syn, b2)
    f, _ = pl.update(factors, torch.zeros(pl.n_kc, b2), counts, dan, step_ms=10.0)
    pre_active = counts[pl.syn_pre, 0] > 0
    for col in (0, 2):
        changed = f[:, col] != 1.0
        assert torch.equal(changed, in_a1 & pre_active)  # exactly the paired ones
        assert torch.all(f[in_a1 & pre_active, col] < 1.0)
    for col in (1, 3):  # no dopamine in these flies: no change
        assert torch.equal(f[:, col], factors[:, col])
    # the depression is the rule's: f = exp(-Δ eta D e)
    eta = float(pl.log_depression_rate.detach().exp()[COMPARTMENTS.index("α1")])
    only_a1 = (pl.syn_comp[:, COMPARTMENTS.index("α1")] == 1) & pre_active
    expect = torch.exp(torch.tensor(-0.010 * eta * 1.0 * 2.0))
    torch.testing.assert_close(f[only_a1, 0], expect.expand(int(only_a1.sum())))
    # dopamine alone (no KC activity) leaves untouched synapses untouched
    f2, _ = pl.update(factors, torch.zeros(pl.n_kc, b2), torch.zeros(pl.n_kc, b2), dan, 10.0)
    assert torch.equal(f2, factors)
    # ... and brings depressed ones back toward 1 (recovery)
    f3, _ = pl.update(f, torch.zeros(pl.n_kc, b2), torch.zeros(pl.n_kc, b2), dan, 10.0)
    d = in_a1 & pre_active
    assert torch.all(f3[d, 0] > f[d, 0]) and torch.all(f3[d, 0] < 1.0)


def test_reward_drives_pam_punishment_ppl1_never_the_other(brain):
    pl = brain.plasticity
    cl = np.array(pl.compartments.dan_cluster)
    pam, ppl1 = torch.from_numpy(cl == "PAM"), torch.from_numpy(cl == "PPL1")
    r = torch.tensor([1.0, -1.0, 0.0, 0.5, -0.25])
    dan = pl.dan_rates(r)  # (n_dan, 2B), both hemispheres
    b = len(r)
    assert torch.equal(dan[:, :b], dan[:, b:])
    left = dan[:, :b]
    for j, x in enumerate(r.tolist()):
        if x > 0:
            assert torch.all(left[pam, j] == x) and torch.all(left[~pam, j] == 0)
        elif x < 0:
            assert torch.all(left[ppl1, j] == -x) and torch.all(left[~ppl1, j] == 0)
        else:
            assert torch.all(left[:, j] == 0)
    # in the brain: reward changes only PAM compartments, punishment only PPL1 ones
    st = brain.init_state(2)
    obs = _obs(2, [1.0, -1.0])
    with torch.no_grad():
        for _ in range(10):
            _, st, _ = brain.step(obs, st)
    rel = compartment_mean_weight(brain, st, relative=True)  # (B, 2, n_comp)
    rel = torch.nan_to_num(rel, nan=1.0)  # compartments without single-compartment synapses
    rows = compartment_table()
    pam_c = [i for i, r in enumerate(rows) if r["dan_clusters"] == ["PAM"]]
    ppl_c = [i for i, r in enumerate(rows) if r["dan_clusters"] == ["PPL1"]]
    idx = {c: i for i, c in enumerate(COMPARTMENTS)}
    # reward (fly 0): PPL1 compartments untouched, PAM ones depressed where KCs fired
    assert torch.all(rel[0, :, ppl_c] == 1) and torch.all(rel[0, :, pam_c] <= 1)
    assert torch.all(rel[0, :, [idx["α1"], idx["γ3"], idx["β2"]]] < 1)
    # punishment (fly 1): the other way round
    assert torch.all(rel[1, :, pam_c] == 1) and torch.all(rel[1, :, ppl_c] <= 1)
    assert torch.all(rel[1, :, [idx["γ1"], idx["α3"], idx["α2"], idx["pedc"]]] < 1)
    assert torch.equal(st.dan[:, 0] > 0, pam) and torch.equal(st.dan[:, 1] > 0, ppl1)


def test_reset_restores_the_initial_weights(brain):
    fresh = brain.init_state(2)
    st = fresh
    with torch.no_grad():
        for _ in range(5):
            _, st, _ = brain.step(_obs(2, [1.0, -1.0]), st)
    assert torch.all(st.kc_mbon_factor.min(0).values < 1)  # every fly learned something
    again = brain.init_state(2)
    assert isinstance(again, PlasticBrainState)
    for a, b in zip(again[7:], fresh[7:], strict=True):
        assert torch.equal(a, b)
    assert torch.equal(again.kc_mbon_factor, torch.ones_like(again.kc_mbon_factor))
    assert again.kc_mbon_factor.shape == (brain.kc_mbon.nnz, 4)  # per fly and side


# ---------------------------------------------------------------- gradients, paths
def test_gradients_reach_the_plasticity_rates_after_pairing(mb):
    torch.manual_seed(1)
    brain = OlfactoryBrain(OlfactoryBrainConfig(plasticity=MBPlasticityConfig()), mushroom_body=mb)
    st = brain.init_state(2)
    p = brain._params()
    for _ in range(6):  # odor paired with reward
        _, st, _ = brain.step(_obs(2, [1.0, 1.0]), st, params=p)
    acts = []
    for _ in range(3):  # odor alone: the learned response
        a, st, out = brain.step(_obs(2, [0.0, 0.0]), st, params=p, summary=True)
        acts.append(a)
    loss = torch.stack(acts).square().sum() + 1e-3 * out["rate_hz/MBON"].sum()
    loss.backward()
    pl = brain.plasticity
    g = pl.log_depression_rate.grad
    idx = {c: i for i, c in enumerate(COMPARTMENTS)}
    assert g[idx["α1"]] != 0 and g[idx["γ3"]] != 0  # rewarded (PAM) compartments
    for c in ("γ1", "α3", "α'3"):  # PPL1: no dopamine was given, so no gradient
        assert g[idx[c]] == 0
    assert pl.log_eligibility_tau.grad != 0
    assert pl.w_valence_ipsi.grad.abs().sum() > 0
    assert brain.readout.weight.grad.abs().sum() > 0
    assert brain.w_mbon_dn_ipsi.grad.abs().sum() > 0


def test_fused_and_op_by_op_paths_agree_with_plasticity(mb):
    torch.manual_seed(2)
    cfg = OlfactoryBrainConfig(plasticity=MBPlasticityConfig(depression_rate_per_s=20.0))
    brain = OlfactoryBrain(cfg, mushroom_body=mb).double()
    results = []
    for fused in (True, False):
        brain.config.fused_kernels = fused
        brain.zero_grad(set_to_none=True)
        st = brain.init_state(2)
        st = type(st)(*[_double(x) for x in st])
        acts = []
        for t in range(6):
            a, st, _ = brain.step(
                _obs(2, [1.0, -1.0] if t < 4 else [0, 0], dtype=torch.float64), st
            )
            acts.append(a)
        torch.stack(acts).square().sum().backward()
        grads = {n: q.grad.clone() for n, q in brain.named_parameters() if q.grad is not None}
        results.append((torch.stack(acts).detach(), st.kc_mbon_factor.detach(), grads))
    (a0, f0, g0), (a1, f1, g1) = results
    assert torch.all(f0 < 1.0 + 1e-12) and f0.min() < 0.99
    torch.testing.assert_close(a0, a1, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(f0, f1, rtol=1e-9, atol=1e-9)
    assert g0.keys() == g1.keys()
    for n in g0:
        torch.testing.assert_close(g0[n], g1[n], rtol=1e-6, atol=1e-9, msg=n)


def _double(x):
    if isinstance(x, torch.Tensor):
        return x.double()
    return type(x)(*(t.double() for t in x))


def test_plasticity_off_is_todays_brain(mb):
    torch.manual_seed(0)
    off = OlfactoryBrain(mushroom_body=mb)
    assert off.config.plasticity is None and off.plasticity is None
    assert not any(k.startswith("plasticity") for k in off.state_dict())
    st = off.init_state(2)
    assert type(st) is BrainState
    # a plastic brain with the same parameters, no reinforcement and the valence bias
    # zeroed computes exactly the same actions through its per-fly KC->MBON path
    on = OlfactoryBrain(OlfactoryBrainConfig(plasticity=MBPlasticityConfig()), mushroom_body=mb)
    missing, unexpected = on.load_state_dict(off.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("plasticity.") for k in missing)
    with torch.no_grad():
        on.plasticity.w_valence_ipsi.zero_()
        on.plasticity.w_valence_contra.zero_()
    s_on = on.init_state(2)
    with torch.no_grad():
        for t in range(8):
            obs = _obs(2, [0.0, 0.0], seed=t)
            a_off, st, _ = off.step(obs[:, :-1], st)
            a_on, s_on, _ = on.step(obs, s_on)
            torch.testing.assert_close(a_on, a_off, rtol=1e-5, atol=1e-6)
    # the plastic brain insists on its reinforcement column
    with pytest.raises(ValueError, match="reinforcement"):
        on.step(torch.zeros(2, 2, G), on.init_state(2))


def test_avoid_weight_scales_only_the_avoidance_mbons(mb):
    """The valence sum weights approach MBONs +1, avoidance MBONs -avoid_weight, mixed 0."""
    plain = OlfactoryBrain(OlfactoryBrainConfig(plasticity=MBPlasticityConfig()), mushroom_body=mb)
    cfg = MBPlasticityConfig(avoid_weight=1.589)
    bal = OlfactoryBrain(OlfactoryBrainConfig(plasticity=cfg), mushroom_body=mb)
    s0, s1 = plain.plasticity.valence_sign[0], bal.plasticity.valence_sign[0]
    assert (s0 < 0).any() and (s0 > 0).any()
    torch.testing.assert_close(s1[s0 > 0], s0[s0 > 0])
    torch.testing.assert_close(s1[s0 < 0], 1.589 * s0[s0 < 0])
    assert torch.all(s1[s0 == 0] == 0)
    with pytest.raises(ValueError, match="avoid_weight"):
        MBPlasticityConfig(avoid_weight=-1.0).validate()


def test_videos_show_the_dans_of_a_plastic_brain():
    """With plasticity on, the policy reports the DAN rates beside the spike counts and
    the video's raster panel adds a DAN band: during sugar only PAM DANs are on."""
    from flyenv.brains.olfactory.policy import OlfactoryBrainPolicy
    from flyenv.policies.torch_policy import StatefulTorchPolicy
    from flyenv.viz.brain_panel import raster_side_panel

    module = OlfactoryBrainPolicy(plasticity={}, dt_ms=2.0, substeps=5)
    policy = StatefulTorchPolicy(module)
    panel = raster_side_panel(policy, height=240)
    obs = _obs(1, 1.0)[0].numpy()
    policy(obs)
    dan = policy.records[-1]["spikes/DAN"]  # (2 sides, n_dan)
    pam = module.brain.plasticity.is_pam[:, 0].numpy().astype(bool)
    assert dan.shape == (2, pam.size)
    assert (dan[:, pam] > 0).all() and (dan[:, ~pam] == 0).all()
    image = panel()
    assert image.shape == (240, 320, 3) and image.any()
    plain = raster_side_panel(StatefulTorchPolicy(OlfactoryBrainPolicy()), height=240)
    assert plain is not None  # a brain without plasticity: KC, MBON, DN bands as before


def test_mbon_output_cut_makes_actions_independent_of_the_odors(mb):
    """The conditioning designs switch the lateral-horn shortcut off, so the MBONs (and
    their valence bias) are the only odor path to the DNs. With ``mbon_dn_zeroed`` the
    actions are then the same whatever the flies smell and whatever the reinforcement:
    the choice cannot depend on which odor was paired, and PI CS+ is 0 in expectation
    (what a non-zero MBON-cut row measures is the sampling of episodes)."""
    from flyenv.brains.olfactory.brain import ablate

    torch.manual_seed(0)
    cfg = OlfactoryBrainConfig(
        lateral_horn=False, mbon_dn_init_mv=1.0, plasticity=MBPlasticityConfig()
    )
    cut = ablate(OlfactoryBrain(cfg, mushroom_body=mb), "mbon_dn_zeroed")
    states = [cut.init_state(2) for _ in range(3)]
    with torch.no_grad():
        for t in range(10):
            odors = [_obs(2, [1.0, 1.0], seed=t), _obs(2, [-1.0, 0.0], seed=100 + t)]
            odors.append(torch.zeros_like(odors[0]))  # clean air, no reinforcement
            actions = []
            for i, obs in enumerate(odors):
                a, states[i], _ = cut.step(obs, states[i])
                actions.append(a)
            torch.testing.assert_close(actions[1], actions[0], rtol=0, atol=0)
            torch.testing.assert_close(actions[2], actions[0], rtol=0, atol=0)
    # not vacuous: the same brain with its MBON output does act on the odors
    intact = OlfactoryBrain(cfg, mushroom_body=mb)
    s0, s1, differ = intact.init_state(2), intact.init_state(2), False
    with torch.no_grad():
        for t in range(10):
            a0, s0, _ = intact.step(_obs(2, [1.0, 1.0], seed=t), s0)
            a1, s1, _ = intact.step(_obs(2, [-1.0, 0.0], seed=100 + t), s1)
            differ = differ or not torch.equal(a0, a1)
    assert differ
