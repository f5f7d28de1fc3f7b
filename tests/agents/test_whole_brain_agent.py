# moved from tests/test_whole_brain_agent.py
"""agents/whole_brain_fitting.py: a 1-epoch ``--mode all`` run writes every output; resume."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from agent_scripts import load_agent

from flyenv.connectome.synthetic_whole_brain import SCALES, generate


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a busy 2-core machine more threads are many times slower."""
    torch.set_num_threads(1)


TINY = replace(SCALES["tiny"], n_neurons=120, n_neuropils=5, n_frames=40, frame_ms=10.0)
FAST = ["--batch_size", "8", "--n_hidden", "16", "--warmup_frames", "3", "--no-progress"]


def _agent():
    return load_agent("whole_brain_fitting")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(generate(tmp_path_factory.mktemp("wb_agent"), TINY, progress=False))


def test_mode_all_one_epoch_writes_every_output(data_dir, tmp_path):
    agent = _agent()
    run = tmp_path / "run"
    argv = ["--mode", "all", "--epoch_round1", "1", "--epoch_round2", "1", "--data-dir", data_dir,
            "--neural_activity_id", "synthetic", "--filepath", str(run), *FAST]  # fmt: skip
    stats = agent.main(argv)
    for name in [
        "first-round-checkpoint.pt", "second-round-rnn-checkpoint-v1.pt",
        "simulated_neuropil_fr.npy", "first-round-losses.txt", "evaluation_stats.txt",
        "evaluation_stats.json", "neuropil_fr_predictions.npy", "second-round-losses.txt",
    ]:  # fmt: skip
        assert (run / name).is_file(), name
    assert list((run / "images").glob("neuropil_fr-at-epoch-0.png"))
    plots = {p.name for p in (run / "evaluation_plots").glob("*.png")}
    assert plots == {
        "heatmap_comparison.png", "time_series_comparison.png", "correlation_scatter.png",
        "barplot_comparison_t25.png", "barplot_comparison_t50.png", "barplot_comparison_t75.png",
        "error_analysis.png",
    }  # fmt: skip
    sim = np.load(run / "simulated_neuropil_fr.npy")
    assert sim.shape == (TINY.n_frames - 1, TINY.n_neuropils)
    pred = np.load(run / "neuropil_fr_predictions.npy")
    n_train = int(round(0.6 * TINY.n_frames))
    assert pred.shape == (TINY.n_frames - n_train - 3, TINY.n_neuropils)  # after the warm-up
    assert set(stats["closed_loop"]) == {
        "model (spiking + GRU)", "spiking net alone", "untrained spiking net", "persistence",
        "linear AR", f"ridge AR({stats['ridge_ar']['order']})", "training mean",
    }  # fmt: skip
    assert stats["main_predictor"] == "model (spiking + GRU)"
    assert "teacher_recovery_closed_loop" in stats
    text = (run / "evaluation_stats.txt").read_text()
    assert "bin acc" in text and "MSE loss" in text and "correlation" in text
    json.loads((run / "evaluation_stats.json").read_text())


def test_stateful_student_controls_score_recovery_and_adopt_the_teacher_class(data_dir, tmp_path):
    """--epoch_round2 0 scores the stateful spiking net alone; --connectome shuffled /
    lowrank_only build the student on the control wiring; recovery r of the teacher's
    drive weights, bias and low-rank term is reported (an untrained student's too); the
    student adopts the synthetic teacher's dt and mV per synapse and records frames whole."""
    agent = _agent()
    n_edges = {}
    for kind in ("true", "shuffled", "lowrank_only"):
        run = tmp_path / kind
        argv = ["--mode", "all", "--epoch_round1", "1", "--epoch_round2", "0",
                "--connectome", kind, "--data-dir", data_dir, "--neural_activity_id",
                "synthetic", "--filepath", str(run), "--chunk_frames", "5",
                "--burn_in_frames", "2", *FAST]  # fmt: skip
        stats = agent.main(argv)
        assert stats["main_predictor"] == "spiking net alone" and stats["stateful"]
        assert stats["connectome"] == kind
        assert set(stats["recovery"]) == {"drive_weights_r", "drive_bias_r", "lowrank_r"}
        assert all(-1 <= v <= 1 for v in stats["recovery"].values())
        assert not (run / "second-round-rnn-checkpoint-v1.pt").exists()
        settings = json.loads(
            (run / "first-round-losses.txt").read_text().splitlines()[0][len("# settings = ") :]
        )
        assert settings["dt"] == TINY.dt_ms and settings["scale_factor"] == TINY.scale_factor_mv
        assert settings["sim_before_train"] == 0.0 and settings["connectome"] == kind
        state = torch.load(run / "first-round-checkpoint.pt", weights_only=False)["model"]
        n_edges[kind] = int(state["conn.count"].numel())
    assert n_edges["lowrank_only"] == 0
    # duplicates merged: this 120-neuron brain is dense (~10 %), so a few % merge
    assert 0.85 * n_edges["true"] <= n_edges["shuffled"] <= n_edges["true"]


