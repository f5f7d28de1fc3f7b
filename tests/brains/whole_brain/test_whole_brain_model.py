# moved from tests/test_whole_brain_model.py
"""Whole-brain LIF: event-driven connectome input, frame simulation, truncated BPTT."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from flyenv.brains.core.connectome_layer import ConnectomeLinear
from flyenv.brains.whole_brain.controls import recovery_scores
from flyenv.brains.whole_brain.network import (
    HomeTiedEncoder,
    WholeBrainConfig,
    WholeBrainLIF,
    home_neuropils,
    window_from_etrace_decay,
)
from flyenv.training.whole_brain_fitting import rate_loss


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a busy 2-core machine more threads are many times slower."""
    torch.set_num_threads(1)


def _model(n=60, p=4, frame_ms=6.0, seed=0, scale=0.05):
    rng = np.random.default_rng(seed)
    m = sp.random(n, n, density=0.15, random_state=seed, format="csr")
    m.data = np.round(m.data * 20 + 5) * np.where(rng.random(m.data.size) < 0.7, 1, -1)
    readout = rng.integers(0, 5, (p, n)).astype(float) + 0.1
    torch.manual_seed(seed)
    cfg = WholeBrainConfig(frame_ms=frame_ms, n_rank=3, scale_factor_mv=scale, poisson_rate_hz=400)
    model = WholeBrainLIF(m, readout, cfg)
    with torch.no_grad():
        model.encoder.bias.fill_(1.5)
        model.conn.lora_b.normal_(0, 0.5)
    return model


def test_event_driven_input_matches_the_sparse_product():
    m = sp.random(50, 40, density=0.2, random_state=1, format="csr")
    m.data = np.round(m.data * 10) - 5
    m.eliminate_zeros()
    layer = ConnectomeLinear(m, learnable=False, lora_rank=2)
    torch.nn.init.normal_(layer.lora_b)
    x = (torch.rand(50, 3, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    torch.testing.assert_close(layer.forward_t_events(x), layer.forward_t(x))
    torch.testing.assert_close(layer.forward_t_events(torch.zeros(50, 3)), torch.zeros(40, 3))


def test_frame_simulation_is_seeded_and_reads_neuropil_rates():
    model = _model()
    x = torch.full((3, 4), 5.0)
    a = model.simulate_frame(x, torch.Generator().manual_seed(1))
    b = model.simulate_frame(x, torch.Generator().manual_seed(1))
    assert a.shape == (3, 4) and torch.equal(a, b)
    assert a.min() >= 0 and a.sum() > 0  # the drive makes neurons fire
    with pytest.raises(ValueError, match="n_neuropils=4"):
        model.simulate_frame(torch.zeros(2, 5))


def test_refractoriness_caps_the_rate():
    model = _model(frame_ms=20.0)
    with torch.no_grad():
        model.encoder.bias.fill_(50.0)  # every Poisson input spike fires the neuron
    model.config.poisson_rate_hz = 5000.0
    rates = model.simulate_frame(torch.zeros(1, 4), torch.Generator().manual_seed(0))
    assert rates.max() <= 1000.0 / model.config.refractory_ms + 1e-3


def test_truncated_bptt_with_a_full_window_equals_full_bptt():
    model = _model()
    cfg = model.config
    x, y = torch.full((2, 4), 4.0), torch.full((2, 4), 30.0)
    duration = (cfg.n_steps - cfg.n_warmup_steps) * cfg.dt_ms
    # reference: keep the graph of the whole recorded period and differentiate once
    model.zero_grad()
    gen = torch.Generator().manual_seed(3)
    w = model.poisson_weights(x)
    kept = []
    model._run(w, gen, cfg.n_steps, cfg.n_warmup_steps, cfg.n_steps, kept.append)
    loss_ref = rate_loss(model.neuropil_rates(kept[0], duration), y)
    loss_ref.backward()
    ref = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    loss, _ = model.train_frame(x, lambda r: rate_loss(r, y), cfg.n_steps, seed=3)
    assert float(loss) == pytest.approx(loss_ref.item(), rel=1e-5)
    for name, g in ref.items():
        torch.testing.assert_close(
            dict(model.named_parameters())[name].grad, g, rtol=1e-4, atol=1e-7
        )
    assert any(g.abs().sum() > 0 for g in ref.values())


def test_short_windows_reach_every_learnable_tensor():
    model = _model()
    x, y = torch.full((2, 4), 4.0), torch.full((2, 4), 30.0)
    loss, rates = model.train_frame(x, lambda r: rate_loss(r, y), window_steps=5, seed=0)
    assert rates.shape == (2, 4) and torch.isfinite(loss)
    learnable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert set(learnable) == {"conn.lora_a", "conn.lora_b", "encoder.weight", "encoder.bias"}
    for name, p in learnable.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_home_tied_encoder_shares_one_row_per_home_neuropil():
    readout = np.array([[5, 0, 1, 0, 2], [1, 3, 0, 0, 2], [0, 1, 4, 0, 1]], float)
    home = home_neuropils(readout)
    assert home.tolist() == [0, 1, 2, 0, 0]  # argmax per neuron; no synapses -> 0, tie -> first
    enc = HomeTiedEncoder(home, n_inputs=3)
    with torch.no_grad():
        enc.coupling.copy_(torch.arange(9.0).reshape(3, 3))
        enc.bias_home.copy_(torch.tensor([10.0, 20.0, 30.0]))
    np.testing.assert_array_equal(enc.weight[1].detach().numpy(), [3.0, 4.0, 5.0])
    assert enc.bias.tolist() == [10.0, 20.0, 30.0, 10.0, 10.0]
    x = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]])
    torch.testing.assert_close(enc(x), x @ enc.weight.t() + enc.bias)
    assert sum(p.numel() for p in enc.parameters()) == 3 * 3 + 3


