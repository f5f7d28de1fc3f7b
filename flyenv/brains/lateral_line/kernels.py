"""Numba kernels of the LL -> MON -> TS network (flyenv.brains.lateral_line.network).

One call of :func:`simulate_chunk` runs a whole chunk (a training trial, the test
sweep) of 1 ms steps in compiled code on preallocated arrays, so the per-step Python
overhead of the numpy path disappears. ``fastmath`` is off and every operation is done
in the same precision and order as the numpy reference path
(``LateralLineNetwork.run(..., backend="numpy")``), so both give the same spikes and
weights, spike for spike, from the same input events
(tests/brains/lateral_line/test_lateral_line_brain.py):

- state (membranes, net currents, STDP traces, weights) is float32, as in numpy;
- the LL->MON drive of one step is summed in float64 and rounded once to float32 (the
  numpy path does the same with a float64 product; a float64 sum of these few float32
  weights is exact, so the summation order does not matter);
- the MON->TS drive is summed in float64 per TS cell in MON-index order (as
  ``np.bincount``) and added as float32(float64(g) + gain * drive).

Random numbers are not drawn here: the Poisson input events of a chunk (LL afferents,
MON and TS background) are drawn beforehand with numpy's seeded Generator
(``LateralLineNetwork.draw_inputs``) and passed in as per-step CSR lists,
so results are seeded, reproducible and resumable from the Generator state.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, fastmath=False)
def simulate_chunk(
    n_steps,
    # input events, CSR by step: indices of the cells spiking at step t
    ll_ptr,
    ll_idx,
    bgm_ptr,
    bgm_idx,
    bgt_ptr,
    bgt_idx,
    # fixed LL->MON synapses, CSR by LL cell: target MON cells and km * weight (float32)
    llm_ptr,
    llm_post,
    llm_w,
    # MON->TS synapses: (n_mon, deg) weights / targets; CSR of incoming by TS cell
    mt_w,
    mt_post,
    in_ptr,
    in_syn,
    in_pre,
    # lateral TS inhibition, (n_ts, n_ts) float32 already scaled by km
    lat,
    mon_to_inh,
    ts_to_inh,
    # state, updated in place
    mon_u,
    mon_g,
    mon_ref,
    ts_u,
    ts_g,
    ts_ref,
    ts_th_off,  # float32 (n_ts,): each TS cell's threshold offset (intrinsic plasticity)
    x_pre,
    x_post,
    inh_state,  # float64 [mi_u, mi_ge, mi_ref, ti_u, ti_ge, ti_ref]
    # constants (float32 unless said)
    leak,
    decay_s,
    th,
    ur,
    n_ref,  # int
    km,  # float64
    bg_mon_in,
    bg_ts_in,
    gain,  # float64: km * mon_ts_gain_mV
    inh_mon,
    inh_ts,
    m_drive,  # float64
    t_drive,  # float64
    use_fb,  # bool
    mt_stdp,  # bool
    a_pre,  # float64
    a_post,  # float64
    wmax,
    tr,  # float64 STDP trace decay per step
    frozen_decay,  # float32: tr ** n_steps (traces decay while frozen)
    # outputs
    mon_out,  # int32 buffer for MON spike indices
    mon_cnt,  # int64 (n_steps,)
    ts_out,
    ts_cnt,
):
    n_mon = mon_u.shape[0]
    n_ts = ts_u.shape[0]
    deg = mt_w.shape[1]
    zero = np.float32(0.0)
    acc_ll = np.zeros(n_mon, np.float64)
    bg_buf = np.zeros(n_mon, np.float32)
    drive = np.zeros(n_ts, np.float64)
    lat_acc = np.zeros(n_ts, np.float32)
    m_spk = np.empty(n_mon, np.int64)
    t_spk = np.empty(n_ts, np.int64)
    decay_d = np.float64(decay_s)
    th_d = np.float64(th)
    ur_d = np.float64(ur)
    mi_u, mi_ge, mi_ref = inh_state[0], inh_state[1], inh_state[2]
    ti_u, ti_ge, ti_ref = inh_state[3], inh_state[4], inh_state[5]
    f_tr = 1.0
    n_mon_out = 0
    n_ts_out = 0
    for t in range(n_steps):
        # ---- 1. integrate every group with the values at the start of the step,
        # clamp refractory cells at reset, then threshold and reset
        nm = 0
        for j in range(n_mon):
            u = mon_u[j] * leak
            u = u + mon_g[j]
            mon_g[j] = mon_g[j] * decay_s
            if mon_ref[j] > 0:
                u = ur
                mon_ref[j] -= 1
            elif u > th:
                u = ur
                mon_ref[j] = n_ref
                m_spk[nm] = j
                nm += 1
            mon_u[j] = u
        nt = 0
        for j in range(n_ts):
            u = ts_u[j] * leak
            u = u + ts_g[j]
            ts_g[j] = ts_g[j] * decay_s
            if ts_ref[j] > 0:
                u = ur
                ts_ref[j] -= 1
            elif u > th + ts_th_off[j]:
                u = ur
                ts_ref[j] = n_ref
                t_spk[nt] = j
                nt += 1
            ts_u[j] = u
        if mi_ref > 0:
            mi_ref -= 1
        else:
            mi_u += km * (mi_ge - mi_u)
        mi_ge *= decay_d
        if ti_ref > 0:
            ti_ref -= 1
        else:
            ti_u += km * (ti_ge - ti_u)
        ti_ge *= decay_d
        mi_fired = mi_u > th_d
        if mi_fired:
            mi_u = ur_d
            mi_ref = n_ref
        ti_fired = ti_u > th_d
        if ti_fired:
            ti_u = ur_d
            ti_ref = n_ref
        for k in range(nm):
            mon_out[n_mon_out + k] = m_spk[k]
        n_mon_out += nm
        mon_cnt[t] = nm
        for k in range(nt):
            ts_out[n_ts_out + k] = t_spk[k]
        n_ts_out += nt
        ts_cnt[t] = nt

        # ---- 2. deliver this step's spikes, then STDP (Brian2: on_pre before on_post)
        # MON input: background + LL (float64 sum rounded once), one float32 add
        for e in range(bgm_ptr[t], bgm_ptr[t + 1]):
            bg_buf[bgm_idx[e]] = bg_mon_in
        for e in range(ll_ptr[t], ll_ptr[t + 1]):
            i = ll_idx[e]
            for s in range(llm_ptr[i], llm_ptr[i + 1]):
                acc_ll[llm_post[s]] += np.float64(llm_w[s])
        for j in range(n_mon):
            inp = bg_buf[j] + np.float32(acc_ll[j])
            mon_g[j] = mon_g[j] + inp
            bg_buf[j] = zero
            acc_ll[j] = 0.0
        if mi_fired:
            for j in range(n_mon):
                mon_g[j] = mon_g[j] - inh_mon
        if mt_stdp:
            f_tr *= tr
        if nm > 0:
            f32_tr = np.float32(f_tr)
            inc_pre = np.float32(a_pre / f_tr)
            n_to_inh = 0
            for k in range(nm):
                j = m_spk[k]
                if mon_to_inh[j]:
                    n_to_inh += 1
                for s in range(deg):
                    drive[mt_post[j, s]] += np.float64(mt_w[j, s])
                if mt_stdp:  # pre spike: w += post trace (LTD for Apost < 0)
                    x_pre[j] = x_pre[j] + inc_pre
                    for s in range(deg):
                        v = mt_w[j, s] + x_post[mt_post[j, s]] * f32_tr
                        v = min(v, wmax)
                        v = max(v, zero)
                        mt_w[j, s] = v
            mi_ge += m_drive * n_to_inh
            for j in range(n_ts):
                ts_g[j] = np.float32(np.float64(ts_g[j]) + gain * drive[j])
                drive[j] = 0.0
        for e in range(bgt_ptr[t], bgt_ptr[t + 1]):
            j = bgt_idx[e]
            ts_g[j] = ts_g[j] + bg_ts_in
        if nt > 0:
            if mt_stdp:  # post spike: w += pre trace (LTP)
                f32_tr = np.float32(f_tr)
                inc_post = np.float32(a_post / f_tr)
                for k in range(nt):
                    j = t_spk[k]
                    x_post[j] = x_post[j] + inc_post
                for k in range(nt):
                    j = t_spk[k]
                    for q in range(in_ptr[j], in_ptr[j + 1]):
                        syn = in_syn[q]
                        r = syn // deg
                        c = syn - r * deg
                        v = mt_w[r, c] + x_pre[in_pre[q]] * f32_tr
                        v = min(v, wmax)
                        v = max(v, zero)
                        mt_w[r, c] = v
            for j in range(n_ts):
                lat_acc[j] = lat[t_spk[0], j]
            for k in range(1, nt):
                row = t_spk[k]
                for j in range(n_ts):
                    lat_acc[j] = lat_acc[j] + lat[row, j]
            for j in range(n_ts):
                ts_g[j] = ts_g[j] - lat_acc[j]
            if use_fb:
                n_to_inh = 0
                for k in range(nt):
                    if ts_to_inh[t_spk[k]]:
                        n_to_inh += 1
                ti_ge += t_drive * n_to_inh
        if ti_fired and use_fb:
            for j in range(n_ts):
                ts_g[j] = ts_g[j] - inh_ts
        if mt_stdp and f_tr < 1e-3:  # renormalise the stored traces
            f32_tr = np.float32(f_tr)
            for j in range(n_mon):
                x_pre[j] = x_pre[j] * f32_tr
            for j in range(n_ts):
                x_post[j] = x_post[j] * f32_tr
            f_tr = 1.0
    if mt_stdp:
        f32_tr = np.float32(f_tr)
    else:  # traces keep decaying while plasticity is frozen
        f32_tr = frozen_decay
    for j in range(n_mon):
        x_pre[j] = x_pre[j] * f32_tr
    for j in range(n_ts):
        x_post[j] = x_post[j] * f32_tr
    inh_state[0] = mi_u
    inh_state[1] = mi_ge
    inh_state[2] = mi_ref
    inh_state[3] = ti_u
    inh_state[4] = ti_ge
    inh_state[5] = ti_ref
    return n_mon_out, n_ts_out
