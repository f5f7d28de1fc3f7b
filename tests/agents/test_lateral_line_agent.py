# moved from tests/test_lateral_line_agent.py
"""The STDP agent: a 5-trial ll_fast run writes every output of the original's run layout
(docs/research_systems.md, lateral line)."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from agent_scripts import load_agent

ROOT = Path(__file__).resolve().parents[2]
agent = load_agent("lateral_line_stdp")

FIG_KINDS = [
    "spatial_two_stage",
    "test_phase_only",
    "learning_curves",
    "llmon_weights",
    "ts_tuning",
    "mon_ts_weight_profile",
    "mon_to_ts_receptive_fields",
    "ts_spikes_vs_x_test",
    "mon_spikes_vs_x_test",
    "mon_tuning_examples",
    "mon_ts_drive_heatmap",
    "mon_ts_drive_winner",
    "ts_pop_rate_train_test_transition",
]


def test_five_trial_ll_fast_run_writes_every_output(tmp_path):
    out = agent.main(
        [
            "--mode", "ll_fast",
            "--n-training-trials", "5",
            "--run-name", "smoke/test",
            "--runs-dir", str(tmp_path / "Runs"),
            "--save-weights-dir", str(tmp_path / "Saved"),
            "--no-progress",
        ]
    )  # fmt: skip
    run = tmp_path / "Runs" / "smoke_test"  # '/' sanitised as the original
    assert out["run_dir"] == run
    params = json.loads((run / "params.json").read_text())
    assert set(params) == {"mode", "seed_start", "multi_seed", "run_folder", "network_params"}
    assert params["mode"] == "ll_fast" and params["network_params"]["n_training_trials"] == 5
    assert params["network_params"]["n_mon"] == 800
    summary = json.loads((run / "run_summary.json").read_text())
    assert set(summary) == {
        "ll_mon_topo", "mon_ts_topo", "mon_ts_sigma", "mon_ts_gain_mV",
        "seed", "ts_spikes_during_test_window", "pv_map_quality",
        "n_test_sweeps", "mon_ts_topography",
    }  # fmt: skip
    assert set(summary["pv_map_quality"]) == {
        "sigma_theta_rad",
        "delta_trial_rad",
        "valid_fraction",
    }
    assert summary["seed"] == 123
    suffix = "u_5.0_nMON_800_nTS_80"
    for kind in FIG_KINDS:
        f = run / "figures" / f"brian2_{kind}_{suffix}.png"
        assert f.exists() and f.stat().st_size > 1000, f
    topo_fig = run / "figures" / f"mon_ts_topography_{suffix}.png"  # ours, not the seed's
    assert topo_fig.exists() and topo_fig.stat().st_size > 1000
    npz = np.load(run / "artifacts" / "latest_seed_123.npz")
    assert set(npz.files) == {
        "mon_ts_w",
        "mon_ts_i",
        "mon_ts_j",
        "ll_mon_i",
        "ll_mon_j",
        "ll_mon_w_mV",
    }
    assert npz["mon_ts_w"].shape == npz["mon_ts_i"].shape == (800 * 16,)
    side = json.loads((run / "artifacts" / "latest_seed_123_params.json").read_text())
    assert side["mode"] == "ll_fast"  # the real mode, not a constant
    assert side["n_mon"] == 800 and side["mon_ts_wmax"] == pytest.approx(0.045)
    assert (tmp_path / "Saved" / "latest_seed_123.npz").exists()
    assert not list(run.rglob("_tmp_*"))  # atomic writes leave no temporaries
    # The MON->TS topography index, before and after training, from the run's weights.
    from flyenv.metrics.topography import topography_index

    topo = summary["mon_ts_topography"]
    assert set(topo) == {"before_training", "after_training"}
    dense = np.zeros((800, 80))
    np.add.at(dense, (npz["mon_ts_i"], npz["mon_ts_j"]), npz["mon_ts_w"])
    assert topo["after_training"]["index"] == pytest.approx(topography_index(dense)["index"])
    assert -1.0 <= topo["before_training"]["index"] <= 1.0
    assert len(topo["after_training"]["profile_relative_weight"]) == 10
    assert summary["n_test_sweeps"] == 10  # delta_trial is across 10 test sweeps


def test_cli_overrides_control_and_bad_input():
    p = agent.params_from_args(
        agent.parse_args(["--mode", "ll_thesis", "--mon-ts-gain-mv", "90", "--use-ts-feedback-inh",
                       "--no-training-ordered-sweeps", "--distance-cm", "1.1", "--seed-start", "7"])
    )  # fmt: skip
    assert p.mon_ts_gain_mV == 90.0 and p.use_ts_feedback_inh and not p.training_ordered_sweeps
    assert p.distance_cm == 1.1 and p.seed == 7 and p.n_mon == 3200
    c = agent.params_from_args(agent.parse_args(["--disable-all-stdp"]))
    assert c.mon_ts_apre == c.mon_ts_apost == c.ll_mon_apre == c.ll_mon_apost == 0.0
    assert c.mon_ts_homeo_eta == p.mon_ts_homeo_eta  # homeostasis-only control
    n = agent.params_from_args(agent.parse_args(["--disable-all-plasticity"]))
    assert n.mon_ts_apre == n.mon_ts_apost == n.mon_ts_homeo_eta == n.ll_mon_homeo_eta == 0.0
    f = agent.params_from_args(agent.parse_args(["--mon-ts-homeo-fixed-target"]))
    assert f.mon_ts_homeo_fixed_target
    m = agent.params_from_args(
        agent.parse_args(["--ts-lateral-exc-peak-mv", "3", "--ts-lateral-exc-sigma", "5",
                       "--mon-ts-stdp-tau-ms", "40", "--mon-ts-homeo-max-step", "0.2"])
    )  # fmt: skip
    assert (m.ts_lateral_exc_peak_mV, m.ts_lateral_exc_sigma) == (3.0, 5.0)
    assert (m.mon_ts_stdp_tau_ms, m.mon_ts_homeo_max_step) == (40.0, 0.2)
    with pytest.raises(ValueError, match="> 0"):
        agent.params_from_args(agent.parse_args(["--mon-ts-stdp-tau-ms", "0"]))
    for bad in (
        ["--mode", "ll_slow"],
        ["--distance-cm", "0"],
        ["--eval-x-min", "1"],
        ["--multi-seed", "0"],
    ):
        with pytest.raises(ValueError):
            agent.params_from_args(agent.parse_args(bad))
    with pytest.raises(SystemExit):
        agent.main(["--mode", "nope"])


def test_killed_run_resumes_exactly(tmp_path, monkeypatch):
    from flyenv.brains.lateral_line.params import NetworkParams, apply_model_mode
    from flyenv.training import lateral_line_stdp as stdp

    p = replace(
        apply_model_mode(NetworkParams(), "ll_fast"),
        n_mon=200, n_ts=30, n_training_trials=4, trial_duration_s=0.3,
        checkpoint_trials=1, checkpoint_save_every_n_checkpoints=1, mon_ts_gain_mV=120.0,
    )  # fmt: skip
    saved = {}
    real = stdp.atomic_savez

    def keep_copies(path, **arrays):
        real(path, **arrays)
        saved[int(arrays["trial_idx"])] = {k: np.array(v, copy=True) for k, v in arrays.items()}

    monkeypatch.setattr(stdp, "atomic_savez", keep_copies)
    full = agent.run_seed(p, checkpoint_path=tmp_path / "mid_checkpoint.npz", progress=False)
    resumed = agent.run_seed(p, resume=saved[1], progress=False)  # "killed" after trial 2
    np.testing.assert_array_equal(full["w_after"], resumed["w_after"])
    np.testing.assert_array_equal(full["test_rec"].ts_i, resumed["test_rec"].ts_i)
    np.testing.assert_array_equal(full["w_mean_series"], resumed["w_mean_series"])


def test_scenario_files_parse_into_args(tmp_path):
    from flyenv.config import load_scenario

    for name in ("lateral_line_thesis.toml", "lateral_line_learned.toml", "lateral_line_fast.toml"):
        args = agent.parse_args(["--scenario", str(ROOT / "scenarios" / name)])
        agent.params_from_args(args)
    thesis = agent.parse_args(["--scenario", str(ROOT / "scenarios" / "lateral_line_thesis.toml")])
    assert thesis.multi_seed == 3 and thesis.with_control and thesis.mode == "ll_thesis"
    fast = agent.parse_args(["--scenario", str(ROOT / "scenarios" / "lateral_line_fast.toml")])
    assert fast.network.n_training_trials == 5 and fast.network.n_mon == 800  # over the preset
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nmode = 1")
    with pytest.raises(ValueError, match="malformed"):
        load_scenario(bad, agent.Args)
    with pytest.raises(ValueError, match="not found"):
        load_scenario(tmp_path / "missing.toml", agent.Args)


def test_with_control_runs_both_controls_from_the_same_initial_weights(tmp_path):
    out = agent.main(
        [
            "--mode", "ll_fast", "--n-training-trials", "2", "--trial-duration-s", "0.2",
            "--n-mon", "160", "--n-ts", "20", "--mon-ts-homeo-every-trials", "1",
            "--mon-ts-homeo-eta", "0.5", "--with-control", "--runs-dir", str(tmp_path),
            "--run-name", "c", "--save-weights-dir", "", "--no-progress",
        ]
    )  # fmt: skip
    ctrl = out["controls"]
    assert set(ctrl) == {"control", "control_homeo"}
    learned = out["results"][0]
    for runs in ctrl.values():
        np.testing.assert_array_equal(runs[0]["w_before"], learned["w_before"])
    # no plasticity: weights never move; homeostasis only: they do, STDP off
    np.testing.assert_array_equal(ctrl["control"][0]["w_after"], learned["w_before"])
    assert not np.array_equal(ctrl["control_homeo"][0]["w_after"], learned["w_before"])
    summary = json.loads((tmp_path / "c" / "control_summary.json").read_text())
    assert {"learned", "control", "control_homeo", "control_definitions"} <= set(summary)
    assert (tmp_path / "c" / "figures" / "learned_vs_control_n1.png").exists()
