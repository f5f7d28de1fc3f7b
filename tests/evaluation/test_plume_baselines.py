"""The scripted PlumeTracking baselines cell (flyenv.evaluation.plume_baselines)."""

from __future__ import annotations

import numpy as np
import pytest

from flyenv.evaluation.plume_baselines import RandomPolicy, make_scripted, scripted_cell
from flyenv.rl.sb3_training import TEST_SEED


def test_scripted_rows_on_the_rl_test_starts(tmp_path):
    rows = {a: scripted_cell({"agent": a, "twin_starts": 20}, 0, tmp_path)["twin_50"]
            for a in ("cast_and_surge", "upwind_only", "random")}  # fmt: skip
    for row in rows.values():
        assert row["seed"] == TEST_SEED and row["starts"] == 20  # the RL agents' test stream
    # cast and surge finds the source from most starts; random actions almost never do
    assert rows["cast_and_surge"]["success_rate"] >= 0.7
    assert rows["random"]["success_rate"] <= rows["cast_and_surge"]["success_rate"] - 0.4
    # start sets of different seeds are different starts
    other = scripted_cell({"agent": "random", "twin_starts": 20}, 1, tmp_path)["twin_50"]
    assert other["seed"] == TEST_SEED + 1


def test_upwind_only_never_casts_and_random_is_seeded():
    upwind = make_scripted("upwind_only", {"cast_sweep_s": 0.2}, 0, 0.01)
    assert upwind.config.cast_angle_deg == 0.0 and upwind.config.cast_sweep_s == 0.2
    obs = np.zeros((3, 9), np.float32)
    np.testing.assert_array_equal(RandomPolicy(5)(obs), RandomPolicy(5)(obs))
    assert RandomPolicy(5)(obs[0]).shape == (2,)


def test_scripted_cell_rejects_bad_config(tmp_path):
    with pytest.raises(ValueError, match="unknown scripted_cell keys"):
        scripted_cell({"agnet": "random"}, 0, tmp_path)
    with pytest.raises(ValueError, match="intensity observation"):
        scripted_cell({"env_kwargs": {"observation": "orn"}}, 0, tmp_path)
    with pytest.raises(ValueError, match="agent="):
        scripted_cell({"agent": "braitenberg"}, 0, tmp_path)


def test_brain_cell_innate_wind_pathway_and_its_ablation(tmp_path):
    from flyenv.evaluation.plume_baselines import brain_cell

    wind = {"wind_obs_columns": [110, 111], "wind_dn_init_mv_per_ms": 1.0}
    config = {"brain_config": wind, "twin_starts": 20}
    intact = brain_cell(config, 0, tmp_path)["twin_50"]
    cut = brain_cell({**config, "ablation": "no_wind"}, 0, tmp_path)["twin_50"]
    assert intact["seed"] == cut["seed"] == TEST_SEED  # the RL agents' test starts
    # a strong innate upwind comparator finds the source from most default starts; the
    # same brain without its wind input does much worse
    assert intact["success_rate"] >= 0.7 and cut["success_rate"] <= intact["success_rate"] - 0.3
    with pytest.raises(ValueError, match="unknown brain_cell keys"):
        brain_cell({"brain": "x"}, 0, tmp_path)


def test_brain_cell_runs_the_brain_on_the_mujoco_body(tmp_path):
    from flyenv.evaluation.plume_baselines import brain_cell

    gated = {"wind_obs_columns": [110, 111], "wind_odor_gate": True}
    config = {"brain_config": gated, "twin_starts": 2, "mujoco_starts": 1, "time_limit_s": 0.05}
    out = brain_cell(config, 2, tmp_path)
    assert out["mujoco"]["seed"] == 10_200 and out["mujoco"]["starts"] == 1
    assert out["brain_config"]["wind_odor_gate"] is True


def test_claim_odor_gated_upwind_turning_finds_the_plume_from_wide_starts(tmp_path):
    """README claim, on a start set no report uses (7): from wide starts the untrained
    brain with odor-gated upwind turning finds the source far more often than the same
    brain ungated (which, like the upwind-only agent, just walks upwind), and about as
    often as cast and surge."""
    from flyenv.evaluation.plume_baselines import brain_cell

    wide = {"start_crosswind_mm": [-30.0, 30.0]}
    wind = {"wind_obs_columns": [110, 111], "wind_dn_init_mv_per_ms": 1.0}
    rate = lambda out: out["twin_50"]["success_rate"]  # noqa: E731
    gated = rate(
        brain_cell(
            {"brain_config": {**wind, "wind_odor_gate": True}, "env_kwargs": wide}, 7, tmp_path
        )
    )
    ungated = rate(brain_cell({"brain_config": wind, "env_kwargs": wide}, 7, tmp_path))
    upwind = rate(scripted_cell({"agent": "upwind_only", "env_kwargs": wide}, 7, tmp_path))
    cast = rate(scripted_cell({"agent": "cast_and_surge", "env_kwargs": wide}, 7, tmp_path))
    assert gated >= ungated + 0.15 and gated >= upwind + 0.15
    assert gated >= cast - 0.15
