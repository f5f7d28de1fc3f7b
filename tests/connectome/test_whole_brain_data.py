# moved from tests/test_whole_brain_data.py
"""Whole-brain data layer: FlyWire-format readers, recording preprocessing, synthetic brain."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import torch
from scipy import signal

from flyenv.connectome import whole_brain_formats as fmt
from flyenv.connectome.recordings import (
    PreprocessConfig,
    calcium_decay,
    deconvolve_nonneg,
    load_recording,
    preprocess_traces,
)
from flyenv.connectome.synthetic_whole_brain import SCALES, build_connectome, generate
from flyenv.connectome.whole_brain_data import load_whole_brain_data


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a busy 2-core machine more threads are many times slower."""
    torch.set_num_threads(1)


TINY = replace(SCALES["tiny"], n_neurons=120, n_neuropils=5, n_frames=40, frame_ms=10.0)


def _write_real_format_files(d):
    """Hand-made tables with the real column names (and extra columns real files have)."""
    ids = np.array([720575940600000001, 720575940600000002, 720575940600000003, 720575940600000004])
    pacsv.write_csv(pa.table({"": ids, "Completed": [True] * 4}), d / "Completeness_783.csv")
    pq.write_table(
        pa.table(
            {
                "Presynaptic_ID": ids[[0, 0, 1, 3]],
                "Postsynaptic_ID": ids[[1, 2, 2, 0]],
                "Presynaptic_Index": [0, 0, 1, 3],
                "Postsynaptic_Index": [1, 2, 2, 0],
                "Connectivity": [7, 12, 5, 30],
                "Excitatory": [1, 1, -1, 1],
                "Excitatory x Connectivity": [7, 12, -5, 30],
            }
        ),
        d / "Connectivity_783.parquet",
    )
    pacsv.write_csv(
        pa.table(
            {
                "pre_root_id": ids[[0, 0, 1, 3, 0]],
                "pre_index": [0, 0, 1, 3, 0],
                "post_index": [1, 2, 2, 0, 1],
                "neuropil": ["AL_R", "MB_CA_R", "AL_R", "MB_CA_R", "MB_CA_R"],
                "syn_count": [4, 12, 5, 30, 3],
                "nt_type": ["ACH", "ACH", "GABA", "ACH", "ACH"],
            }
        ),
        d / "783_connections_processed.csv",
    )


def test_readers_on_real_format_files(tmp_path):
    _write_real_format_files(tmp_path)
    ids = fmt.read_completeness(tmp_path, 783)
    assert ids.tolist()[0] == 720575940600000001 and len(ids) == 4
    w = fmt.read_connectivity(tmp_path, "783", n_neurons=len(ids)).toarray()
    expected = np.zeros((4, 4))
    expected[0, 1], expected[0, 2], expected[1, 2], expected[3, 0] = 7, 12, -5, 30
    np.testing.assert_array_equal(w, expected)
    conns = fmt.read_neuropil_connections(tmp_path, 783)
    assert conns.neuropils == ("AL_R", "MB_CA_R")
    c = conns.readout_counts(4, ["MB_CA_R", "AL_R"])
    # MB_CA_R: neuron 0 makes 12 + 3 synapses, neuron 3 makes 30; AL_R: 4 (n0) and 5 (n1)
    np.testing.assert_array_equal(c, [[15, 0, 0, 30], [4, 5, 0, 0]])
    with pytest.raises(fmt.WholeBrainDataError, match="do not occur"):
        conns.readout_counts(4, ["LO_L"])


def test_630_final_names_accepted(tmp_path):
    _write_real_format_files(tmp_path)
    (tmp_path / "Completeness_783.csv").rename(tmp_path / "Completeness_630_final.csv")
    assert len(fmt.read_completeness(tmp_path, 630)) == 4


def test_missing_file_error_names_file_folder_and_source(tmp_path):
    with pytest.raises(fmt.WholeBrainDataError) as err:
        fmt.read_connectivity(tmp_path, "630")
    msg = str(err.value)
    assert "Connectivity_630.parquet" in msg and str(tmp_path) in msg and "--data-dir" in msg
    assert "codex.flywire.ai" in msg and "figshare" in msg
    with pytest.raises(fmt.WholeBrainDataError, match="ito_x.npz"):
        load_recording(tmp_path, "x")
    with pytest.raises(ValueError, match="flywire_version"):
        fmt.read_completeness(tmp_path, 999)