def test_home_tied_student_learns_only_its_shared_rows():
    rng = np.random.default_rng(0)
    n, p = 60, 4
    m = sp.random(n, n, density=0.15, random_state=0, format="csr")
    m.data = np.round(m.data * 20 + 5)
    readout = rng.integers(0, 5, (p, n)).astype(float) + 0.1
    cfg = WholeBrainConfig(frame_ms=6.0, n_rank=0, scale_factor_mv=0.05, poisson_rate_hz=400)
    model = WholeBrainLIF(m, readout, replace(cfg, encoder="home_tied"))
    with torch.no_grad():
        model.encoder.bias_home.fill_(1.5)
    x, y = torch.full((2, p), 4.0), torch.full((2, p), 30.0)
    loss, _ = model.train_frame(x, lambda r: rate_loss(r, y), window_steps=5, seed=0)
    learnable = {k: v for k, v in model.named_parameters() if v.requires_grad}
    assert set(learnable) == {"encoder.coupling", "encoder.bias_home"}
    for name, v in learnable.items():
        assert v.grad is not None and v.grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match="encoder must be one of"):
        replace(cfg, encoder="per_synapse").validate()


def test_recovery_scores_read_a_tied_students_per_neuron_weights(tmp_path):
    readout = np.array([[5, 0, 1, 0], [1, 3, 0, 0]], float)
    cfg = WholeBrainConfig(frame_ms=2.0, n_rank=0, encoder="home_tied")
    student = WholeBrainLIF(sp.csr_matrix((4, 4)), readout, cfg)
    teacher_w = student.encoder.weight.detach().numpy() * 2.0 + 1.0  # a linear map of it
    np.savez(
        tmp_path / "t.npz",
        drive_weights=teacher_w,
        drive_bias=student.encoder.bias.detach().numpy(),
    )
    r = recovery_scores(student, tmp_path / "t.npz")
    assert r["drive_weights_r"] == pytest.approx(1.0) and r["drive_bias_r"] == pytest.approx(1.0)


