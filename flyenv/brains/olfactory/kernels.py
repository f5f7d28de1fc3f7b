"""Numba kernels of the Kenyon-cell / APL loop of the olfactory brain, a chunk at a time.

The KC population (2,597 neurons x 2 hemispheres x batch) is where the olfactory
brain spends its time and memory. Written op by op in torch, one 1 ms step is ~30
elementwise passes over (2597, 2B) tensors plus two sparse products, and autograd keeps
two float tensors of that size per step for the backward pass (1.7 GB for 1,000 steps
at batch 32). Here one call runs a whole chunk of steps (one agent step = 10 brain
steps) in compiled loops, and the backward pass recomputes the chunk's forward from the
chunk's starting state and the saved (bool) PN spikes instead of storing it, so the
memory kept per step is the spikes only.

Equations (those of ``flyenv.brains.core.neurons``, current-based LIF, exact propagator,
spike -> reset to 0 -> ``n_ref`` steps held at 0, reset detached from the gradient)::

    x_kc[k]  = sum_{PN p -> k} w_pk s_pn[p] + sum_a w_ak[a, k] s_apl_prev[a]
    J = I + x;  V~ = active (alpha V + c J);  s = V~ > theta;  V' = (1 - s) V~;  I' = beta J
    x_apl[a] = sum_k w_ka[k, a] s_kc[k]        (then the same LIF step for the APL)

Arrays are float32 or float64 (numba compiles one version per dtype); populations are
(n, columns) row-major, columns = 2 hemispheres x batch.
"""

from __future__ import annotations

import numpy as np
from numba import njit

FAST_SIGMOID, SIGMOID, TRIANGLE = 0, 1, 2
SURROGATE_CODES = {"fast_sigmoid": FAST_SIGMOID, "sigmoid": SIGMOID, "triangle": TRIANGLE}


@njit(cache=True, fastmath=False)
def _lif_update(i_in, v, i, ref, s, par, nref):
    """LIF step of rows (n, C) whose kicks are already summed into ``i_in`` (J = I + x).

    Branch-free selects so that the loop over columns vectorises; ``nref``: refractory
    steps, in the dtype of the state.
    """
    n, cols = v.shape
    one = par[0, 0] / par[0, 0]
    z = one - one
    for k in range(n):
        a, bt, c, th = par[0, k], par[1, k], par[2, k], par[3, k]
        for b in range(cols):
            j = i_in[k, b]
            active = ref[k, b] <= z
            vt = a * v[k, b] + c * j if active else z
            spk = vt > th
            v[k, b] = z if spk else vt
            i[k, b] = bt * j
            s[k, b] = one if spk else z
            ref[k, b] = nref if spk else max(ref[k, b] - one, z)


@njit(cache=True, fastmath=False)
def _record(i_in, v, ref, vprev, j_rec, ref_rec):
    """Keep V, J and the refractory countdown of a step for the backward pass (a
    separate, vectorised pass: folding these stores into the update loop makes it 4x
    slower; a bool "active" record instead of the countdown does not vectorise)."""
    n, cols = v.shape
    for k in range(n):
        for b in range(cols):
            vprev[k, b] = v[k, b]
            j_rec[k, b] = i_in[k, b]
            ref_rec[k, b] = ref[k, b]


@njit(cache=True, fastmath=False)
def _lif_row(j, v, i, ref, s, k, a, bt, c, th, nref):
    """The LIF update of neuron ``k`` (row of the (n, C) state) from its kicked current
    ``j`` (C,). Rows are indexed, not sliced: a slice is a new array whose reference
    count numba updates atomically, which costs more than the row's arithmetic. The
    current's store is in its own loop: in the main loop it stops vectorisation."""
    one = th / th
    z = one - one
    n = v.shape[1]
    for b in range(n):
        r = ref[k, b]
        vt = a * v[k, b] + c * j[b]
        vt = vt if r <= z else z
        spk = vt > th
        v[k, b] = z if spk else vt
        s[k, b] = one if spk else z
        ref[k, b] = nref if spk else max(r - one, z)
    for b in range(n):
        i[k, b] = bt * j[b]


