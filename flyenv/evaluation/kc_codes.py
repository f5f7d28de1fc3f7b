"""Kenyon-cell codes of the conditioning odor panel: how well the PN->KC wiring separates
the odors, for the FlyWire wiring and degree-preserving shuffles of it.

Why this exists: on the held-out pairs of OdorConditioning, brains whose PN->KC block is a
degree-preserving shuffle choose better than the FlyWire wiring
(docs/results/mushroom_body_learning.md). The obvious explanation would be that FlyWire's
structured PN->KC sampling (Zheng et al. 2022, Curr Biol 32:3334) makes the KC codes of
different odors overlap more, so the depression learned for the CS+ also hits the CS-.
This module measures that directly, with no behaviour involved:

1. Each odor of the panel is presented alone, equally to both antennae, at a fixed
   concentration for ``duration_ms`` (as in the conditioning presentations); a KC's code
   entry is its spike count (both hemispheres concatenated).
2. ``overlap``: cosine similarity of two odors' codes (what the KC->MBON depression of one
   odor also does to the other).
3. ``margin``: for a pair (a, b) learned at ``train_concentration`` and met at a test
   concentration c: cos(code_a(train), code_a(c)) - cos(code_a(train), code_b(c)),
   averaged over both members, the pair set and the test concentrations. Large when a
   code learned at one concentration is recognised at another and not confused with the
   other odor.

    python -m flyenv.evaluation.kc_codes --shuffles 0 1 2 3 4
    python -m flyenv.evaluation.kc_codes --by-class --shuffles 0   # per KC class
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

# The brain of the conditioning results (short-trace design) without its plasticity:
# the KC code does not depend on the KC->MBON weights.
CONDITIONING_BRAIN: dict[str, Any] = {"lateral_horn": False, "mbon_dn_init_mv": 0.0}


def kc_codes(
    odors: Sequence[str],
    concentration: float,
    brain_config: dict[str, Any] | None = None,
    duration_ms: float = 500.0,
) -> np.ndarray:
    """(n_odors, 2 n_kc) KC spike counts of each odor presented alone to both antennae."""
    from flyenv.brains.olfactory.policy import BPTT_BRAIN_DEFAULTS, OlfactoryBrainPolicy
    from flyenv.connectome import load_mushroom_body
    from flyenv.connectome.door import OrnFrontEnd

    if concentration < 0 or not np.isfinite(concentration):
        raise ValueError(f"concentration={concentration}; use a finite value >= 0")
    policy = OlfactoryBrainPolicy(**{**BPTT_BRAIN_DEFAULTS, **(brain_config or {})})
    policy.eval()
    brain = policy.brain
    front = OrnFrontEnd(load_mushroom_body().glomeruli)
    rates = front.activation(list(odors), concentration * np.eye(len(odors)))
    rates = torch.as_tensor(rates / front.config.max_rate_hz, dtype=torch.float32)
    n, g = rates.shape
    obs = torch.zeros(n, policy.observation_size)
    obs[:, :g] = rates
    obs[:, g : 2 * g] = rates
    agent_step_ms = brain.config.dt_ms * brain.config.substeps
    steps = max(1, round(duration_ms / agent_step_ms))
    state = policy.init_state(n)
    counts = torch.zeros(n, 2, brain.n_kc)
    with torch.no_grad():
        for _ in range(steps):
            _, state, out = brain.step(obs, state, summary=True)
            counts += out["rate_hz/KC"] * agent_step_ms / 1000.0
    return counts.reshape(n, -1).numpy()


def _cos(x: np.ndarray, y: np.ndarray) -> float:
    norm = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y) / norm if norm > 0 else 0.0


def overlap(codes: np.ndarray, pairs: Sequence[tuple[int, int]]) -> float:
    """Mean cosine similarity of the codes of each pair (rows of ``codes``)."""
    return float(np.mean([_cos(codes[a], codes[b]) for a, b in pairs]))


def margin(
    train_codes: np.ndarray, test_codes: Sequence[np.ndarray], pairs: Sequence[tuple[int, int]]
) -> float:
    """Mean over pairs, both members and test sets of cos(train a, test a) - cos(train a,
    test b) (module docstring)."""
    values = [
        _cos(train_codes[a], test[a]) - _cos(train_codes[a], test[b])
        for test in test_codes
        for i, j in pairs
        for a, b in ((i, j), (j, i))
    ]
    return float(np.mean(values))


def panel_separation(
    brain_config: dict[str, Any] | None = None,
    train_concentration: float = 0.01,
    test_concentrations: Sequence[float] = (0.002, 0.005, 0.02, 0.05),
    pair_set: str = "heldout",
) -> dict[str, float]:
    """Overlap, margin and coding level of the conditioning panel's codes for one brain."""
    from flyenv.tasks.odor_choice import ODOR_PANEL, split_pairs

    train, held = split_pairs(ODOR_PANEL)
    chosen = {"train": train, "heldout": held, "all": train + held}[pair_set]
    index = {o: i for i, o in enumerate(ODOR_PANEL)}
    pairs = [(index[a], index[b]) for a, b in chosen]
    trained = kc_codes(ODOR_PANEL, train_concentration, brain_config)
    tests = [kc_codes(ODOR_PANEL, c, brain_config) for c in test_concentrations]
    return {
        "overlap": overlap(trained, pairs),
        "margin": margin(trained, tests, pairs),
        "coding_level": float((trained > 0).mean()),
        "same_odor_across_concentration": float(
            np.mean([_cos(trained[i], t[i]) for t in tests for i in range(len(ODOR_PANEL))])
        ),
    }


