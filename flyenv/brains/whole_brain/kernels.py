"""Numba kernel of one whole-brain frame without gradients (flyenv.brains.whole_brain.network).

:func:`simulate_frame_kernel` runs every step of a frame in compiled code on
preallocated float32 arrays: exact LIF propagation (the coefficients of
:func:`flyenv.brains.core.neurons.exact_coefficients`), Poisson kicks into V, refractoriness,
threshold/reset, and event-driven delivery of each spike's out-edges (and of the LoRA
term) into a ring of delayed inputs. It replaces ~20 tensor ops per step over all N x B
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
):
    nb = v.shape[0]
    n = nb // batch
    rank = lora_a.shape[1]
    inbuf = np.zeros((delay, nb), dtype=np.float32)
    spikes = np.empty(nb, dtype=np.int64)
    tmp = np.zeros((batch, rank), dtype=np.float32)
    zero = np.float32(0.0)
    one = np.float32(1.0)
    # countdown value that marks "spiked this step" (-1 when there is no refractory
    # period: it is not "held" and is cleared when the spikes are collected)
    marker = np.float32(n_ref) if n_ref > 0 else np.float32(-1.0)
    kp = 0
    n_kicks = kick_pos.shape[0]
    for t in range(n_steps):
        slot = t % delay
        base = t * nb
        buf = inbuf[slot]
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
        # deliver this step's spikes after the delay (slot is read again at t + delay)
        for k in range(n_spk):
            idx = spikes[k]
            pre = idx // batch
            b = idx - pre * batch
            for e in range(crow[pre], crow[pre + 1]):
                inbuf[slot, col[e] * batch + b] += wval[e]
        if rank > 0 and n_spk > 0:
            tmp[:, :] = 0.0
            for k in range(n_spk):
                idx = spikes[k]
                pre = idx // batch
                b = idx - pre * batch
                for q in range(rank):
                    tmp[b, q] += lora_a[pre, q]
            for post in range(n):
                for b in range(batch):
                    acc = np.float32(0.0)
                    for q in range(rank):
                        acc += lora_b[q, post] * tmp[b, q]
                    inbuf[slot, post * batch + b] += acc
    return counts