@njit(cache=True, fastmath=False)
def _kc_apl_step(
    spn, pk_ptr, pk_pre, pk_w, w_ak, w_ka, kc_v, kc_i, kc_ref, apl_v, apl_i, apl_ref, prev,
    kc_par, apl_par, kc_nref, apl_nref, km_ptr, km_post, km_w, xa, j, s_kc, s_apl, xm,
    kc_vprev, kc_j, kc_refp, apl_vprev, apl_j, apl_refp, keep,
):  # fmt: skip
    """One brain step, one KC at a time, in one pass over the KC state.

    Per KC: gather its PN->KC input from the PN spikes (by postsynaptic KC, in PN order
    as the reference's sparse product; a dense FMA over the columns per edge, with the
    (P, C) PN spikes in L1, costs less than scattering the ~13 % PN events into rows
    all over the KC array), add the APL term, J = I + x, LIF update; a KC that spiked in
    any column then adds its spike row to the APL sum and to its MBONs (dense over the
    columns: a silent column adds an exact 0; the per-column event test cost more than
    the adds). Separate short loops over the columns, each with few arrays, so that
    every one vectorises; rows are indexed, never sliced (``_lif_row``).
    """
    n_kc, cols = kc_v.shape
    n_apl = apl_v.shape[0]
    z = kc_nref - kc_nref
    for a in range(n_apl):
        for b in range(cols):
            xa[a, b] = apl_i[a, b]
    for k in range(n_kc):
        for b in range(cols):
            j[b] = z
        for e in range(pk_ptr[k], pk_ptr[k + 1]):  # PN->KC
            w = pk_w[e]
            p = pk_pre[e]
            for b in range(cols):
                j[b] += w * spn[p, b]
        for a in range(n_apl):  # APL->KC, the previous step's APL spikes
            w = w_ak[a, k]
            for b in range(cols):
                j[b] += w * prev[a, b]
        for b in range(cols):
            j[b] += kc_i[k, b]
        if keep:
            for b in range(cols):
                kc_vprev[k, b] = kc_v[k, b]
            for b in range(cols):
                kc_j[k, b] = j[b]
            for b in range(cols):
                kc_refp[k, b] = kc_ref[k, b]
        _lif_row(
            j, kc_v, kc_i, kc_ref, s_kc, k, kc_par[0, k], kc_par[1, k], kc_par[2, k],
            kc_par[3, k], kc_nref,
        )  # fmt: skip
        n_spk = z
        for b in range(cols):
            n_spk += s_kc[k, b]
        if n_spk == z:  # most KCs are silent in most steps: nothing to send
            continue
        for a in range(n_apl):  # KC->APL
            w = w_ka[k, a]
            for b in range(cols):
                xa[a, b] += w * s_kc[k, b]
        # KC->MBON: each MBON sums its inputs in KC order, as the reference's sparse
        # product (a silent column adds an exact 0)
        for e in range(km_ptr[k], km_ptr[k + 1]):
            w = km_w[e]
            m = km_post[e]
            for b in range(cols):
                xm[m, b] += w * s_kc[k, b]
    if keep:
        _record(xa, apl_v, apl_ref, apl_vprev, apl_j, apl_refp)
    _lif_update(xa, apl_v, apl_i, apl_ref, s_apl, apl_par, apl_nref)


