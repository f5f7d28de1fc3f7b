"""Per-odor breakdown of conditioning sweeps (flyenv.evaluation.odor_breakdown)."""

import json

import numpy as np
import pytest

from flyenv.evaluation.kc_codes import class_share_per_odor, kc_classes, kc_codes
from flyenv.evaluation.odor_breakdown import (
    cs_plus_performance,
    reward_avoidance_edges_per_kc,
    sweep_breakdown,
)

SHORT_TRACE = {"eligibility_tau_ms": 20.0, "depression_rate_per_s": 1.0, "avoid_weight": 1.589}


def _cell(path, cs_plus, chose, brain_config=None):
    path.mkdir(parents=True)
    episodes = {"cs_plus_odor": cs_plus, "chose_cs_plus": chose}
    config = {"brain_config": brain_config or {"lateral_horn": False}}
    (path / "conditioning_cell.json").write_text(
        json.dumps({"episodes": episodes, "config": config})
    )
    return path / "conditioning_cell.json"


def test_cs_plus_performance_known_answer_over_cells(tmp_path):
    a = _cell(tmp_path / "a", ["x", "x", "y"], [True, None, False])
    b = _cell(tmp_path / "b", ["x", "y"], [True, False])
    out = cs_plus_performance([a, b])
    assert out == {"x": (pytest.approx(2 / 3), 3), "y": (pytest.approx(-1.0), 2)}
    (tmp_path / "old.json").write_text(json.dumps({"performance_index": 0.5}))
    with pytest.raises(ValueError, match="no per-episode records"):
        cs_plus_performance([tmp_path / "old.json"])


def test_sweep_breakdown_joins_episodes_with_the_rows_kc_codes(tmp_path):
    odors = ["ethyl acetate", "1-hexanol"]
    for seed in (0, 1):
        _cell(tmp_path / "cells" / "flywire" / f"seed_{seed}", odors, [True, False])
    rows = sweep_breakdown(tmp_path)
    assert [r["odor"] for r in rows] == sorted(odors)
    assert {r["episodes"] for r in rows} == {2}
    by_odor = {r["odor"]: r for r in rows}
    assert (
        by_odor["ethyl acetate"]["pi_cs_plus"] == 1.0 and by_odor["1-hexanol"]["pi_cs_plus"] == -1.0
    )
    # the documented FlyWire routing: ethyl acetate lies more in αβ KCs than 1-hexanol
    assert (
        by_odor["ethyl acetate"]["alpha_beta_share"]
        > by_odor["1-hexanol"]["alpha_beta_share"] + 0.2
    )


def test_class_shares_add_up_to_one_over_the_classes():
    codes = kc_codes(["ethyl acetate", "benzaldehyde"], 0.01, {"lateral_horn": False}, 200.0)
    total = sum(class_share_per_odor(codes, c) for c in set(kc_classes()))
    np.testing.assert_allclose(total, 1.0)
    with pytest.raises(ValueError, match="shape"):
        class_share_per_odor(np.zeros((1, 3)))


def test_reward_taught_avoidance_edges_come_mostly_from_alpha_beta_kcs():
    """The data fact the breakdown rests on (shipped FlyWire data, sugar, compartment valence)."""
    per_kc = reward_avoidance_edges_per_kc({"lateral_horn": False}, SHORT_TRACE)
    assert per_kc["αβ"] > 2 * per_kc["γ"] > 0
    assert per_kc["α'β'"] < per_kc["γ"]
