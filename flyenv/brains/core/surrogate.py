"""Spike nonlinearity with selectable surrogate gradients.

Forward: Heaviside step ``H(x)`` of ``x = V - theta`` (a spike when the membrane is
above threshold). Backward: the derivative of a smooth stand-in, chosen by name:

- ``"fast_sigmoid"``: ``1 / (slope * |x| + 1)^2`` (Zenke & Ganguli 2018, SuperSpike);
- ``"sigmoid"``: ``slope * sig(slope x) * (1 - sig(slope x))``, the derivative of a sigmoid;
- ``"triangle"`` (alias ``"relu"``): ``max(0, 1 - slope * |x|)``, a ReLU-like tent
  (Bellec et al. 2018).

``slope`` is in 1/mV when ``x`` is in mV: larger = narrower surrogate.
"""

from __future__ import annotations

import torch

SURROGATES = ("fast_sigmoid", "sigmoid", "triangle", "relu")


def check_surrogate(name: str) -> str:
    """Return the canonical surrogate name or raise naming the choices."""
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r}; choose one of {SURROGATES}")
    return "triangle" if name == "relu" else name


def surrogate_derivative(x: torch.Tensor, name: str, slope: float) -> torch.Tensor:
    """d(spike)/dx used in the backward pass, evaluated at ``x = V - theta``."""
    name = check_surrogate(name)
    if name == "fast_sigmoid":
        return 1.0 / (slope * x.abs() + 1.0).square()
    if name == "sigmoid":
        sig = torch.sigmoid(slope * x)
        return slope * sig * (1.0 - sig)
    return (1.0 - slope * x.abs()).clamp_min(0.0)


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, name: str, slope: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.name, ctx.slope = name, slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * surrogate_derivative(x, ctx.name, ctx.slope), None, None


def spike(x: torch.Tensor, surrogate: str = "fast_sigmoid", slope: float = 10.0) -> torch.Tensor:
    """Heaviside(x) in the forward pass, the named surrogate derivative backward."""
    return _Spike.apply(x, check_surrogate(surrogate), float(slope))