@njit(cache=True, fastmath=False)
def kc_apl_forward(
    s_pn,  # (T, P, C) 0/1
    pk_ptr,  # (K + 1,) CSR of PN->KC by KC (incoming edges, in PN order)
    pk_pre,  # (nnz,) presynaptic PN of each edge
    pk_w,  # (nnz,) signed weight, in this CSR's order (the layer's post-major order)
    w_ak,  # (A, K) APL->KC
    w_ka,  # (K, A) KC->APL
    kc_v,
    kc_i,
    kc_ref,  # (K, C) state, updated in place
    apl_v,
    apl_i,
    apl_ref,  # (A, C) state, updated in place
    apl_prev,  # (A, C) APL spikes of the step before the chunk
    kc_par,  # (4, K): alpha, beta, c, theta
    apl_par,  # (4, A)
    kc_ref_steps,
    apl_ref_steps,
    km_ptr,  # (K + 1,) CSR of KC->MBON by KC (outgoing edges)
    km_post,  # (nnz,) postsynaptic MBON of each edge
    km_w,  # (nnz,) signed weight, in this CSR's order
    s_kc,  # (T, K, C) out
    s_apl,  # (T, A, C) out
    x_mbon,  # (T, M, C) out, zeros in: the summed KC->MBON kicks of each step
    # backward-pass records (size-0 arrays to skip): (T, K, C) and (T, A, C)
    kc_vprev,
    kc_j,
    kc_refp,
    apl_vprev,
    apl_j,
    apl_refp,
):
    n_steps, _, cols = s_pn.shape
    keep = kc_vprev.shape[0] > 0
    xa = np.zeros((apl_v.shape[0], cols), dtype=kc_v.dtype)
    j = np.zeros(cols, dtype=kc_v.dtype)
    kc_nref = np.full(1, kc_ref_steps, dtype=kc_v.dtype)[0]
    apl_nref = np.full(1, apl_ref_steps, dtype=kc_v.dtype)[0]
    for t in range(n_steps):
        prev = s_apl[t - 1] if t > 0 else apl_prev
        r = t if keep else 0
        _kc_apl_step(
            s_pn[t], pk_ptr, pk_pre, pk_w, w_ak, w_ka, kc_v, kc_i, kc_ref, apl_v, apl_i,
            apl_ref, prev, kc_par, apl_par, kc_nref, apl_nref, km_ptr, km_post, km_w, xa, j,
            s_kc[t], s_apl[t], x_mbon[t], kc_vprev[r], kc_j[r], kc_refp[r], apl_vprev[r],
            apl_j[r], apl_refp[r], keep,
        )  # fmt: skip


# Backward kernels: reassociation lets the per-neuron gradient sums vectorise (the
# gradient then depends on the summation order, not on anything else); "numpy" error
# model: no zero-division checks, which would stop vectorisation.
_FAST = dict(cache=True, fastmath={"reassoc", "contract", "nsz", "arcp"}, error_model="numpy")


@njit(**_FAST)
def _surrogate(vprev, j, par, code, slope, scale, out):
    """``scale x surrogate'(V~ - theta)`` of a population (n, C) (the branch on the
    surrogate kind stays outside the loops)."""
    n, cols = out.shape
    for k in range(n):
        a, c, th = par[0, k], par[2, k], par[3, k]
        one = a / a
        if code == FAST_SIGMOID:
            for b in range(cols):
                d = slope * abs(a * vprev[k, b] + c * j[k, b] - th) + one
                out[k, b] = scale / (d * d)
        elif code == SIGMOID:
            for b in range(cols):
                sig = one / (one + np.exp(-slope * (a * vprev[k, b] + c * j[k, b] - th)))
                out[k, b] = scale * slope * sig * (one - sig)
        else:
            for b in range(cols):
                u = one - slope * abs(a * vprev[k, b] + c * j[k, b] - th)
                out[k, b] = scale * max(one - one, u)


