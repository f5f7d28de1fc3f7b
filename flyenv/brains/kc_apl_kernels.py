"""Numba kernels of the Kenyon-cell / APL loop of the olfactory brain, a chunk at a time.

The KC population (2,597 neurons x 2 hemispheres x batch) is where the olfactory
brain spends its time and memory. Written op by op in torch, one 1 ms step is ~30
elementwise passes over (2597, 2B) tensors plus two sparse products, and autograd keeps
two float tensors of that size per step for the backward pass (1.7 GB for 1,000 steps
at batch 32). Here one call runs a whole chunk of steps (one agent step = 10 brain
steps) in compiled loops, and the backward pass recomputes the chunk's forward from the
chunk's starting state and the saved (bool) PN spikes instead of storing it, so the
memory kept per step is the spikes only.

Equations (those of ``flyenv.brains.neurons``, current-based LIF, exact propagator,
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
def _lif_row(j, v, i, ref, s, a, bt, c, th, nref):
    """The LIF update of one neuron over its columns, from the kicked current ``j``
    (the current's store in its own loop: with it in the main loop LLVM does not
    vectorise the row)."""
    one = th / th
    z = one - one
    n = v.shape[0]
    for b in range(n):
        r = ref[b]
        vt = a * v[b] + c * j[b]
        vt = vt if r <= z else z
        spk = vt > th
        v[b] = z if spk else vt
        s[b] = one if spk else z
        ref[b] = nref if spk else max(r - one, z)
    for b in range(n):
        i[b] = bt * j[b]


@njit(cache=True, fastmath=False)
def _kc_apl_step(
    spn, pk_ptr, pk_pre, pk_w, w_ak, w_ka, kc_v, kc_i, kc_ref, apl_v, apl_i, apl_ref, prev,
    kc_par, apl_par, kc_nref, apl_nref, km_ptr, km_post, km_w, xa, j, s_kc, s_apl, xm,
    kc_vprev, kc_j, kc_refp, apl_vprev, apl_j, apl_refp, keep,
):  # fmt: skip
    """One brain step, one KC at a time: the KC's state is read and written once (the
    KC arrays do not fit in L2, so every extra pass over them costs a trip to L3).

    Per KC: gather its PN->KC input from the PN spikes (by postsynaptic KC, in PN order
    as the reference's sparse product; a dense 64-column FMA per edge beats scattering
    the ~10 % of PN events), add the APL term, J = I + x, LIF update, then push its
    spikes to the APL sum and, event-driven, to the MBONs. Separate short loops over
    the columns, each with few arrays, so that every one vectorises.
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
            pa = prev[a]
            for b in range(cols):
                j[b] += w * pa[b]
        ik = kc_i[k]
        for b in range(cols):
            j[b] += ik[b]
        if keep:
            for b in range(cols):
                kc_vprev[k, b] = kc_v[k, b]
            for b in range(cols):
                kc_j[k, b] = j[b]
            for b in range(cols):
                kc_refp[k, b] = kc_ref[k, b]
        _lif_row(
            j, kc_v[k], ik, kc_ref[k], s_kc[k], kc_par[0, k], kc_par[1, k], kc_par[2, k],
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
def _surrogate_row(vprev, j, a, c, th, code, slope, scale, out):
    """``scale x surrogate'(V~ - theta)`` for one row of columns (the branch on the
    surrogate kind stays outside the loops)."""
    one = a / a
    if code == FAST_SIGMOID:
        for b in range(out.shape[0]):
            d = slope * abs(a * vprev[b] + c * j[b] - th) + one
            out[b] = scale / (d * d)
    elif code == SIGMOID:
        for b in range(out.shape[0]):
            sig = one / (one + np.exp(-slope * (a * vprev[b] + c * j[b] - th)))
            out[b] = scale * slope * sig * (one - sig)
    else:
        for b in range(out.shape[0]):
            out[b] = scale * max(one - one, one - slope * abs(a * vprev[b] + c * j[b] - th))


@njit(**_FAST)
def _lif_row_backward(g_s, gv, gi, vprev, j, refp, s, a, bt, c, th, sur, sg, gp, g_par, k):
    """Adjoint of the LIF update of one neuron over its columns.

    In: ``g_s`` gradient on the spikes, ``gv``/``gi`` on the new V and I. Out, in place:
    ``gv`` on the previous V, ``gi`` on the kicked current J (= on the summed kicks x
    and on the previous I); (alpha, beta, c, theta) gradients accumulate into
    ``g_par[:, k]``. ``sg``, ``gp``: work rows. Short separate loops, each with few
    arrays, so that every one of them vectorises (one fused loop does not).
    """
    _surrogate_row(vprev, j, a, c, th, int(sur[0]), sur[1], sur[2], sg)
    n = g_s.shape[0]
    z = a - a
    for b in range(n):
        through = g_s[b] * sg[b]
        gp[b] = (through if s[b] > z else gv[b] + through) if refp[b] <= z else z
    ga = gb = gc = gt = z
    for b in range(n):
        ga += gp[b] * vprev[b]
        gb += gi[b] * j[b]
        gc += gp[b] * j[b]
        gt -= g_s[b] * sg[b] if refp[b] <= z else z
    for b in range(n):
        gi[b] = c * gp[b] + bt * gi[b]
    for b in range(n):
        gv[b] = a * gp[b]
    g_par[0, k] += ga
    g_par[1, k] += gb
    g_par[2, k] += gc
    g_par[3, k] += gt


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
):
    n_steps, _, cols = s_pn.shape
    n_kc = gv.shape[0]
    n_apl = gav.shape[0]
    carry = np.zeros((n_apl, cols), dtype=gv.dtype)  # d loss / d APL spikes via next x_kc
    has_g_s_kc = g_s_kc.shape[0] > 0
    sg = np.empty(cols, dtype=gv.dtype)  # work rows
    gp = np.empty(cols, dtype=gv.dtype)
    g_s = np.empty(cols, dtype=gv.dtype)
    for t in range(n_steps - 1, -1, -1):
        # APL step t: its spikes feed x_kc of step t + 1 (carry) and the outside (g_s_apl)
        for a in range(n_apl):
            for b in range(cols):
                g_s[b] = g_s_apl[t, a, b] + carry[a, b]
                carry[a, b] = 0.0
            _lif_row_backward(
                g_s, gav[a], gai[a], apl_vprev[t, a], apl_j[t, a], apl_refp[t, a], s_apl[t, a],
                apl_par[0, a], apl_par[1, a], apl_par[2, a], apl_par[3, a], apl_sur, sg, gp,
                g_apl_par, a,
            )  # fmt: skip
        g_xa = gai  # after the adjoint step: the gradient on the APL's summed kicks
        # KC step t: spikes go downstream and to the APL; x_kc comes from PNs and the APL
        prev = s_apl[t - 1] if t > 0 else apl_prev
        skc = s_kc[t]
        for k in range(n_kc):
            ak, bk, ck, tk = kc_par[0, k], kc_par[1, k], kc_par[2, k], kc_par[3, k]
            # separate short passes over the row keep the main loop free of inner loops
            if has_g_s_kc:
                for b in range(cols):
                    g_s[b] = g_s_kc[t, k, b]
            else:
                for b in range(cols):
                    g_s[b] = 0.0
            for e in range(km_ptr[k], km_ptr[k + 1]):  # KC->MBON
                gm = g_x_mbon[t, km_post[e]]
                w = km_w[e]
                acc = 0.0
                for b in range(cols):
                    g_s[b] += w * gm[b]
                    acc += skc[k, b] * gm[b]
                if need_km:
                    g_km_w[e] += acc
            for a in range(n_apl):
                w = w_ka[k, a]
                acc = 0.0
                for b in range(cols):
                    g_s[b] += w * g_xa[a, b]
                    acc += skc[k, b] * g_xa[a, b]
                g_w_ka[k, a] += acc
            _lif_row_backward(
                g_s, gv[k], gi[k], kc_vprev[t, k], kc_j[t, k], kc_refp[t, k], skc[k],
                ak, bk, ck, tk, kc_sur, sg, gp, g_kc_par, k,
            )  # fmt: skip
            for a in range(n_apl):
                w = w_ak[a, k]
                acc = 0.0
                for b in range(cols):
                    carry[a, b] += w * gi[k, b]
                    acc += gi[k, b] * prev[a, b]
                g_w_ak[a, k] += acc
            # gi[k] is now the gradient on this KC's summed kicks: to its PN inputs
            for e in range(pk_ptr[k], pk_ptr[k + 1]):
                p = pk_pre[e]
                if need_pn:
                    w = pk_w[e]
                    gpn = g_s_pn[t, p]
                    for b in range(cols):
                        gpn[b] += w * gi[k, b]
                if need_pk:
                    sp = s_pn[t, p]
                    acc = 0.0
                    for b in range(cols):
                        acc += sp[b] * gi[k, b]
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
    sg = np.empty(cols, dtype=gv.dtype)
    gp = np.empty(cols, dtype=gv.dtype)
    for t in range(n_steps - 1, -1, -1):
        for k in range(n):
            _lif_row_backward(
                g_s[t, k], gv[k], gi[k], vprev[t, k], j[t, k], refp[t, k], s[t, k],
                par[0, k], par[1, k], par[2, k], par[3, k], sur, sg, gp, g_par, k,
            )  # fmt: skip
            for b in range(cols):
                g_x[t, k, b] = gi[k, b]
