# moved from tests/test_olfactory_controls.py
"""Olfactory-taxis controls: each ablation changes exactly its own tensors, and the
sweep cell returns its metrics (tiny configs)."""

from __future__ import annotations

import copy
import json
import math
import warnings

import pytest
import torch

from flyenv.brains.olfactory.brain import ABLATIONS, OlfactoryBrain, ablate
from flyenv.evaluation.olfactory_controls import (
    SHIPPED_CHECKPOINT,
    build_policy,
    compare_rows,
    taxis_cell,
)

warnings.filterwarnings("ignore", message=".*Sparse.*")

CHANGED = {
    "intact": set(),
    "mbon_dn_zeroed": {"w_mbon_dn_ipsi", "w_mbon_dn_contra"},
    "no_lateral_horn": {"w_pn_dn_ipsi", "w_pn_dn_contra"},
    "no_contrast": set(),  # a config field, no tensor
    "no_handedness_bias": {"readout.bias"},
    "no_odor_to_dn": {"w_mbon_dn_ipsi", "w_mbon_dn_contra", "w_pn_dn_ipsi", "w_pn_dn_contra"},
    "no_wind": set(),  # these brains have no wind pathway: nothing to switch off
    "no_wind_gate": set(),
    "no_wind_surge": set(),
    "no_drive_floor": set(),  # these brains have no drive floor: a config field already None
    "no_plasticity": None,  # these brains have no plasticity: refused (test below)
    "mb_gains_reset": None,  # these brains have no mushroom-body gains: refused (test below)
}


@pytest.fixture(scope="module")
def untrained():
    module, env_kwargs = build_policy("untrained")
    return module.brain


@pytest.fixture(scope="module")
def trained():
    module, _ = build_policy(str(SHIPPED_CHECKPOINT))
    return module.brain


def _diff(a: OlfactoryBrain, b: OlfactoryBrain) -> set[str]:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return {k for k in sa if not torch.equal(sa[k], sb[k])}


def _config_diff(a: OlfactoryBrain, b: OlfactoryBrain) -> set[str]:
    return {k for k, v in vars(a.config).items() if getattr(b.config, k) != v}


@pytest.mark.parametrize("which", ["untrained", "trained"])
@pytest.mark.parametrize("name", ABLATIONS)
def test_each_ablation_changes_only_its_tensors(name, which, request):
    ref = request.getfixturevalue(which)
    if CHANGED[name] is None:
        with pytest.raises(ValueError, match="no plasticity|no mushroom-body gains"):
            ablate(copy.deepcopy(ref), name)
        return
    brain = ablate(copy.deepcopy(ref), name)
    assert _diff(ref, brain) == CHANGED[name]
    assert _config_diff(ref, brain) == ({"bilateral_contrast"} if name == "no_contrast" else set())
    if name == "mbon_dn_zeroed":
        assert not brain.w_mbon_dn_ipsi.any() and not brain.w_mbon_dn_contra.any()
        assert brain.w_pn_dn_ipsi.any()
    if name == "no_lateral_horn":
        assert not brain.w_pn_dn_ipsi.any() and not brain.w_pn_dn_contra.any()
        assert brain.w_mbon_dn_ipsi.any()
    if name == "no_odor_to_dn":
        assert not any(getattr(brain, k).any() for k in CHANGED[name])
    if name == "no_contrast":
        assert ref.config.bilateral_contrast == 0.97 and brain.config.bilateral_contrast == 0.0
    if name == "no_handedness_bias":
        b, b0 = brain.readout.bias.detach(), ref.readout.bias.detach()
        assert b[0] == b[1] and torch.allclose(b.mean(), b0.mean())
        assert (b0[0] - b0[1]).abs() > 0.1  # there was a handedness to remove


def test_no_plasticity_zeroes_only_the_depression_rate_of_a_plastic_brain():
    from flyenv.brains.olfactory.policy import BPTT_BRAIN_DEFAULTS, OlfactoryBrainPolicy

    ref = OlfactoryBrainPolicy(**BPTT_BRAIN_DEFAULTS, plasticity={}).brain
    brain = ablate(copy.deepcopy(ref), "no_plasticity")
    assert _diff(ref, brain) == {"plasticity.log_depression_rate"}
    assert not brain.plasticity.log_depression_rate.exp().any()


def test_mb_gains_reset_puts_only_the_mushroom_body_gains_back_to_one():
    from flyenv.brains.olfactory.policy import BPTT_BRAIN_DEFAULTS, OlfactoryBrainPolicy

    ref = OlfactoryBrainPolicy(**BPTT_BRAIN_DEFAULTS, mb_output_gains=True).brain
    with torch.no_grad():  # as if training had moved them, and the readout too
        ref.kc_mbon_log_gain.normal_(0.0, 0.2)
        ref.mbon_dn_log_gain.copy_(torch.tensor([0.3, -0.1]))
        ref.readout.bias.add_(0.1)
    brain = ablate(copy.deepcopy(ref), "mb_gains_reset")
    assert _diff(ref, brain) == {"kc_mbon_log_gain", "mbon_dn_log_gain"}
    assert not brain.kc_mbon_log_gain.any() and not brain.mbon_dn_log_gain.any()
    assert torch.equal(brain.readout.bias, ref.readout.bias)  # the rest of training stays