def test_home_tied_student_without_lowrank_term_trains_and_reloads(data_dir, tmp_path):
    """--encoder home_tied --n_rank 0: the student learns only P x P shared input weights
    and P biases; the settings line keeps them, so --filepath reloads the same model."""
    agent = _agent()
    run = tmp_path / "tied"
    argv = ["--mode", "all", "--epoch_round1", "1", "--epoch_round2", "0",
            "--encoder", "home_tied", "--n_rank", "0", "--data-dir", data_dir,
            "--neural_activity_id", "synthetic", "--filepath", str(run), "--chunk_frames", "5",
            "--burn_in_frames", "2", *FAST]  # fmt: skip
    stats = agent.main(argv)
    state = torch.load(run / "first-round-checkpoint.pt", weights_only=False)["model"]
    p = TINY.n_neuropils
    assert state["encoder.coupling"].shape[1] == p and state["encoder.bias_home"].numel() <= p
    assert not any(k.startswith("conn.lora") for k in state)
    assert set(stats["recovery"]) == {"drive_weights_r", "drive_bias_r"}  # no low-rank term
    settings = json.loads(
        (run / "first-round-losses.txt").read_text().splitlines()[0][len("# settings = ") :]
    )
    assert settings["encoder"] == "home_tied" and settings["n_rank"] == 0
    again = agent.main(["--mode", "evaluate", "--epoch_round2", "0", "--filepath", str(run),
                        "--data-dir", data_dir,
                        "--neural_activity_id", "synthetic", *FAST])  # fmt: skip
    assert again["recovery"] == stats["recovery"]
    assert stats["encoder"] == "home_tied" and stats["recording"] == "observed"


def test_clean_recording_fits_the_teachers_own_rates(data_dir, tmp_path):
    """--recording clean (synthetic brains): the net is fitted and scored on the teacher's
    clean rates, so persistence scores against the clean frames."""
    agent = _agent()
    run = tmp_path / "clean"
    argv = ["--mode", "all", "--epoch_round1", "1", "--epoch_round2", "0",
            "--recording", "clean", "--data-dir", data_dir, "--neural_activity_id",
            "synthetic", "--filepath", str(run), "--chunk_frames", "5",
            "--burn_in_frames", "2", *FAST]  # fmt: skip
    stats = agent.main(argv)
    assert stats["recording"] == "clean"
    clean = np.load(f"{data_dir}/teacher_synthetic.npz")["rates"]
    n_train = int(round(0.6 * TINY.n_frames))
    start = n_train + 3  # closed-loop window after the 3-frame warm-up
    persistence = np.repeat(np.clip(clean[start - 1 : start], 0, 100), TINY.n_frames - start, 0)
    expected = float(np.mean((persistence - np.clip(clean[start:], 0, 100)) ** 2))
    assert stats["closed_loop"]["persistence"]["mse"] == pytest.approx(expected, rel=1e-4)


def test_stage2_controls_reuse_stage1_and_write_their_own_files(data_dir, tmp_path):
    agent = _agent()
    run = tmp_path / "run"
    base = ["--data-dir", data_dir, "--neural_activity_id", "synthetic", "--filepath", str(run),
            "--epoch_round1", "1", "--epoch_round2", "1", *FAST]  # fmt: skip
    agent.main(["--mode", "all", *base])
    stage1 = (run / "first-round-checkpoint.pt").read_bytes()
    sim = np.load(run / "simulated_neuropil_fr.npy")
    for kind in ("zeros", "shuffled"):
        agent.main(["--mode", "train2", "--stage2_input", kind, *base])
        stats = agent.main(["--mode", "evaluate", "--stage2_input", kind, *base])
        name = f"GRU, {kind} input"
        assert stats["main_predictor"] == name and name in stats["closed_loop"]
        assert (run / f"second-round-rnn-checkpoint-v1-{kind}-input.pt").is_file()
        assert (run / f"evaluation_stats-{kind}-input.json").is_file()
    assert (run / "first-round-checkpoint.pt").read_bytes() == stage1  # stage 1 untouched
    from flyenv.training.whole_brain_fitting import control_input

    shuffled = control_input(sim, "shuffled", 0)
    np.testing.assert_array_equal(np.sort(shuffled, 0), np.sort(sim, 0))  # same values
    assert not np.array_equal(shuffled, sim)
    assert not control_input(sim, "zeros", 0).any()
    assert control_input(sim, "spiking", 0) is None


