"""Numba kernel of one whole-brain frame without gradients (flyenv.brains.whole_brain).

:func:`simulate_frame_kernel` runs every step of a frame in compiled code on
preallocated float32 arrays: exact LIF propagation (the coefficients of
:func:`flyenv.brains.neurons.exact_coefficients`), Poisson kicks into V, refractoriness,
threshold/reset, and event-driven delivery of each spike's out-edges (and of the LoRA
term) into a ring of delayed inputs. It replaces ~20 tensor ops per step over all N x B
entries by one pass, which is what makes a 139k-neuron brain cheap on a CPU.

Random numbers are not drawn here: the Poisson kicks of the whole frame are drawn
beforehand by :func:`flyenv.brains.whole_brain.bernoulli_positions` (the same draws the
torch paths use) and passed in as sorted flat positions step * N * B + neuron * B + b.
The torch paths are the reference: same equations and order of operations per neuron
in float32, ``fastmath`` off; the test network gives the same spikes on both
(tests/test_whole_brain_model.py). On other hardware a fused multiply-add in one of
them could round a last bit differently and flip a spike at threshold.
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
    kp = 0
    n_kicks = kick_pos.shape[0]
    for t in range(n_steps):
        slot = t % delay
        base = t * nb
        n_spk = 0
        for idx in range(nb):
            j = cur[idx] + inbuf[slot, idx]
            inbuf[slot, idx] = 0.0
            vv = alpha * v[idx] + c * j
            while kp < n_kicks and kick_pos[kp] < base + idx:
                kp += 1
            if kp < n_kicks and kick_pos[kp] == base + idx:
                vv = vv + kick_w[idx]
                kp += 1
            if ref[idx] > 0:
                vv = 0.0
                ref[idx] = ref[idx] - 1.0
            elif vv > theta:
                vv = 0.0
                ref[idx] = n_ref
                spikes[n_spk] = idx
                n_spk += 1
                if t >= n_warmup:
                    counts[idx] += 1.0
            v[idx] = vv
            cur[idx] = beta * j
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