def test_etrace_decay_window_mapping():
    assert window_from_etrace_decay(0.99) == 100
    assert window_from_etrace_decay(0.0) == 1
    with pytest.raises(ValueError):
        window_from_etrace_decay(1.0)


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="delay_ms"):
        WholeBrainConfig(delay_ms=0.1).validate()
    with pytest.raises(ValueError, match="square"):
        WholeBrainLIF(sp.csr_matrix((3, 4)), np.ones((2, 3)))


def test_fast_inference_paths_match_the_autograd_path():
    model = _model(frame_ms=30.0)
    w = model.poisson_weights(torch.full((3, 4), 5.0)).detach()
    cfg = model.config

    def run(backend, fast):
        model.config.backend = backend
        with torch.no_grad():
            return model._run(w, torch.Generator().manual_seed(5), cfg.n_steps, 10, fast=fast)

    slow = run("torch", False)
    assert slow.sum() > 0
    torch.testing.assert_close(run("torch", True), slow, rtol=0, atol=0)  # in-place twin
    # compiled kernel: same equations, same draws, same spikes
    torch.testing.assert_close(run("numba", True), slow, rtol=0, atol=0)
    assert model.backend() == "numba"


def test_bernoulli_positions_are_exact_trials():
    from flyenv.brains.whole_brain.network import bernoulli_positions

    gen = torch.Generator().manual_seed(0)
    counts = torch.zeros(1000)
    for _ in range(400):
        idx = bernoulli_positions(1000, 0.05, gen)
        assert idx.unique().numel() == idx.numel() and idx.min() >= 0 and idx.max() < 1000
        counts[idx] += 1
    assert abs(float(counts.mean()) / 400 - 0.05) < 0.003  # the success rate
    assert float(counts.std()) == pytest.approx((400 * 0.05 * 0.95) ** 0.5, rel=0.15)


# ---------------------------------------------------------------- stateful frames
def test_step_frame_carries_the_state_and_two_frames_equal_one_long_frame():
    """Frame t+1 continues where frame t ended: two stateful 10-step frames give the
    spikes of one 20-step frame with the same kicks (V, I, refractoriness and the spikes
    in flight carried); from rest the second frame differs."""
    model = _model(frame_ms=2.0)  # 10 steps of 0.2 ms, delay 9 steps: spikes in flight
    cfg = model.config
    x = torch.full((2, 4), 5.0)
    w = model.poisson_weights(x).detach()
    for backend in ("torch", "numba"):
        model.config.backend = backend
        with torch.no_grad():
            long, _ = model._run_from(w, torch.Generator().manual_seed(3), 20, 0, fast=True)
            # the long frame's kicks, replayed as two frames: draw them once, split
            from flyenv.brains.whole_brain.network import bernoulli_positions

            nb = w.numel()
            p = cfg.poisson_rate_hz * cfg.dt_ms / 1000.0
            kicks = bernoulli_positions(20 * nb, p, torch.Generator().manual_seed(3))
            first, second = kicks[kicks < 10 * nb], kicks[kicks >= 10 * nb] - 10 * nb
            k = model.lif.coefficients()
            values = model.conn.pre_major_values()
            start = model.init_frame_state(2)
            if backend == "numba":
                c1, mid = model._run_numba(w, first, 10, 0, k, values, start)
                c2, _ = model._run_numba(w, second, 10, 0, k, values, mid)
                c2_rest, _ = model._run_numba(w, second, 10, 0, k, values, start)
            else:
                c1, mid = _replay(model, w, first, 10, start)
                c2, _ = _replay(model, w, second, 10, mid)
                c2_rest, _ = _replay(model, w, second, 10, start)
        assert long.sum() > 0 and mid.ring.sum() > 0  # spikes were in flight at the edge
        torch.testing.assert_close(c1 + c2, long, rtol=0, atol=0)
        assert not torch.equal(c2_rest, c2)  # restarting from rest forgets the state