def test_stage2_finetuning_through_the_spiking_net_and_its_linear_control(data_dir, tmp_path):
    """--finetune_round2 N adds N stage-2 epochs whose rollouts run through the stateful
    spiking net (or, the control, through the linear surrogate); each arm writes its own
    decoder and evaluation files, and the two arms' decoders differ."""
    agent = _agent()
    run = tmp_path / "run"
    base = ["--data-dir", data_dir, "--neural_activity_id", "synthetic", "--filepath", str(run),
            "--epoch_round1", "1", "--epoch_round2", "1", "--rollout_frames", "4",
            "--seq_len", "6", "--chunk_frames", "5", "--burn_in_frames", "2", *FAST]  # fmt: skip
    agent.main(["--mode", "all", *base])
    decoders = {}
    for net in ("spiking", "linear"):
        arm = ["--finetune_round2", "2", "--finetune_rollout", net]
        agent.main(["--mode", "train2", *base, *arm])
        stats = agent.main(["--mode", "evaluate", *base, *arm])
        assert stats["main_predictor"] == "model (spiking + GRU)"
        assert (run / f"evaluation_stats-ft2-{net}.json").is_file()
        losses = (run / f"second-round-losses-ft2-{net}.txt").read_text().splitlines()
        assert len(losses) == 3  # 1 epoch + 2 fine-tuning epochs
        ckpt = torch.load(run / f"second-round-rnn-checkpoint-v1-ft2-{net}.pt", weights_only=False)
        assert ckpt["epoch"] >= 1  # chosen among the fine-tuning epochs
        decoders[net] = ckpt["decoder"]
    plain = torch.load(run / "second-round-rnn-checkpoint-v1.pt", weights_only=False)["decoder"]
    for k in plain:  # the first epoch is shared, the fine-tuning differs
        assert not torch.equal(decoders["spiking"][k], decoders["linear"][k]) or "norm" in k
    with pytest.raises(ValueError, match="stateful"):
        agent.main(["--mode", "train2", *base, "--no-stateful", "--filepath", str(tmp_path / "b"),
                    "--finetune_round2", "1", "--finetune_rollout", "spiking"])  # fmt: skip


def test_filepath_reloads_settings_and_resumes_at_the_next_epoch(data_dir, tmp_path):
    agent = _agent()
    run = tmp_path / "run"
    base = [
        "--data-dir",
        data_dir,
        "--neural_activity_id",
        "synthetic",
        "--filepath",
        str(run),
        *FAST,
    ]
    agent.main(["--mode", "train1", "--epoch_round1", "1", "--n_rank", "4", *base])
    # a second call without --n_rank: the run's saved settings (n_rank 4) come back
    agent.main(["--mode", "train1", "--epoch_round1", "2", *base])
    lines = (run / "first-round-losses.txt").read_text().splitlines()
    assert lines[0].startswith("# settings = ")
    assert json.loads(lines[0][len("# settings = ") :])["n_rank"] == 4
    epochs = [ln.split(",")[0] for ln in lines[1:]]
    assert epochs == ["epoch = 0", "epoch = 1"]  # epoch 0 not repeated


@pytest.mark.slow
def test_fitting_beats_the_untrained_net_on_the_tiny_brain(data_dir, tmp_path):
    """A few epochs of stage 1 already predict the next frame (and the teacher's clean
    rates) better than the untrained net."""
    agent = _agent()
    run = tmp_path / "run"
    stats = agent.main(
        ["--mode", "all", "--epoch_round1", "8", "--epoch_round2", "20", "--data-dir", data_dir,
         "--neural_activity_id", "synthetic", "--filepath", str(run), *FAST]
    )  # fmt: skip
    one = stats["teacher_forced_one_step"]
    assert one["spiking net alone"]["mse"] < one["untrained spiking net"]["mse"]
    rec = stats["teacher_recovery_one_step"]
    assert rec["spiking net alone"]["pearson"] > rec["untrained spiking net"]["pearson"]


def test_init_teacher_starts_the_student_at_the_teachers_parameters(data_dir, tmp_path):
    """--init teacher (synthetic brains): before training the student's drive weights, bias
    and low-rank term are the teacher's (recovery r = 1); a tied encoder cannot hold them."""
    agent = _agent()
    run = tmp_path / "teacher_init"
    argv = ["--mode", "all", "--epoch_round1", "1", "--epoch_round2", "0", "--init", "teacher",
            "--recording", "clean", "--data-dir", data_dir, "--neural_activity_id", "synthetic",
            "--filepath", str(run), "--chunk_frames", "5", "--burn_in_frames", "2", *FAST]  # fmt: skip
    stats = agent.main(argv)
    assert stats["init"] == "teacher"
    for key, r in stats["recovery_untrained"].items():
        assert r == pytest.approx(1.0, abs=1e-6), key
    bad = ["--mode", "train1", "--epoch_round1", "1", "--init", "teacher", "--encoder",
           "home_tied", "--data-dir", data_dir, "--neural_activity_id", "synthetic",
           "--filepath", str(tmp_path / "bad"), *FAST]  # fmt: skip
    with pytest.raises(ValueError, match="free encoder"):
        agent.main(bad)
