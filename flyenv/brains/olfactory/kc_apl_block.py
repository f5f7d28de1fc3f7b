"""The KC <-> APL loop over a chunk of brain steps as one autograd node (CPU, numba).

``kc_apl_chunk`` is a drop-in for running ``substeps`` steps of

    x_kc = PN->KC(s_pn) + APL->KC(s_apl_prev);  KC LIF;  APL LIF(KC->APL(s_kc))

with ``LIFPopulation.step`` and ``ConnectomeLinear.forward_t`` (the reference path in
``OlfactoryBrain``): same equations, same gradients (surrogate spikes, detached reset),
checked against it in ``tests/brains/olfactory/test_kc_apl_block.py``. The forward pass
runs the whole chunk in compiled code; the backward pass recomputes the chunk from its
starting state (saved anyway, it is the previous chunk's output) and runs the adjoint
recurrence backwards in time (``flyenv.brains.olfactory.kernels``). Gradients reach the PN spikes,
the initial KC/APL state, the KC and APL time constants and thresholds, and the edge
values of the three layers (PN->KC only when it is learnable).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch

from flyenv.brains.core.connectome_layer import ConnectomeLinear
from flyenv.brains.core.neurons import LIFCoefficients, LIFPopulation, LIFState
from flyenv.brains.core.surrogate import check_surrogate
from flyenv.brains.olfactory.kernels import SURROGATE_CODES, kc_apl_backward, kc_apl_forward


@dataclass(frozen=True)
class _Wiring:
    pn_kc: ConnectomeLinear
    apl_kc: ConnectomeLinear
    kc_apl: ConnectomeLinear
    kc_mbon: ConnectomeLinear
    want_kc_spikes: bool  # return the KC spikes (records, activity losses) or not
    kc_ref_steps: int
    apl_ref_steps: int
    kc_sur: tuple[float, float, float]  # surrogate code, slope (1/mV), scale
    apl_sur: tuple[float, float, float]


def surrogate_triple(pop: LIFPopulation) -> tuple[float, float, float]:
    """(kernel code, slope 1/mV, scale) of a population's surrogate gradient."""
    cfg = pop.config
    return (
        float(SURROGATE_CODES[check_surrogate(cfg.surrogate)]),
        cfg.slope_per_mv,
        cfg.surrogate_scale,
    )


def fused_supported(pops: tuple[LIFPopulation, ...], *tensors: torch.Tensor) -> bool:
    """Whether the fused kernels apply: CPU float tensors, detached reset, no LoRA."""
    if not all(pop.config.detach_reset for pop in pops):
        return False
    return all(
        t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64) for t in tensors
    )


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def _per_neuron(x: torch.Tensor, n: int) -> torch.Tensor:
    return x.detach().reshape(-1).expand(n) if x.numel() == 1 else x.detach().reshape(n)


