# moved from tests/test_firing_statistics_agent.py
"""agents/firing_statistics.py: outputs, exact resume, config errors; trainer in teacher mode."""

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
from agent_scripts import load_agent

from flyenv.brains.ei_assembly.network import EIAssemblyConfig
from flyenv.training.checkpoint import load_checkpoint
from flyenv.training.firing_statistics_trainer import FiringStatisticsTrainer, TrainConfig

ROOT = Path(__file__).resolve().parents[2]
TINY_TOML = """
[simulation]
epochs = 4
accumulation_interval = 1
checkpoint_interval = 2
batch_size = 2
epoch_ms = 60.0
chunk_ms = 30.0
warmup_ms = 20.0
seed = 3

[targets]
firing_rates = [0.5, 2.0]
cvs = 1.0
alpha = 1.0
threshold_ratio = 0.8

[hyperparameters]
learning_rate = 0.05
loss_weight.firing_rate = 1.0
loss_weight.cv = 0.5
loss_weight.silent_penalty = 1.0
loss_weight.membrane_variance = 10.0

[network]
n_neurons = 50
n_assemblies = 2
n_inputs = 20
weight_mode = "both"
"""


def _agent():
    return load_agent("firing_statistics")


@pytest.fixture(scope="module")
def agent():
    return _agent()


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _run(agent, cfg: Path, out: Path, *extra: str):
    return agent.main(
        ["--scenario", str(cfg), "--output-dir", str(out), "--no-tensorboard", "--eval-ms", "0"]
        + list(extra)
    )