def _replay(model, w, kicks, n_steps, start):
    """The torch fast path on given kicks (monkeypatched draw)."""
    import flyenv.brains.whole_brain.network as net

    orig = net.bernoulli_positions
    net.bernoulli_positions = lambda *a, **k: kicks
    try:
        return model._run_from(w, None, n_steps, 0, start, fast=True)
    finally:
        net.bernoulli_positions = orig


def test_stateful_paths_match_and_train_frame_continues_the_state():
    """step_frame (numba and torch) and the autograd train_frame give the same rates and
    end state from the same start state; the gradient reaches every learnable tensor."""
    model = _model(frame_ms=4.0)
    x = torch.full((3, 4), 6.0)
    y = torch.full((3, 4), 20.0)
    _, state = model.step_frame(x, None, torch.Generator().manual_seed(0))
    assert state.v.abs().sum() > 0
    out = {}
    for backend in ("numba", "torch"):
        model.config.backend = backend
        gen = torch.Generator().manual_seed(7)
        out[backend] = model.step_frame(x, state, gen)
    torch.testing.assert_close(out["numba"][0], out["torch"][0], rtol=0, atol=0)
    for a, b in zip(out["numba"][1][:4], out["torch"][1][:4], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)  # float order of V, I updates
    assert out["numba"][1].phase == out["torch"][1].phase
    # train_frame with a state: same simulation (its own seed), gradients, state returned
    model.zero_grad()
    loss, rates, end = model.train_frame(x, lambda r: rate_loss(r, y), 5, seed=11, state=state)
    gen = torch.Generator().manual_seed(11)
    model.config.backend = "torch"
    ref_rates, ref_end = model.step_frame(x, state, gen)
    torch.testing.assert_close(rates, ref_rates, rtol=0, atol=0)
    torch.testing.assert_close(end.v, ref_end.v, rtol=0, atol=1e-6)
    torch.testing.assert_close(end.ring, ref_end.ring, rtol=0, atol=0)
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_connectome_controls_keep_degrees_and_sign():
    from flyenv.brains.whole_brain.controls import connectome_control

    rng = np.random.default_rng(0)
    m = sp.random(200, 200, density=0.05, random_state=0, format="csr")
    m.setdiag(0)
    m.eliminate_zeros()
    sign = np.where(rng.random(200) < 0.7, 1.0, -1.0)
    m = sp.csr_matrix(sp.diags(sign) @ (m * 10).ceil())
    sh = connectome_control(m, "shuffled", seed=1)
    assert sh.diagonal().sum() == 0
    assert (sh != m).nnz > 0.9 * m.nnz  # rewired
    out_deg, in_deg = np.diff(m.indptr), np.bincount(m.indices, minlength=200)
    out_sh, in_sh = np.diff(sh.indptr), np.bincount(sh.indices, minlength=200)
    lost = m.nnz - sh.nnz  # self-loops dropped and duplicates merged: a few edges
    assert 0 <= lost < 0.05 * m.nnz
    assert np.abs(out_sh - out_deg).sum() <= 2 * lost and np.abs(in_sh - in_deg).sum() <= 2 * lost
    # each presynaptic neuron keeps its sign (Dale's law)
    for i in range(200):
        vals = sh.data[sh.indptr[i] : sh.indptr[i + 1]]
        assert np.all(np.sign(vals) == sign[i]) or vals.size == 0
    assert connectome_control(m, "lowrank_only", 0).nnz == 0
    with pytest.raises(ValueError, match="connectome must be one of"):
        connectome_control(m, "random", 0)