def _reduce(g: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """Per-neuron gradient (n,) -> the shape of the coefficient tensor it belongs to."""
    out = torch.from_numpy(np.ascontiguousarray(g))
    return (out.sum() if like.numel() == 1 else out).reshape(like.shape).to(like.dtype)


_SCRATCH = threading.local()


def _scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A per-thread work array reused across backward calls: the recomputed chunk
    (tens of MB) would otherwise be fresh memory, page-faulted in, on every call."""
    cache = _SCRATCH.__dict__.setdefault("arrays", {})
    arr = cache.get(name)
    if arr is None or arr.shape != shape or arr.dtype != dtype:
        arr = cache[name] = np.empty(shape, dtype)
    return arr


def _csr_by_pre(layer: ConnectomeLinear, values: torch.Tensor):
    """A layer as a CSR by presynaptic neuron (outgoing edges): pointers, targets,
    weights (the kernels' edge order; ``layer._perm`` maps it to the layer's)."""
    return layer._crow.numpy(), layer._col.numpy(), _np(values[layer._perm])


def _csr_by_post(layer: ConnectomeLinear, values: torch.Tensor):
    """A layer as a CSR by postsynaptic neuron (incoming edges, in presynaptic order):
    the layer's own edge order, so gradients on its values need no permutation."""
    return layer._crow_t.numpy(), layer._col_t.numpy(), _np(values)


def _dense(layer: ConnectomeLinear, values: torch.Tensor, transpose: bool) -> np.ndarray:
    """Small dense weight matrix of a layer with few pre or post neurons (the APL)."""
    w = np.zeros((layer.n_pre, layer.n_post), dtype=_np(values).dtype)
    w[layer.pre.numpy(), layer.post.numpy()] = _np(values)
    return np.ascontiguousarray(w.T if transpose else w)


class _KCAPLChunk(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        s_pn: torch.Tensor,  # (T, P, C)
        kc_v: torch.Tensor,
        kc_i: torch.Tensor,
        kc_ref: torch.Tensor,
        apl_v: torch.Tensor,
        apl_i: torch.Tensor,
        apl_ref: torch.Tensor,
        apl_prev: torch.Tensor,
        kc_alpha: torch.Tensor,
        kc_beta: torch.Tensor,
        kc_c: torch.Tensor,
        kc_theta: torch.Tensor,
        apl_alpha: torch.Tensor,
        apl_beta: torch.Tensor,
        apl_c: torch.Tensor,
        apl_theta: torch.Tensor,
        pk_values: torch.Tensor,
        ak_values: torch.Tensor,
        ka_values: torch.Tensor,
        km_values: torch.Tensor,
        wiring: _Wiring,
    ):
        n_steps, _, cols = s_pn.shape
        n_kc, n_apl = kc_v.shape[0], apl_v.shape[0]
        dtype = kc_v.dtype
        kc_par = torch.stack([_per_neuron(x, n_kc) for x in (kc_alpha, kc_beta, kc_c, kc_theta)])
        apl_par = torch.stack(
            [_per_neuron(x, n_apl) for x in (apl_alpha, apl_beta, apl_c, apl_theta)]
        )
        out_kc_v, out_kc_i, out_kc_ref = (x.detach().clone() for x in (kc_v, kc_i, kc_ref))
        out_apl_v, out_apl_i, out_apl_ref = (x.detach().clone() for x in (apl_v, apl_i, apl_ref))
        if wiring.want_kc_spikes:
            s_kc = torch.empty(n_steps, n_kc, cols, dtype=dtype)
            s_kc_np = s_kc.numpy()
        else:  # the KC spikes stay inside: one reused buffer, no tensor
            s_kc = torch.empty(0, dtype=dtype)
            s_kc_np = _scratch("forward_s_kc", (n_steps, n_kc, cols), kc_v.numpy().dtype)
        s_apl = torch.empty(n_steps, n_apl, cols, dtype=dtype)
        x_mbon = torch.zeros(n_steps, wiring.kc_mbon.n_post, cols, dtype=dtype)
        dense = dict(
            w_ak=_dense(wiring.apl_kc, ak_values, transpose=False),
            w_ka=_dense(wiring.kc_apl, ka_values, transpose=False),
        )
        spn = _np(s_pn)
        z = np.empty((0, 0, 0), dtype=spn.dtype)
        kc_apl_forward(
            spn, *_csr_by_post(wiring.pn_kc, pk_values),
            dense["w_ak"], dense["w_ka"],
            out_kc_v.numpy(), out_kc_i.numpy(), out_kc_ref.numpy(),
            out_apl_v.numpy(), out_apl_i.numpy(), out_apl_ref.numpy(), _np(apl_prev),
            _np(kc_par), _np(apl_par), wiring.kc_ref_steps, wiring.apl_ref_steps,
            *_csr_by_pre(wiring.kc_mbon, km_values), s_kc_np, s_apl.numpy(), x_mbon.numpy(),
            z, z, z, z, z, z,
        )  # fmt: skip
        ctx.wiring = wiring
        ctx.dense = dense
        ctx.save_for_backward(
            s_pn.detach().to(torch.bool),
            kc_v, kc_i, kc_ref, apl_v, apl_i, apl_ref, apl_prev,
            kc_alpha, kc_beta, kc_c, kc_theta, apl_alpha, apl_beta, apl_c, apl_theta,
            pk_values, km_values,
        )  # fmt: skip
        ctx.mark_non_differentiable(out_kc_ref, out_apl_ref)
        ctx.set_materialize_grads(False)
        return (
            s_kc,
            x_mbon,
            s_apl,
            out_kc_v,
            out_kc_i,
            out_kc_ref,
            out_apl_v,
            out_apl_i,
            out_apl_ref,
        )

    @staticmethod
    def backward(  # type: ignore[override]
        ctx, g_s_kc, g_x_mbon, g_s_apl, g_kc_v, g_kc_i, _g_kc_ref, g_apl_v, g_apl_i, _g_apl_ref
    ):
        (
            s_pn_b, kc_v, kc_i, kc_ref, apl_v, apl_i, apl_ref, apl_prev,
            kc_alpha, kc_beta, kc_c, kc_theta, apl_alpha, apl_beta, apl_c, apl_theta,
            pk_values, km_values,
        ) = ctx.saved_tensors  # fmt: skip
        wiring: _Wiring = ctx.wiring
        dtype = kc_v.dtype
        npd = kc_v.detach().numpy().dtype
        n_kc, cols = kc_v.shape
        n_apl = apl_v.shape[0]
        n_steps = s_pn_b.shape[0]
        spn = s_pn_b.numpy().astype(npd)
        kc_par = _np(
            torch.stack([_per_neuron(x, n_kc) for x in (kc_alpha, kc_beta, kc_c, kc_theta)])
        )
        apl_par = _np(
            torch.stack([_per_neuron(x, n_apl) for x in (apl_alpha, apl_beta, apl_c, apl_theta)])
        )
        pk_ptr, pk_pre, pk_w = _csr_by_post(wiring.pn_kc, pk_values)
        km_ptr, km_post, km_w = _csr_by_pre(wiring.kc_mbon, km_values)
        n_mbon = wiring.kc_mbon.n_post
        w_ak, w_ka = ctx.dense["w_ak"], ctx.dense["w_ka"]
        # recompute the chunk, keeping what the adjoint needs
        kc_shape, apl_shape = (n_steps, n_kc, cols), (n_steps, n_apl, cols)
        rec = {
            name: _scratch(name, shape, npd)
            for name, shape in (
                ("s_kc", kc_shape), ("kc_vprev", kc_shape), ("kc_j", kc_shape),
                ("kc_refp", kc_shape), ("s_apl", apl_shape), ("apl_vprev", apl_shape),
                ("apl_j", apl_shape), ("apl_refp", apl_shape),
            )
        }  # fmt: skip
        state = []  # the chunk's start state, copied into reused work arrays
        for name, x in zip(
            ("v", "i", "ref", "av", "ai", "aref"),
            (kc_v, kc_i, kc_ref, apl_v, apl_i, apl_ref),
            strict=True,
        ):
            work = _scratch("start_" + name, tuple(x.shape), npd)
            work[...] = _np(x)
            state.append(work)
        kc_apl_forward(
            spn, pk_ptr, pk_pre, pk_w, w_ak, w_ka, *state, _np(apl_prev), kc_par, apl_par,
            wiring.kc_ref_steps, wiring.apl_ref_steps, km_ptr, km_post, km_w,
            rec["s_kc"], rec["s_apl"], np.zeros((n_steps, n_mbon, cols), npd),
            rec["kc_vprev"], rec["kc_j"], rec["kc_refp"],
            rec["apl_vprev"], rec["apl_j"], rec["apl_refp"],
        )  # fmt: skip

        def grad_in(g: torch.Tensor | None, shape: tuple[int, ...], copy: bool = True):
            if g is None:
                return np.zeros(shape, npd)
            out = g.detach().to(dtype).contiguous().numpy()
            return out.copy() if copy else out  # the kernel updates gv, gi, gav, gai in place

        gv = grad_in(g_kc_v, (n_kc, cols))
        gi = grad_in(g_kc_i, (n_kc, cols))
        gav = grad_in(g_apl_v, (n_apl, cols))
        gai = grad_in(g_apl_i, (n_apl, cols))
        has_g_s_kc = g_s_kc is not None and g_s_kc.numel() > 0
        g_skc = grad_in(g_s_kc, (0, 0, 0), copy=False) if has_g_s_kc else np.zeros((0, 0, 0), npd)
        g_xm = grad_in(g_x_mbon, (n_steps, n_mbon, cols), copy=False)
        g_sapl = grad_in(g_s_apl, (n_steps, n_apl, cols), copy=False)
        need = ctx.needs_input_grad
        g_spn = np.zeros(spn.shape, npd)
        g_pk = np.zeros(pk_w.shape, npd)
        g_km = np.zeros(km_w.shape, npd)
        g_w_ak = np.zeros(w_ak.shape, npd)
        g_w_ka = np.zeros(w_ka.shape, npd)
        g_kc_par = np.zeros((4, n_kc), npd)
        g_apl_par = np.zeros((4, n_apl), npd)
        g_apl_prev = np.zeros((n_apl, cols), npd)
        kc_apl_backward(
            spn, pk_ptr, pk_pre, pk_w, w_ak, w_ka, _np(apl_prev),
            rec["s_kc"], rec["s_apl"], rec["kc_vprev"], rec["kc_j"], rec["kc_refp"],
            rec["apl_vprev"], rec["apl_j"], rec["apl_refp"], kc_par, apl_par,
            np.array(wiring.kc_sur, npd), np.array(wiring.apl_sur, npd),
            km_ptr, km_post, km_w, g_skc, g_xm, g_sapl, gv, gi, gav, gai,
            bool(need[0]), bool(need[16]), bool(need[19]),
            g_spn, g_pk, g_km, g_w_ak, g_w_ka, g_kc_par, g_apl_par, g_apl_prev,
            _scratch("backward_work", (3, n_kc, cols), npd),
        )  # fmt: skip

        def t(x: np.ndarray, i: int) -> torch.Tensor | None:
            return torch.from_numpy(x) if need[i] else None

        def layer_order(g: np.ndarray, layer: ConnectomeLinear) -> np.ndarray:
            out = np.empty_like(g)  # from the kernel's presynaptic-major edge order
            out[layer._perm.numpy()] = g
            return out

        g_km = layer_order(g_km, wiring.kc_mbon) if need[19] else g_km
        ak, ka = wiring.apl_kc, wiring.kc_apl
        g_ak = torch.from_numpy(g_w_ak[ak.pre.numpy(), ak.post.numpy()]) if need[17] else None
        g_ka = torch.from_numpy(g_w_ka[ka.pre.numpy(), ka.post.numpy()]) if need[18] else None
        coeff = (kc_alpha, kc_beta, kc_c, kc_theta, apl_alpha, apl_beta, apl_c, apl_theta)
        g_coeff = [
            _reduce(g, like) if need[8 + n] else None
            for n, (g, like) in enumerate(zip([*g_kc_par, *g_apl_par], coeff, strict=True))
        ]
        return (
            t(g_spn, 0), t(gv, 1), t(gi, 2), None, t(gav, 4), t(gai, 5), None, t(g_apl_prev, 7),
            *g_coeff, t(g_pk, 16), g_ak, g_ka, t(g_km, 19), None,
        )  # fmt: skip


def kc_apl_chunk(
    s_pn: torch.Tensor,
    kc: LIFPopulation,
    apl: LIFPopulation,
    kc_state: LIFState,
    apl_state: LIFState,
    apl_prev: torch.Tensor,
    kc_coeffs: LIFCoefficients,
    apl_coeffs: LIFCoefficients,
    pn_kc: ConnectomeLinear,
    apl_kc: ConnectomeLinear,
    kc_apl: ConnectomeLinear,
    kc_mbon: ConnectomeLinear,
    pk_values: torch.Tensor,
    ak_values: torch.Tensor,
    ka_values: torch.Tensor,
    km_values: torch.Tensor,
    want_kc_spikes: bool = False,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, LIFState, LIFState]:
    """Run ``T`` KC/APL steps on PN spikes ``s_pn`` (T, n_PN, C) (feature-major).

    Returns the KC spikes (T, n_KC, C) if ``want_kc_spikes`` (else None: they never
    leave the kernel), the KC->MBON kicks (T, n_MBON, C), the APL spikes (T, n_APL, C)
    and the final KC and APL states. ``apl_prev`` (n_APL, C): APL spikes of the step
    before the chunk.
    """
    if any(lay.lora_rank for lay in (pn_kc, apl_kc, kc_apl, kc_mbon)):
        raise ValueError("kc_apl_chunk does not support LoRA terms; use the reference path")
    dtype = kc_state.v.dtype

    wiring = _Wiring(
        pn_kc, apl_kc, kc_apl, kc_mbon, want_kc_spikes,
        kc.config.refractory_steps, apl.config.refractory_steps,
        surrogate_triple(kc), surrogate_triple(apl),
    )  # fmt: skip
    out = _KCAPLChunk.apply(
        s_pn.to(dtype),
        kc_state.v, kc_state.i, kc_state.ref.to(dtype),
        apl_state.v, apl_state.i, apl_state.ref.to(dtype), apl_prev.to(dtype),
        kc_coeffs.alpha, kc_coeffs.beta, kc_coeffs.c, kc_coeffs.theta,
        apl_coeffs.alpha, apl_coeffs.beta, apl_coeffs.c, apl_coeffs.theta,
        pk_values.to(dtype), ak_values.to(dtype), ka_values.to(dtype), km_values.to(dtype),
        wiring,
    )  # fmt: skip
    s_kc, x_mbon, s_apl, kv, ki, kref, av, ai, aref = out
    s_kc = s_kc if want_kc_spikes else None
    return s_kc, x_mbon, s_apl, LIFState(kv, ki, kref), LIFState(av, ai, aref)


__all__ = ["fused_supported", "kc_apl_chunk"]