def kc_classes() -> np.ndarray:
    """KC class (lobe system, ``plasticity.kc_lobe``: γ, α'β', αβ) of every KC, in
    population order."""
    from flyenv.brains.olfactory.plasticity import kc_lobe
    from flyenv.connectome import load_mushroom_body

    mb = load_mushroom_body()
    return np.array([kc_lobe(t) for t in mb.neurons.cell_type[mb.populations["KC"]]])


def _classes_and_counts(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(KC classes, (n_odors, n_kc) spike counts of both hemispheres) of ``codes``
    (n_odors, 2 n_kc) from :func:`kc_codes`."""
    classes = kc_classes()
    n_kc = classes.size
    if codes.ndim != 2 or codes.shape[1] != 2 * n_kc:
        raise ValueError(f"codes must have shape (n_odors, {2 * n_kc}), got {codes.shape}")
    return classes, codes[:, :n_kc] + codes[:, n_kc:]


def class_share_per_odor(codes: np.ndarray, kc_class: str = "αβ") -> np.ndarray:
    """(n_odors,) share of each odor's KC spikes (both hemispheres) in one KC class.
    ``codes``: (n_odors, 2 n_kc) from :func:`kc_codes`."""
    classes, counts = _classes_and_counts(codes)
    return counts[:, classes == kc_class].sum(axis=1) / np.maximum(counts.sum(axis=1), 1e-12)


def kc_class_activity(
    codes: np.ndarray, brain_config: dict[str, Any] | None = None
) -> dict[str, dict[str, float]]:
    """Per KC class (lobe system, ``kc_lobe``: γ, α'β', αβ): its KC count, mean PN inputs
    and PN weight per KC (from the PN->KC block the brain was built with, so a shuffle is
    seen as the brain sees it), the fraction of its KCs that spike for any odor of
    ``codes`` and its share of all spikes.
    ``codes``: (n_odors, 2 n_kc) from :func:`kc_codes` with the same ``brain_config``."""
    classes, counts = _classes_and_counts(codes)
    n_kc = classes.size
    from flyenv.brains.olfactory.policy import BPTT_BRAIN_DEFAULTS, OlfactoryBrainPolicy

    layer = OlfactoryBrainPolicy(**{**BPTT_BRAIN_DEFAULTS, **(brain_config or {})}).brain.pn_kc
    post = layer.post.cpu().numpy()
    syn = np.bincount(post, layer.values().detach().abs().cpu().numpy(), minlength=n_kc)
    n_in = np.bincount(post, minlength=n_kc)
    total = max(float(counts.sum()), 1e-12)
    out = {}
    for name in ("γ", "α'β'", "αβ"):
        sel = classes == name
        out[name] = {
            "n_kc": int(sel.sum()),
            "pn_inputs_per_kc": float(n_in[sel].mean()),
            "pn_weight_per_kc": float(syn[sel].mean()),
            "fraction_responding": float((counts[:, sel] > 0).any(axis=0).mean()),
            "share_of_spikes": float(counts[:, sel].sum() / total),
        }
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shuffles", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--pair-set", default="heldout", choices=["train", "heldout", "all"])
    parser.add_argument(
        "--by-class",
        action="store_true",
        help="per KC class (γ, α'β', αβ): PN inputs, responding KCs, spikes",
    )
    parser.add_argument(
        "--keep-kc-input",
        action="store_true",
        help="strength-preserving shuffles (every KC keeps its PN input total)",
    )
    parser.add_argument(
        "--within-kc-type",
        action="store_true",
        help="with --keep-kc-input: PN edges also stay within their KC's cell type",
    )
    args = parser.parse_args(argv)
    if args.within_kc_type and not args.keep_kc_input:
        parser.error("--within-kc-type is a variant of --keep-kc-input: pass both")
    torch.set_num_threads(1)
    shuffle_extra = {"pn_kc_shuffle_keeps_kc_input": True} if args.keep_kc_input else {}
    if args.within_kc_type:
        shuffle_extra["pn_kc_shuffle_within_kc_type"] = True
    wirings = [("FlyWire", dict(CONDITIONING_BRAIN))] + [
        (f"shuffle {s}", {**CONDITIONING_BRAIN, "pn_kc_shuffle_seed": s, **shuffle_extra})
        for s in args.shuffles
    ]
    if args.by_class:
        from flyenv.tasks.odor_choice import ODOR_PANEL

        print("| PN->KC wiring | KC class | KCs | PN inputs / KC | PN weight / KC (mV) | "
              "responding to any panel odor | share of spikes |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for name, cfg in wirings:
            table = kc_class_activity(kc_codes(ODOR_PANEL, 0.01, cfg), cfg)
            for cls, r in table.items():
                print(
                    f"| {name} | {cls} | {r['n_kc']} | {r['pn_inputs_per_kc']:.2f} | "
                    f"{r['pn_weight_per_kc']:.1f} | {r['fraction_responding']:.3f} | "
                    f"{r['share_of_spikes']:.3f} |",
                    flush=True,
                )
        return
    print("| PN->KC wiring | overlap | margin | coding level | same odor across concentration |")
    print("|---|---|---|---|---|")
    for name, cfg in wirings:
        r = panel_separation(cfg, pair_set=args.pair_set)
        print(
            f"| {name} | {r['overlap']:.3f} | {r['margin']:.3f} | {r['coding_level']:.3f} | "
            f"{r['same_odor_across_concentration']:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

__all__ = [
    "class_share_per_odor",
    "kc_class_activity",
    "kc_classes",
    "kc_codes",
    "margin",
    "overlap",
    "panel_separation",
]
