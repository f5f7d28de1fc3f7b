"""Numba kernel of one whole-brain frame without gradients (flyenv.brains.whole_brain.network).

:func:`simulate_frame_kernel` runs every step of a frame in compiled code on
preallocated float32 arrays: exact LIF propagation (the coefficients of
:func:`flyenv.brains.core.neurons.exact_coefficients`), Poisson kicks into V, refractoriness,
threshold/reset, and event-driven delivery of each delayed spike's out-edges (and of the
LoRA term). The state (V, I, refractory countdown, the ring of the last ``delay`` steps'
spikes and its phase) is passed in and updated in place, so frames can continue one
another (the stateful teacher and student). It replaces ~20 tensor ops per step over all N x B
entries by one pass, which is what makes a 139k-neuron brain cheap on a CPU.

Random numbers are not drawn here: the Poisson kicks of the whole frame are drawn
beforehand by :func:`flyenv.brains.whole_brain.network.bernoulli_positions` (the same draws the
torch paths use) and passed in as sorted flat positions step * N * B + neuron * B + b.
The torch paths are the reference: same equations and order of operations per neuron
in float32, ``fastmath`` off; the test network gives the same spikes on both
(tests/brains/whole_brain/test_whole_brain_model.py). On other hardware a fused
multiply-add in one of them could round a last bit differently and flip a spike at threshold.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, fastmath=False)
def simulate_frame_kernel(
    n_steps,
    n_warmup,
    delay,
    batch,
    v,  # (N * B,) float32, neuron-major
    cur,  # (N * B,) synaptic current
    ref,  # (N * B,) refractory steps left
    kick_pos,  # (K,) int64 sorted flat positions of Poisson kicks over the frame
    kick_w,  # (N * B,) float32 kick size into V (mV)
    crow,  # (N + 1,) int64 CSR of out-edges (pre-major)
    col,  # (E,) int64 postsynaptic neuron
    wval,  # (E,) float32 signed weight (mV)
    lora_a,  # (N, r) float32 (r may be 0)
    lora_b,  # (r, N) float32, already divided by r
    alpha,
    beta,
    c,
    theta,
    n_ref,
    counts,  # (N * B,) float32 spike counts over the recorded steps (output)
    ring,  # (delay, N * B) float32 0/1 spikes of the last ``delay`` steps (state, updated)
    phase,  # ring slot of step 0 (state carried across frames)
):
    nb = v.shape[0]
    n = nb // batch
    rank = lora_a.shape[1]
    buf = np.zeros(nb, dtype=np.float32)
    spikes = np.empty(nb, dtype=np.int64)
    past = np.empty(nb, dtype=np.int64)
    tmp = np.zeros((batch, rank), dtype=np.float32)
    zero = np.float32(0.0)
    one = np.float32(1.0)
    # countdown value that marks "spiked this step" (-1 when there is no refractory
    # period: it is not "held" and is cleared when the spikes are collected)
    marker = np.float32(n_ref) if n_ref > 0 else np.float32(-1.0)
    kp = 0
    n_kicks = kick_pos.shape[0]
    for t in range(n_steps):
        slot = (t + phase) % delay
        base = t * nb
        # deliver the spikes of step t - delay (held in the ring slot), edges then LoRA
        n_past = 0
        for idx in range(nb):
            if ring[slot, idx] > zero:
                past[n_past] = idx
                n_past += 1
        for k in range(n_past):
            idx = past[k]
            pre = idx // batch
            b = idx - pre * batch
            for e in range(crow[pre], crow[pre + 1]):
                buf[col[e] * batch + b] += wval[e]
        if rank > 0 and n_past > 0:
            tmp[:, :] = 0.0
            for k in range(n_past):
                idx = past[k]
                pre = idx // batch
                b = idx - pre * batch
                for q in range(rank):
                    tmp[b, q] += lora_a[pre, q]
            for post in range(n):
                for b in range(batch):
                    acc = np.float32(0.0)
                    for q in range(rank):
                        acc += lora_b[q, post] * tmp[b, q]
                    buf[post * batch + b] += acc
        # Three passes instead of one branchy loop, so that the two dense ones
        # vectorise; the order of operations per neuron is unchanged.
        # 1) propagate (dense): V~ = alpha V + c J, I' = beta J
        for idx in range(nb):
            j = cur[idx] + buf[idx]
            buf[idx] = zero
            v[idx] = alpha * v[idx] + c * j
            cur[idx] = beta * j
        # 2) this step's Poisson kicks into V (sparse, positions sorted)
        while kp < n_kicks and kick_pos[kp] < base + nb:
            idx = kick_pos[kp] - base
            v[idx] = v[idx] + kick_w[idx]
            kp += 1
        # 3) refractoriness and threshold (dense, selects), then collect the spikes
        for idx in range(nb):
            r = ref[idx]
            held = r > zero
            spk = (not held) and v[idx] > theta
            v[idx] = zero if (held or spk) else v[idx]
            ref[idx] = marker if spk else (r - one if held else r)
        n_spk = 0
        for idx in range(nb):
            if ref[idx] == marker:
                spikes[n_spk] = idx
                n_spk += 1
                if marker < zero:
                    ref[idx] = zero
        if t >= n_warmup:
            for k in range(n_spk):
                counts[spikes[k]] += one
        # this step's spikes wait in the ring slot until step t + delay reads it
        for idx in range(nb):
            ring[slot, idx] = zero
        for k in range(n_spk):
            ring[slot, spikes[k]] = one
    return counts