def test_bad_columns_are_named(tmp_path):
    pacsv.write_csv(pa.table({"pre": [0], "post": [1]}), tmp_path / "630_connections_processed.csv")
    with pytest.raises(fmt.WholeBrainDataError, match="lacks column"):
        fmt.read_neuropil_connections(tmp_path, 630)


def test_deconvolution_recovers_nonnegative_spikes():
    rng = np.random.default_rng(0)
    s = np.where(rng.random((3, 200)) < 0.1, rng.uniform(0.5, 2.0, (3, 200)), 0.0)
    gamma = 0.6
    c = signal.lfilter([1.0], [1.0, -gamma], s, axis=1)
    est = deconvolve_nonneg(c, gamma, 500)
    assert est.min() >= 0
    np.testing.assert_allclose(est, s, atol=1e-3)


def test_preprocessing_recovers_rates_through_drift_and_noise():
    rng = np.random.default_rng(1)
    fps, n = 1.2, 600
    t = np.arange(n)
    rates = 5 + 4 * np.sin(2 * np.pi * t / 23.0)[None] + rng.uniform(0, 2, (4, n))  # Hz
    cfg = PreprocessConfig()
    ca = signal.lfilter([1.0], [1.0, -calcium_decay(fps, cfg.tau_ca_s)], rates / 100.0, axis=1)
    bleach = np.exp(-t / fps / 2000.0)
    traces = 500 * bleach * (1 + ca + 0.001 * rng.standard_normal(ca.shape))
    out = preprocess_traces(traces, fps, cfg)
    assert out.shape == (n, 4) and out.min() >= 0
    for k in range(4):  # the activity pattern survives dF/F, filtering and deconvolution
        assert np.corrcoef(out[50:-50, k], rates[k, 50:-50])[0, 1] > 0.8


def test_synthetic_connectome_statistics():
    cfg = replace(SCALES["tiny"], n_neurons=800, n_neuropils=10, mean_out_degree=30.0)
    c = build_connectome(cfg)
    assert np.all(c.pre != c.post)
    assert np.unique(c.pre * c.n_neurons + c.post).size == c.pre.size  # no duplicate pairs
    assert np.abs(c.signed_count).min() >= cfg.min_synapses
    # Dale's law: one sign per presynaptic neuron
    signs = np.sign(c.signed_count)
    for i in np.unique(c.pre)[:100]:
        assert np.unique(signs[c.pre == i]).size == 1
    pos = np.mean(signs[np.unique(c.pre, return_index=True)[1]] > 0)
    assert 0.55 < pos < 0.8  # FlyWire-like share of excitatory neurons
    deg = np.bincount(c.pre, minlength=c.n_neurons)
    assert deg.max() > 3 * deg.mean()  # heavy-tailed out-degree
    assert set(np.unique(c.neuropil)) == set(range(10))
    counts = c.readout_counts()
    assert counts.shape == (10, 800) and counts.sum() == np.abs(c.signed_count).sum()


@pytest.fixture(scope="module")
def tiny_brain(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("wb_tiny"), TINY, progress=False)


def test_generated_brain_reads_back_through_the_real_loaders(tiny_brain):
    data = load_whole_brain_data(tiny_brain, "630", "synthetic")
    conn = build_connectome(TINY)  # same seed -> same connectome
    assert data.signed_counts.shape == (TINY.n_neurons, TINY.n_neurons)
    np.testing.assert_array_equal(data.signed_counts.toarray(), conn.signed_matrix().toarray())
    np.testing.assert_allclose(data.readout_counts, conn.readout_counts())
    assert data.rates_hz.shape == (TINY.n_frames, TINY.n_neuropils)
    assert data.teacher_rates_hz.shape == data.rates_hz.shape
    assert data.rates_hz.std() > 0 and data.teacher_rates_hz.mean() > 0
    assert list((tiny_brain / "cache").glob("ito_synthetic_rates_*.npz"))  # cached
    again = load_recording(tiny_brain, "synthetic")
    np.testing.assert_array_equal(again.rates_hz, data.rates_hz)
    train, test = data.split(0.6)
    assert train[-1] + 1 < test[0] and test[-1] == TINY.n_frames - 2


