"""Connectome controls and parameter recovery of the whole-brain student.

- :func:`connectome_control`: the student's wiring in a control run: ``"true"`` (the data's
  connectome), ``"shuffled"`` (a degree-preserving shuffle: every edge keeps its
  presynaptic neuron, signed synapse count and so Dale's law, and the postsynaptic ends are
  permuted among all edges, so every neuron keeps its out-degree and its in-degree; the few
  self-loops this makes are dropped and duplicate edges merged) or ``"lowrank_only"`` (no
  sparse connectome: the student's recurrence is its learnable low-rank term alone).
- :func:`load_teacher_parameters`: put a synthetic teacher's drive weights, bias and
  low-rank factors into a model of its class (the oracle; a student started at the
  teacher).
- :func:`recovery_scores`: Pearson correlation between a fitted student's drive weights
  (input Linear), drive bias and effective low-rank weight ``lora_a @ lora_b / rank`` and
  the synthetic teacher's (``teacher_synthetic.npz``,
  :func:`flyenv.connectome.synthetic_whole_brain.teacher_parameters`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from flyenv.connectome.shuffle import degree_preserving_shuffle

CONNECTOMES = ("true", "shuffled", "lowrank_only")


def shuffle_connectome(signed_counts: sp.spmatrix, seed: int) -> sp.csr_matrix:
    """Degree-preserving shuffle (module docstring), self-loops dropped."""
    return degree_preserving_shuffle(signed_counts, seed, drop_self_loops=True)


def connectome_control(signed_counts: sp.spmatrix, kind: str, seed: int) -> sp.csr_matrix:
    """The signed (pre x post) synapse counts a student of control ``kind`` is built on."""
    if kind == "true":
        return sp.csr_matrix(signed_counts)
    if kind == "shuffled":
        return shuffle_connectome(signed_counts, seed)
    if kind == "lowrank_only":
        return sp.csr_matrix(signed_counts.shape, dtype=np.float32)
    raise ValueError(f"connectome must be one of {CONNECTOMES}, got {kind!r}")


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64).ravel() - np.mean(a)
    b = np.asarray(b, np.float64).ravel() - np.mean(b)
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


def lowrank_weight(lora_a: np.ndarray, lora_b: np.ndarray) -> np.ndarray:
    """Effective (pre x post) low-rank weight in mV per spike."""
    rank = lora_a.shape[1]
    return (lora_a @ lora_b) / max(rank, 1)


def load_teacher_parameters(model: torch.nn.Module, teacher_path: str | Path) -> None:
    """Copy the teacher's drive weights, bias and (when both have one) low-rank factors from
    ``teacher_synthetic.npz`` into ``model`` (a :class:`WholeBrainLIF` with a free encoder
    and the teacher's rank)."""
    t = np.load(teacher_path)
    w = torch.as_tensor(t["drive_weights"])
    if not isinstance(model.encoder, torch.nn.Linear) or model.encoder.weight.shape != w.shape:
        raise ValueError(
            f"{teacher_path}: the teacher's drive weights {tuple(w.shape)} need a model with "
            "a free encoder of that shape (--encoder free on the teacher's brain)"
        )
    conn = model.conn
    if "lora_a" in t.files and conn.lora_rank not in (0, t["lora_a"].shape[1]):
        raise ValueError(
            f"{teacher_path}: the teacher's low-rank term has rank {t['lora_a'].shape[1]}, "
            f"the model {conn.lora_rank}; pass --n_rank {t['lora_a'].shape[1]}"
        )
    with torch.no_grad():
        model.encoder.weight.copy_(w)
        model.encoder.bias.copy_(torch.as_tensor(t["drive_bias"]))
        if conn.lora_rank > 0 and "lora_a" in t.files:
            conn.lora_a.copy_(torch.as_tensor(t["lora_a"]))
            conn.lora_b.copy_(torch.as_tensor(t["lora_b"]))


def recovery_scores(model: torch.nn.Module, teacher_path: str | Path) -> dict[str, float]:
    """{drive_weights_r, drive_bias_r, lowrank_r}: Pearson r between the student's and the
    teacher's parameters (flattened; a constant student counts 0). ``lowrank_r`` needs the
    same rank on both sides and is skipped for brains over 20,000 neurons (dense N x N)."""
    t = np.load(teacher_path)
    w_key = "drive_weights" if "drive_weights" in t.files else "encoder.weight"
    b_key = "drive_bias" if "drive_bias" in t.files else "encoder.bias"
    out = {
        "drive_weights_r": _pearson(model.encoder.weight.detach().cpu().numpy(), t[w_key]),
        "drive_bias_r": _pearson(model.encoder.bias.detach().cpu().numpy(), t[b_key]),
    }
    a_key = "lora_a" if "lora_a" in t.files else "conn.lora_a"
    conn = model.conn
    if a_key in t.files and conn.lora_rank > 0 and conn.n_pre <= 20_000:
        b_key2 = a_key.replace("lora_a", "lora_b")
        student = lowrank_weight(
            conn.lora_a.detach().cpu().numpy(), conn.lora_b.detach().cpu().numpy()
        )
        out["lowrank_r"] = _pearson(student, lowrank_weight(t[a_key], t[b_key2]))
    return out
