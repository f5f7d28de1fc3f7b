"""A chunk of steps of one LIF population on a known kick sequence, as one autograd node.

In the olfactory brain only the KC <-> APL pair is recurrent; PN, MBON and DN receive
kicks that are known for a whole agent step before they run (PN: constant ORN drive;
MBON: the KC chunk's kicks; DN: MBON and PN spikes). Each of them can therefore run
its ``substeps`` steps in one compiled call (``flyenv.brains.olfactory.kernels``) instead
of one custom autograd node (and ~20 small tensor ops backward) per step: the per-op
overhead of these small populations was half the brain's time. Same equations and
gradients as ``LIFPopulation.step`` (tests/brains/olfactory/test_kc_apl_block.py checks
the whole brain against the step-by-step path). The forward keeps V, J and the refractory
countdown of every step for the backward pass (small populations: no recompute).
"""

from __future__ import annotations

import numpy as np
import torch

from flyenv.brains.core.neurons import LIFCoefficients, LIFPopulation, LIFState
from flyenv.brains.olfactory.kc_apl_block import _np, _per_neuron, _reduce, surrogate_triple
from flyenv.brains.olfactory.kernels import lif_chunk_backward, lif_chunk_forward


class _LIFChunk(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, v, i, ref, alpha, beta, c, theta, ref_steps, sur):  # type: ignore[override]
        n = v.shape[0]
        par = torch.stack([_per_neuron(p, n) for p in (alpha, beta, c, theta)])
        out_v, out_i, out_ref = (t.detach().clone() for t in (v, i, ref))
        s = torch.empty_like(x)
        rec = [torch.empty_like(x) for _ in range(3)]  # V before, J, countdown before
        lif_chunk_forward(
            _np(x), out_v.numpy(), out_i.numpy(), out_ref.numpy(), _np(par), ref_steps,
            s.numpy(), *(r.numpy() for r in rec),
        )  # fmt: skip
        ctx.sur = sur
        ctx.save_for_backward(s, *rec, alpha, beta, c, theta, par)
        ctx.mark_non_differentiable(out_ref)
        ctx.set_materialize_grads(False)
        return s, out_v, out_i, out_ref

    @staticmethod
    def backward(ctx, g_s, g_v, g_i, _g_ref):  # type: ignore[override]
        s, vprev, j, refp, alpha, beta, c, theta, par = ctx.saved_tensors
        npd = s.numpy().dtype
        shape = s.shape[1:]

        def grad_in(g, full_shape, copy):
            if g is None:
                return np.zeros(full_shape, npd)
            out = g.detach().to(s.dtype).contiguous().numpy()
            return out.copy() if copy else out

        gv = grad_in(g_v, shape, True)
        gi = grad_in(g_i, shape, True)
        g_x = np.empty(s.shape, npd)
        g_par = np.zeros((4, shape[0]), npd)
        lif_chunk_backward(
            grad_in(g_s, s.shape, False), vprev.numpy(), j.numpy(), refp.numpy(), s.numpy(),
            _np(par), np.array(ctx.sur, npd), gv, gi, g_x, g_par,
        )  # fmt: skip
        need = ctx.needs_input_grad
        g_coeff = [
            _reduce(g, like) if need[4 + n] else None
            for n, (g, like) in enumerate(zip(g_par, (alpha, beta, c, theta), strict=True))
        ]

        def t(x: np.ndarray, idx: int) -> torch.Tensor | None:
            return torch.from_numpy(x) if need[idx] else None

        return t(g_x, 0), t(gv, 1), t(gi, 2), None, *g_coeff, None, None


def lif_chunk(
    pop: LIFPopulation, x: torch.Tensor, state: LIFState, coeffs: LIFCoefficients
) -> tuple[torch.Tensor, LIFState]:
    """Run ``pop`` (feature-major) for ``T`` steps on kicks ``x`` (T, n, C): spikes
    (T, n, C) and the final state. CPU only, detached reset (``fused_supported``)."""
    dtype = state.v.dtype
    s, v, i, ref = _LIFChunk.apply(
        x.to(dtype).contiguous(), state.v, state.i, state.ref.to(dtype),
        coeffs.alpha, coeffs.beta, coeffs.c, coeffs.theta,
        pop.config.refractory_steps, surrogate_triple(pop),
    )  # fmt: skip
    return s, LIFState(v, i, ref)


__all__ = ["lif_chunk"]