@njit(**_FAST)
def _lif_backward(g_s, gv, gi, vprev, j, refp, s, par, sur, sg, gp, g_par):
    """Adjoint of one LIF update of a whole population (n, C).

    In: ``g_s`` gradient on the spikes, ``gv``/``gi`` on the new V and I. Out, in place:
    ``gv`` on the previous V, ``gi`` on the kicked current J (= on the summed kicks x
    and on the previous I); (alpha, beta, c, theta) gradients accumulate into
    ``g_par``. ``sg``, ``gp``: (n, C) work arrays. Separate passes, each with few
    arrays, so that every inner loop vectorises (one fused loop does not).
    """
    _surrogate(vprev, j, par, int(sur[0]), sur[1], sur[2], sg)
    n, cols = g_s.shape
    z = par[0, 0] - par[0, 0]
    for k in range(n):
        for b in range(cols):
            through = g_s[k, b] * sg[k, b]
            gp[k, b] = (through if s[k, b] > z else gv[k, b] + through) if refp[k, b] <= z else z
    for k in range(n):
        ga = gb = gc = gt = z
        for b in range(cols):
            ga += gp[k, b] * vprev[k, b]
            gb += gi[k, b] * j[k, b]
            gc += gp[k, b] * j[k, b]
            gt -= g_s[k, b] * sg[k, b] if refp[k, b] <= z else z
        g_par[0, k] += ga
        g_par[1, k] += gb
        g_par[2, k] += gc
        g_par[3, k] += gt
    for k in range(n):
        c, bt = par[2, k], par[1, k]
        for b in range(cols):
            gi[k, b] = c * gp[k, b] + bt * gi[k, b]
    for k in range(n):
        a = par[0, k]
        for b in range(cols):
            gv[k, b] = a * gp[k, b]


@njit(**_FAST)
def kc_apl_backward(
    s_pn,  # (T, P, C) 0/1 (as in the forward)
    pk_ptr,  # PN->KC by KC, as in the forward
    pk_pre,
    pk_w,
    w_ak,
    w_ka,
    apl_prev,  # (A, C) APL spikes before the chunk
    s_kc,  # (T, K, C) recomputed forward records
    s_apl,
    kc_vprev,
    kc_j,
    kc_refp,
    apl_vprev,
    apl_j,
    apl_refp,
    kc_par,
    apl_par,
    kc_sur,  # (code, slope, scale) of the KC surrogate
    apl_sur,
    km_ptr,
    km_post,
    km_w,
    g_s_kc,  # (T, K, C) gradient on the KC spikes from outside (size 0: none)
    g_x_mbon,  # (T, M, C) gradient on the KC->MBON kicks
    g_s_apl,  # (T, A, C)
    gv,
    gi,  # (K, C) in: gradient on the final KC state; out: on the initial state
    gav,
    gai,  # (A, C) same for the APL
    need_pn,
    need_pk,
    need_km,
    g_s_pn,  # (T, P, C) out (zeros in)
    g_pk_w,  # (nnz,) out (zeros in), in the order of pk_w
    g_km_w,  # (nnz,) out (zeros in), in the CSR order of km_w
    g_w_ak,  # (A, K) out
    g_w_ka,  # (K, A) out
    g_kc_par,  # (4, K) out
    g_apl_par,  # (4, A) out
    g_apl_prev,  # (A, C) out: gradient on the APL spikes before the chunk
    work,  # (3, K, C) work arrays
):
    n_steps, _, cols = s_pn.shape
    n_kc = gv.shape[0]
    n_apl = gav.shape[0]
    carry = np.zeros((n_apl, cols), dtype=gv.dtype)  # d loss / d APL spikes via next x_kc
    has_g_s_kc = g_s_kc.shape[0] > 0
    z = kc_par[0, 0] - kc_par[0, 0]  # accumulators in the arrays' dtype
    g_s, sg, gp = work[0], work[1], work[2]  # (K, C) each
    ga_s = np.empty((n_apl, cols), dtype=gv.dtype)
    ga_sg = np.empty((n_apl, cols), dtype=gv.dtype)
    ga_gp = np.empty((n_apl, cols), dtype=gv.dtype)
    for t in range(n_steps - 1, -1, -1):
        # APL step t: its spikes feed x_kc of step t + 1 (carry) and the outside (g_s_apl)
        for a in range(n_apl):
            for b in range(cols):
                ga_s[a, b] = g_s_apl[t, a, b] + carry[a, b]
                carry[a, b] = z
        _lif_backward(
            ga_s, gav, gai, apl_vprev[t], apl_j[t], apl_refp[t], s_apl[t], apl_par, apl_sur,
            ga_sg, ga_gp, g_apl_par,
        )  # fmt: skip
        g_xa = gai  # after the adjoint step: the gradient on the APL's summed kicks
        # KC step t. Spikes went to the MBONs and the APL: gradient on them, per KC
        skc = s_kc[t]
        g_xm = g_x_mbon[t]
        for k in range(n_kc):
            if has_g_s_kc:
                for b in range(cols):
                    g_s[k, b] = g_s_kc[t, k, b]
            else:
                for b in range(cols):
                    g_s[k, b] = z
            for e in range(km_ptr[k], km_ptr[k + 1]):  # KC->MBON
                m = km_post[e]
                w = km_w[e]
                for b in range(cols):
                    g_s[k, b] += w * g_xm[m, b]
                if need_km:
                    acc = z
                    for b in range(cols):
                        acc += skc[k, b] * g_xm[m, b]
                    g_km_w[e] += acc
            for a in range(n_apl):  # KC->APL
                w = w_ka[k, a]
                acc = z
                for b in range(cols):
                    g_s[k, b] += w * g_xa[a, b]
                    acc += skc[k, b] * g_xa[a, b]
                g_w_ka[k, a] += acc
        _lif_backward(
            g_s, gv, gi, kc_vprev[t], kc_j[t], kc_refp[t], skc, kc_par, kc_sur, sg, gp,
            g_kc_par,
        )  # fmt: skip
        # gi is now the gradient on the KCs' summed kicks: to the APL and the PNs
        prev = s_apl[t - 1] if t > 0 else apl_prev
        spn = s_pn[t]
        gpn = g_s_pn[t]
        for k in range(n_kc):
            for a in range(n_apl):
                w = w_ak[a, k]
                acc = z
                for b in range(cols):
                    carry[a, b] += w * gi[k, b]
                    acc += gi[k, b] * prev[a, b]
                g_w_ak[a, k] += acc
            for e in range(pk_ptr[k], pk_ptr[k + 1]):
                p = pk_pre[e]
                if need_pn:
                    w = pk_w[e]
                    for b in range(cols):
                        gpn[p, b] += w * gi[k, b]
                if need_pk:
                    acc = z
                    for b in range(cols):
                        acc += spn[p, b] * gi[k, b]
                    g_pk_w[e] += acc
    g_apl_prev[:, :] = carry