def test_lowrank_only_student_runs_without_a_sparse_connectome():
    from flyenv.brains.whole_brain.controls import connectome_control

    model = _model()
    empty = connectome_control(sp.csr_matrix((60, 60)), "lowrank_only", 0)
    readout = model.readout.numpy() + 0.0
    student = WholeBrainLIF(empty, readout, model.config)
    with torch.no_grad():
        student.encoder.bias.fill_(1.5)
        student.conn.lora_b.normal_(0, 0.5)
    rates, state = student.step_frame(torch.full((2, 4), 5.0), None)
    assert rates.sum() > 0
    for backend in ("numba", "torch"):
        student.config.backend = backend
        r2, _ = student.step_frame(torch.full((2, 4), 5.0), state, torch.Generator().manual_seed(1))
        assert r2.shape == (2, 4)


def test_stateful_sequences_start_at_rest_and_carry_state_within():
    """simulate_stateful: the first prediction of a sequence is the memoryless frame map
    (state reset between sequences); later ones differ from it (state carried); closed
    loop reads no frame after the warm-up."""
    from flyenv.training.whole_brain_fitting import simulate_stateful

    model = _model(frame_ms=4.0)
    rates = np.random.default_rng(0).uniform(2, 12, (12, 4)).astype(np.float32)
    a = simulate_stateful(model, rates, 3, 10, seed=5, max_firing_rate_hz=1e4, progress=False)
    b = simulate_stateful(model, rates, 3, 10, seed=5, max_firing_rate_hz=1e4, progress=False)
    np.testing.assert_array_equal(a, b)  # nothing carried over between sequences
    assert a.shape == (6, 4)
    gen = torch.Generator().manual_seed(5)
    first = model.simulate_frame(torch.as_tensor(rates[3:4]), gen)[0].numpy()
    np.testing.assert_allclose(a[0], first, rtol=0, atol=1e-5)
    # frame 4 from rest (the memoryless map) vs frame 4 continuing from frame 3
    gen = torch.Generator().manual_seed(5)
    model.simulate_frame(torch.as_tensor(rates[3:4]), gen)
    rest = model.simulate_frame(torch.as_tensor(rates[4:5]), gen)[0].numpy()
    assert not np.allclose(a[1], rest)
    # closed loop: frames after the warm-up may be anything
    poisoned = rates.copy()
    poisoned[6:] = 1e6
    cl = simulate_stateful(model, rates, 3, 10, 5, 3, 1e4, progress=False)
    cl2 = simulate_stateful(model, poisoned, 3, 10, 5, 3, 1e4, progress=False)
    np.testing.assert_array_equal(cl, cl2)
    assert cl.shape == (4, 4)
    np.testing.assert_allclose(cl[0], a[2], rtol=0, atol=1e-5)  # frame 6 after true 3..5


def test_stateful_epoch_trains_in_chunks_from_rest(monkeypatch):
    """One stateful epoch: parallel chunks, one optimiser step per frame, loss decreases
    over a few epochs on a target the net can reach."""
    from flyenv.training.whole_brain_fitting import (
        stateful_chunks,
        train_round1_stateful_epoch,
    )

    starts = stateful_chunks(100, 10, 5, np.random.default_rng(0))
    assert starts.min() >= 5 and starts.max() + 10 <= 99 and np.all(np.diff(starts) == 10)
    model = _model(frame_ms=4.0)
    rates = np.full((40, 4), 30.0, np.float32)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.05)
    calls = []
    orig = type(model).train_frame

    def spy(self, x, loss, window, seed, state=None):
        calls.append((x.shape[0], state is not None))
        return orig(self, x, loss, window, seed, state)

    monkeypatch.setattr(type(model), "train_frame", spy)
    losses = [
        train_round1_stateful_epoch(model, opt, rates, 40, 8, 2, "mse", 5, 1.0, seed=e)[0]
        for e in range(4)
    ]
    assert all(n >= 3 and carried for n, carried in calls)  # >= 3 chunks, state passed
    assert losses[-1] < losses[0]