def test_outputs_checkpoints_and_plots(agent, tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text(TINY_TOML.replace("epochs = 4", "epochs = 2"))
    out = tmp_path / "run"
    res = agent.main(["--scenario", str(cfg), "--output-dir", str(out), "--eval-ms", "60"])
    saved = json.loads((out / "results.json").read_text())
    for key in ("initial_evaluation", "final_evaluation"):
        assert saved[key]["duration_ms"] == 60.0 and "rate_E_hz" in saved[key]
        assert res[key]["cv_mean"] == saved[key]["cv_mean"] or math.isnan(saved[key]["cv_mean"])
    assert (out / "parameters.toml").read_text() == cfg.read_text()
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["n_neurons"] == 50 and meta["start_epoch"] == 0
    ck = load_checkpoint(out / "checkpoints/checkpoint_latest.pt")
    assert ck["epoch"] == 2 and len(ck["losses"]) == 2
    for key in ("model", "optimizer", "rng", "neuron_state", "best_loss"):
        assert key in ck
    assert set(ck["rng"]) >= {"torch", "numpy"} and ck["neuron_state"]["q"].shape[0] == 6
    assert (out / "checkpoints/checkpoint_best.pt").exists()
    figs = sorted(p.name for p in (out / "figures/epoch_0002").glob("*.png"))
    assert figs == sorted(
        [
            "assembly_graph.png",
            "connectivity_matrix.png",
            "input_analysis.png",
            "output_raster.png",
            "firing_rate_distribution.png",
            "membrane_voltages.png",
            "fano_factor.png",
            "cv_isi_histograms.png",
        ]
    )
    assert any((out / "tb").iterdir())
    hist = json.loads((out / "history.json").read_text())
    assert {"rate_E_hz", "cv_mean", "silent_fraction", "pathway_scales"} <= set(hist[-1])


def test_killed_and_resumed_run_ends_with_identical_weights(agent, tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text(TINY_TOML)
    _run(agent, cfg, tmp_path / "full", "--no-plots")
    _run(agent, cfg, tmp_path / "cut", "--no-plots", "--stop-after-epoch", "2")
    ck = tmp_path / "cut/checkpoints/checkpoint_latest.pt"
    assert load_checkpoint(ck)["epoch"] == 2
    _run(agent, cfg, tmp_path / "cut", "--no-plots", "--resume-from", str(ck))
    a = load_checkpoint(tmp_path / "full/checkpoints/checkpoint_latest.pt")
    b = load_checkpoint(tmp_path / "cut/checkpoints/checkpoint_latest.pt")
    assert a["epoch"] == b["epoch"] == 4
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert torch.equal(a["neuron_state"]["v"], b["neuron_state"]["v"])
    assert [r["loss"] for r in a["losses"]] == [r["loss"] for r in b["losses"]]
    # and the weights did change during training
    assert not torch.equal(a["model"]["log_pathway_scale"], torch.zeros(6))


def test_config_errors_name_the_problem(agent, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY_TOML.replace("cvs = 1.0", "cvs = 1.0\nfoo = 2"))
    with pytest.raises(ValueError, match="unknown key.*foo"):
        agent.load_config(bad)
    bad.write_text(
        TINY_TOML.replace("checkpoint_interval = 2", "checkpoint_interval = 3").replace(
            "accumulation_interval = 1", "accumulation_interval = 2"
        )
    )
    with pytest.raises(ValueError, match="multiple of accumulation_interval"):
        agent.load_config(bad)
    bad.write_text(TINY_TOML.replace('weight_mode = "both"', 'weight_mode = "all"'))
    with pytest.raises(ValueError, match="weight_mode"):
        agent.load_config(bad)
    with pytest.raises(FileNotFoundError, match="scenarios"):
        agent.load_config(tmp_path / "missing.toml")
    cfg = agent.load_config(ROOT / "scenarios/firing_statistics.toml")
    assert cfg.network.n_neurons == 500 and cfg.weights.membrane_variance == 10.0


def test_teacher_mode_trains_pathway_scales_towards_the_teacher():
    cfg = TrainConfig(
        epochs=3,
        accumulation_interval=1,
        checkpoint_interval=1,
        batch_size=2,
        epoch_ms=100.0,
        chunk_ms=50.0,
        warmup_ms=20.0,
        mode="teacher",
        learning_rate=0.1,
        network=EIAssemblyConfig(
            n_neurons=60,
            n_assemblies=3,
            n_inputs=30,
            weight_mode="pathway",
            init_pathway_scales=(1.0, 1.0, 1.6, 1.0, 1.0, 1.0),
        ),
        teacher_scales=(1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    )
    tr = FiringStatisticsTrainer(cfg)
    err0 = tr.scale_errors()
    for _ in range(3):
        rec = tr.run_epoch()
    assert set(rec.terms) == {"van_rossum", "firing_rate"}
    assert rec.teacher_spikes is not None
    err = tr.scale_errors()
    assert err[2] < err0[2]  # too much I->E in the student: scaled back towards 1


@pytest.mark.slow
def test_sigkilled_process_resumes_to_identical_weights(agent, tmp_path):
    """A real kill (SIGKILL mid-run, after the first checkpoint), then --resume-from."""
    import signal
    import subprocess
    import sys
    import time

    cfg = tmp_path / "p.toml"
    cfg.write_text(
        TINY_TOML.replace("epochs = 4", "epochs = 12").replace(
            "epoch_ms = 60.0", "epoch_ms = 120.0"
        )
    )
    _run(agent, cfg, tmp_path / "full", "--no-plots")
    cmd = [sys.executable, str(ROOT / "agents/firing_statistics.py"), "--scenario", str(cfg)]
    cmd += [
        "--output-dir",
        str(tmp_path / "cut"),
        "--no-plots",
        "--no-tensorboard",
        "--eval-ms",
        "0",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ck = tmp_path / "cut/checkpoints/checkpoint_latest.pt"
    deadline = time.time() + 300
    while not ck.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ck.exists()
    _run(agent, cfg, tmp_path / "cut", "--no-plots", "--resume-from", str(ck))
    a = load_checkpoint(tmp_path / "full/checkpoints/checkpoint_latest.pt")
    b = load_checkpoint(ck)
    assert a["epoch"] == b["epoch"] == 12
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k


def test_wandb_is_optional_and_missing_wandb_is_a_clear_error(agent, tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text(TINY_TOML.replace("epochs = 4", "epochs = 1"))
    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here; the missing-package path cannot be exercised")
    with pytest.raises(SystemExit, match="wandb is not installed"):
        _run(agent, cfg, tmp_path / "run", "--no-plots", "--wandb")
    _run(agent, cfg, tmp_path / "run2", "--no-plots")  # without --wandb: never imported
    import sys

    assert "wandb" not in sys.modules