def test_ablated_paths_are_really_off(untrained):
    """Functional checks: DN input ignores the ablated source; contrast 0 no longer
    amplifies the left/right difference; symmetric bias = a brain built without it."""
    n = untrained.n_mbon
    s_pn = (torch.rand(untrained.n_pn, 6) < 0.3).float()
    s_mbon, s_mbon2 = ((torch.rand(n, 6) < 0.3).float() for _ in range(2))
    no_mb = ablate(copy.deepcopy(untrained), "mbon_dn_zeroed")
    assert torch.equal(no_mb._dn_kicks(s_pn, s_mbon), no_mb._dn_kicks(s_pn, s_mbon2))
    assert not torch.equal(untrained._dn_kicks(s_pn, s_mbon), untrained._dn_kicks(s_pn, s_mbon2))
    no_lh = ablate(copy.deepcopy(untrained), "no_lateral_horn")
    s_pn2 = (torch.rand(untrained.n_pn, 6) < 0.3).float()
    assert torch.equal(no_lh._dn_kicks(s_pn, s_mbon), no_lh._dn_kicks(s_pn2, s_mbon))

    rates = torch.rand(untrained.n_glom, 1) * torch.tensor([[1.01, 1.0]])  # left 1 % more
    diff = lambda x: (x[:, 0] - x[:, 1]).abs().mean() / x.mean()  # noqa: E731
    no_c = ablate(copy.deepcopy(untrained), "no_contrast")
    assert diff(untrained._antennal_lobe(rates)) > 20 * diff(rates)
    torch.testing.assert_close(diff(no_c._antennal_lobe(rates)), diff(rates))

    sym = ablate(copy.deepcopy(untrained), "no_handedness_bias")
    cfg = copy.deepcopy(untrained.config)
    cfg.action_bias_asymmetry = 0.0
    torch.testing.assert_close(sym.readout.bias, OlfactoryBrain(cfg).readout.bias)


def test_unknown_ablation_and_config_are_errors(untrained, tmp_path):
    with pytest.raises(ValueError, match="unknown ablation"):
        ablate(untrained, "no_brain")
    with pytest.raises(ValueError, match="unknown config keys"):
        taxis_cell({"ablaton": "intact"}, 1000, tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        taxis_cell({"brain": "missing.pt"}, 1000, tmp_path)
    with pytest.raises(ValueError, match="body"):
        taxis_cell({"body": "robot"}, 1000, tmp_path)


def test_twin_cell_returns_metrics_and_is_deterministic(tmp_path):
    cfg = {"name": "tiny", "brain": str(SHIPPED_CHECKPOINT), "n_starts": 3, "time_limit_s": 0.3}
    m = taxis_cell(cfg, 1000, tmp_path)
    assert set(m) >= {"success_rate", "time_to_source_s", "final_distance_mm", "n_starts"}
    assert m["n_starts"] == 3 and 0.0 <= m["success_rate"] <= 1.0
    assert m["n_success"] == round(3 * m["success_rate"])
    assert math.isnan(m["time_to_source_s"]) == (m["n_success"] == 0)
    assert m["final_distance_mm"] > 0
    saved = json.loads((tmp_path / "taxis_cell.json").read_text())
    assert saved["seed"] == 1000 and len(saved["evaluation"]["successes"]) == 3
    again = taxis_cell(cfg, 1000, tmp_path)
    other = taxis_cell(cfg, 1001, tmp_path)
    assert again["final_distance_mm"] == m["final_distance_mm"]
    assert other["final_distance_mm"] != m["final_distance_mm"]  # another start set


def test_untrained_no_lateral_horn_cell_fails_to_steer(tmp_path):
    """Without the lateral-horn comparator the flies end 1 s farther from the source."""
    base = {"brain": "untrained", "n_starts": 8, "time_limit_s": 1.0}
    intact = taxis_cell({**base, "ablation": "intact"}, 1000, tmp_path)
    no_lh = taxis_cell({**base, "ablation": "no_lateral_horn"}, 1000, tmp_path)
    assert no_lh["final_distance_mm"] > intact["final_distance_mm"]


def test_mujoco_cell_runs_one_short_episode(tmp_path):
    m = taxis_cell({"body": "mujoco", "n_starts": 1, "time_limit_s": 0.05}, 1000, tmp_path)
    assert m["n_starts"] == 1 and m["success_rate"] == 0.0 and math.isnan(m["time_to_source_s"])
    assert m["final_distance_mm"] > 2.0


def test_compare_rows_pairs_the_same_start_sets(tmp_path):
    rows = {"a": {"brain": "shipped"}, "b": {"brain": "untrained", "ablation": "no_contrast"}}
    metrics = {}
    for row, cfg in rows.items():
        for seed in (1000, 1001):
            rd = tmp_path / "cells" / row / f"seed_{seed}"
            rd.mkdir(parents=True)
            cfg_ = {**cfg, "n_starts": 4, "time_limit_s": 0.5}
            metrics[row, seed] = taxis_cell(cfg_, seed, rd)
    out = compare_rows(tmp_path, "a", "b", "final_distance_mm")
    assert out["seeds"] == [1000, 1001]
    want = [
        metrics["a", s]["final_distance_mm"] - metrics["b", s]["final_distance_mm"]
        for s in (1000, 1001)
    ]
    assert out["differences"] == pytest.approx(want)
    assert out["ci95"][0] <= out["mean"] <= out["ci95"][1]
    with pytest.raises(ValueError, match="no finished taxis cells"):
        compare_rows(tmp_path, "a", "missing")
