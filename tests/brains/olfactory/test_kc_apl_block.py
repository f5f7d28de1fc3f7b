# moved from tests/test_kc_apl_block.py
"""The fused (numba) KC <-> APL chunk equals the op-by-op torch reference path of
OlfactoryBrain: same spikes, same actions, same gradients on every parameter, for each
surrogate, refractory period and learnable-weight setting. Run in float64 so that the
two summation orders cannot flip a spike at threshold."""

from __future__ import annotations

import warnings

import pytest
import torch

from flyenv.brains.olfactory.brain import OlfactoryBrain, OlfactoryBrainConfig
from flyenv.connectome.mushroom_body import load_mushroom_body

warnings.filterwarnings("ignore", message=".*Sparse.*")


@pytest.fixture(scope="module")
def mb():
    return load_mushroom_body()


def _obs(agent_steps: int, batch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    base = 0.05 + 0.5 * torch.rand(batch, 1, 55, generator=g, dtype=torch.float64)
    side = torch.tensor([1.0, 0.9], dtype=torch.float64)[None, :, None]
    drift = 1.0 + 0.4 * torch.sin(torch.linspace(0, 3, agent_steps, dtype=torch.float64))
    return (base * side)[None] * drift[:, None, None, None]


def _run(brain: OlfactoryBrain, obs: torch.Tensor, fused: bool):
    brain.config.fused_kernels = fused
    brain.zero_grad(set_to_none=True)
    state = brain.init_state(obs.shape[1])
    state = state._replace(**{k: _double(getattr(state, k)) for k in state._fields})
    actions, recs, kc_rate = [], [], 0.0
    p = brain._params()
    for o in obs:
        a, state, out = brain.step(o, state, record=True, params=p, summary=True)
        actions.append(a)
        recs.append(out)
        kc_rate = kc_rate + out["rate_hz/KC"].mean()
    actions = torch.stack(actions)
    loss = actions.square().mean() + 1e-2 * kc_rate + 1e-3 * state.kc.v.sum()
    loss.backward()
    spikes = {k: torch.cat([r[k] for r in recs]) for k in ("PN", "KC", "APL", "MBON", "DN")}
    grads = {n: p.grad.clone() for n, p in brain.named_parameters() if p.grad is not None}
    return actions.detach(), spikes, grads


def _double(x):
    if x is None or isinstance(x, torch.Tensor):
        return None if x is None else x.double()
    return type(x)(*(_double(t) for t in x))


@pytest.mark.parametrize(
    "overrides",
    [
        dict(),
        dict(learn_pn_kc=True, learn_kc_apl=True, learn_apl_kc=True, kc_surrogate="sigmoid"),
        dict(kc_surrogate="triangle", refractory_ms=3.0),
    ],
    ids=["default", "all-learnable-sigmoid", "triangle-refractory3"],
)
def test_fused_chunk_equals_reference_path(mb, overrides):
    overrides = dict(overrides)
    surrogate = overrides.pop("kc_surrogate", "fast_sigmoid")
    refractory = overrides.pop("refractory_ms", 1.0)
    cfg = OlfactoryBrainConfig(**overrides)
    for pop in ("kc", "apl"):
        getattr(cfg, pop).surrogate = surrogate
        getattr(cfg, pop).refractory_ms = refractory
        getattr(cfg, pop).surrogate_scale = 1.0
    brain = OlfactoryBrain(cfg, mushroom_body=mb).double()
    obs = _obs(agent_steps=4, batch=2)
    a_ref, s_ref, g_ref = _run(brain, obs, fused=False)
    a_fused, s_fused, g_fused = _run(brain, obs, fused=True)
    for pop in s_ref:
        assert torch.equal(s_ref[pop], s_fused[pop]), pop
    assert s_ref["KC"].sum() > 0 and s_ref["APL"].sum() > 0  # the loop was exercised
    torch.testing.assert_close(a_fused, a_ref, rtol=0, atol=1e-12)
    assert set(g_ref) == set(g_fused)
    for name in g_ref:
        torch.testing.assert_close(g_fused[name], g_ref[name], rtol=1e-8, atol=1e-14, msg=name)
    # gradients reach the KC/APL parameters, and the learnable wiring when asked
    for name in ("kc.log_tau_m", "kc.log_threshold", "apl.log_tau_syn", "kc_mbon.log_magnitude"):
        assert g_fused[name].abs().sum() > 0, name
    if cfg.learn_pn_kc:
        for name in ("pn_kc.log_magnitude", "kc_apl.log_magnitude", "apl_kc.log_magnitude"):
            assert g_fused[name].abs().sum() > 0, name


def test_fused_path_is_used_on_cpu_and_can_be_switched_off(mb):
    brain = OlfactoryBrain(mushroom_body=mb)
    x = torch.zeros(3, 2)
    assert brain._use_fused(x)
    brain.config.fused_kernels = False
    assert not brain._use_fused(x)