def test_stateful_epoch_with_replicas_scores_the_mean_of_the_copies(monkeypatch):
    """train_replicas K: every chunk runs K times side by side (copy k of chunk b at row
    k * B + b, fed the same frame) and the loss sees the copies' mean rates; K = 1 is the
    one-sample epoch."""
    from flyenv.training.whole_brain_fitting import train_round1_stateful_epoch

    model = _model(frame_ms=4.0)
    rates = (np.arange(40 * 4, dtype=np.float32).reshape(40, 4) % 37) + 5.0
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)
    seen = []

    def fake_train_frame(self, x, loss, window, seed, state=None):
        n = x.shape[0]
        assert state is not None and state.v.shape[1] == n  # K * chunks in the state
        k_rows = torch.arange(n, dtype=torch.float32)[:, None].expand(n, 4)
        out = x + k_rows  # each row its own offset: the loss must see their mean
        seen.append((x, float(loss(out)), out))
        return loss(out).detach(), out.detach(), state

    monkeypatch.setattr(type(model), "train_frame", fake_train_frame)
    _, sim, tgt = train_round1_stateful_epoch(
        model, opt, rates, 40, 8, 2, "mse", 5, 1.0, seed=0, replicas=3
    )
    x, loss, out = seen[-1]
    b = x.shape[0] // 3
    torch.testing.assert_close(x[:b], x[b : 2 * b])  # the copies are fed the same frame
    mean = out.reshape(3, b, 4).mean(0)
    expected = float(((mean - torch.as_tensor(tgt)) ** 2).mean())
    assert loss == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(sim, mean.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="replicas"):
        train_round1_stateful_epoch(model, opt, rates, 40, 8, 2, "mse", 5, 1.0, 0, replicas=0)


def test_spiking_net_rollout_batches_the_teacher_forced_states():
    """SpikingNetRollout keeps the net's state after every true frame (the same states as
    stepping it by hand with the same seed) and batches any of them into one start state;
    frames whose ring phase differs (10-step frames, delay 9) batch too, and continuing
    from a batched state gives what continuing from each frame's own state gives."""
    from flyenv.training.whole_brain_fitting import SpikingNetRollout

    model = _model(frame_ms=2.0)  # 10 steps per frame, delay 9: the phase moves
    rates = np.abs(np.random.default_rng(1).normal(5.0, 2.0, (12, 4))).astype(np.float32)
    roll = SpikingNetRollout(model, rates, 9, seed=4)
    gen, state, by_hand = torch.Generator().manual_seed(4), None, []
    with torch.no_grad():
        for t in range(10):
            _, state = model.step_frame(torch.as_tensor(rates[t : t + 1]), state, gen)
            by_hand.append(state)
    assert len({st.phase for st in by_hand}) > 1  # the ring phase differs between frames
    frames = np.array([3, 7, 3])
    batched = roll.start(frames)
    assert batched.v.shape == (60, 3) and batched.phase == 0
    for col, f in enumerate(frames):
        torch.testing.assert_close(batched.v[:, col], by_hand[f].v[:, 0], rtol=0, atol=0)
        ring = torch.roll(by_hand[f].ring[:, :, 0], -by_hand[f].phase, dims=0)
        torch.testing.assert_close(batched.ring[:, :, col], ring, rtol=0, atol=0)
    # continuing: the batched start state and each frame's own state give the same spikes
    x = torch.full((1, 4), 6.0)
    w = model.poisson_weights(x).detach()
    for f in frames[:2]:
        own, _ = model._run_from(w, torch.Generator().manual_seed(9), 10, 0, by_hand[f], fast=True)
        one = roll.start(np.array([f]))
        mine, _ = model._run_from(w, torch.Generator().manual_seed(9), 10, 0, one, fast=True)
        torch.testing.assert_close(mine, own, rtol=0, atol=0)
    out, nxt = roll.step(torch.full((3, 4), 6.0, requires_grad=True), batched)
    assert out.shape == (3, 4) and not out.requires_grad and nxt.v.shape == (60, 3)
    with pytest.raises(ValueError, match="outside"):
        roll.start(np.array([10]))