def test_one_seed_gives_one_recording_whatever_torch_global_rng(tmp_path):
    """The generator draws everything from its seed: two runs with different global torch
    states write identical teachers and recordings (lora_a once came from the global RNG)."""
    cfg = replace(TINY, n_rank=2)
    out = []
    for i, global_seed in enumerate((1, 2)):
        torch.manual_seed(global_seed)
        folder = generate(tmp_path / str(i), cfg, progress=False)
        out.append(
            (np.load(folder / "teacher_synthetic.npz"), np.load(folder / "ito_synthetic.npz"))
        )
    (t0, r0), (t1, r1) = out
    assert set(t0.files) == set(t1.files) and any("lora_a" in k for k in t0.files)
    for k in t0.files:
        np.testing.assert_array_equal(t0[k], t1[k], err_msg=k)
    np.testing.assert_array_equal(r0["traces"], r1["traces"])


def test_teacher_parameters_are_saved_and_rebuild_the_recording(tiny_brain):
    """Every teacher parameter is in teacher_synthetic.npz, and they are the known answer:
    a WholeBrainLIF with the saved drive weights, bias and low-rank factors, fed the saved
    drive and run statefully with the saved kick seed, reproduces the clean rates."""
    from flyenv.brains.whole_brain.network import WholeBrainLIF
    from flyenv.connectome.synthetic_whole_brain import hidden_drive, teacher_config

    t = np.load(tiny_brain / "teacher_synthetic.npz")
    for k in ("rates", "drive_weights", "drive_bias", "lora_a", "lora_b", "drive",
              "drive_latent", "drive_mix", "drive_tau_frames", "drive_hz", "kick_seed",
              "poisson_rate_hz", "fluorescence_noise", "scale_factor_mv", "stateful"):  # fmt: skip
        assert k in t.files, k
    n, p = TINY.n_neurons, TINY.n_neuropils
    assert t["drive_weights"].shape == (n, p) and t["lora_a"].shape == (n, TINY.n_rank)
    np.testing.assert_allclose(t["drive"], hidden_drive(TINY, TINY.n_frames)[0], rtol=1e-6)
    conn = build_connectome(TINY)
    model = WholeBrainLIF(conn.signed_matrix(), conn.readout_counts(), teacher_config(TINY))
    with torch.no_grad():
        model.encoder.weight.copy_(torch.as_tensor(t["drive_weights"]))
        model.encoder.bias.copy_(torch.as_tensor(t["drive_bias"]))
        model.conn.lora_a.copy_(torch.as_tensor(t["lora_a"]))
        model.conn.lora_b.copy_(torch.as_tensor(t["lora_b"]))
    gen = torch.Generator().manual_seed(int(t["kick_seed"]))
    r, state = torch.full((1, p), 5.0), None
    for k in range(TINY.n_frames):
        inp = (r + torch.as_tensor(t["drive"][k])).clamp_min(0.0)
        r, state = model.step_frame(inp, state, gen)
        np.testing.assert_allclose(r[0].numpy(), t["rates"][k], rtol=0, atol=1e-4)


def test_hidden_drive_is_ou_not_periodic_and_seeded():
    """The drive's latents are OU processes with the configured correlation time (lag-1
    autocorrelation exp(-1/tau)), their spectrum has no dominant line, and two seeds
    give different drives."""
    from flyenv.connectome.synthetic_whole_brain import hidden_drive

    cfg = replace(SCALES["default"], drive_tau_frames=5.0, drive_components=4)
    d, latent, mix = hidden_drive(cfg, 20_000)
    assert d.shape == (20_000, cfg.n_neuropils) and latent.shape == (20_000, 4)
    np.testing.assert_allclose(d, cfg.drive_hz * latent @ mix)
    for k in range(4):
        x = latent[:, k]
        ac1 = np.corrcoef(x[:-1], x[1:])[0, 1]
        assert abs(ac1 - np.exp(-1 / 5.0)) < 0.03
        assert abs(x.std() - 1.0) < 0.1
        power = np.abs(np.fft.rfft(x - x.mean())) ** 2
        assert power.max() < 0.01 * power.sum()  # no spectral line (a sinusoid: ~1)
    other = hidden_drive(replace(cfg, seed=1), 100)[0]
    assert not np.allclose(other, d[:100])


def test_teacher_state_carries_across_frames(tmp_path):
    """The stateful teacher (generator version 3) differs from the same teacher restarted
    from rest every frame (version 2's memoryless map), everything else equal."""
    a = generate(tmp_path / "a", TINY, progress=False)
    b = generate(tmp_path / "b", replace(TINY, stateful=False), progress=False)
    ra, rb = np.load(a / "teacher_synthetic.npz")["rates"], np.load(b / "teacher_synthetic.npz")
    assert bool(np.load(a / "teacher_synthetic.npz")["stateful"])
    assert not np.allclose(ra, rb["rates"])