@njit(cache=True, fastmath=False)
def lif_chunk_forward(x, v, i, ref, par, ref_steps, s, vprev, j_rec, ref_rec):
    """``T`` LIF steps of one population on a known kick sequence ``x`` (T, N, C):
    state ``v``, ``i``, ``ref`` (N, C) updated in place, spikes to ``s`` (T, N, C), and
    the backward-pass records (T, N, C) (size-0 arrays to skip)."""
    keep = vprev.shape[0] > 0
    nref = np.full(1, ref_steps, dtype=v.dtype)[0]
    n, cols = v.shape
    for t in range(x.shape[0]):
        xt = x[t]
        for k in range(n):  # J = I + x, in place
            for b in range(cols):
                i[k, b] += xt[k, b]
        if keep:
            _record(i, v, ref, vprev[t], j_rec[t], ref_rec[t])
        _lif_update(i, v, i, ref, s[t], par, nref)


@njit(**_FAST)
def lif_chunk_backward(g_s, vprev, j, refp, s, par, sur, gv, gi, g_x, g_par):
    """Adjoint of ``lif_chunk_forward``: ``g_s`` (T, N, C) gradient on the spikes;
    ``gv``, ``gi`` (N, C): in, on the final state, out, on the initial one; ``g_x``
    (T, N, C) out: on the kicks; ``g_par`` (4, N) accumulates (alpha, beta, c, theta)."""
    n_steps, n, cols = g_s.shape
    sg = np.empty((n, cols), dtype=gv.dtype)
    gp = np.empty((n, cols), dtype=gv.dtype)
    for t in range(n_steps - 1, -1, -1):
        _lif_backward(g_s[t], gv, gi, vprev[t], j[t], refp[t], s[t], par, sur, sg, gp, g_par)
        g_x[t, :, :] = gi
