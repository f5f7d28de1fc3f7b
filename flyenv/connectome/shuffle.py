"""Degree-preserving shuffle of a connectome block (the shuffled-wiring control).

The postsynaptic ends of all edges are permuted among the edges: every presynaptic cell
keeps its edges' signed counts (so Dale's law), every postsynaptic cell its number of
incoming edges. Edges that land on the same pair are merged (their counts add). Within
one population (``drop_self_loops``) the edges that land on their own source are dropped.

``strength_preserving_shuffle`` permutes the postsynaptic ends only among edges of equal
count, so every postsynaptic cell also keeps the counts of its incoming edges, hence its
total input (Maslov & Sneppen 2002 style rewiring within weight classes); the plain
degree-preserving shuffle lets a cell with few weak edges receive strong ones. Its
``post_groups`` (a label per postsynaptic cell, e.g. the KC cell type) also keep edges
within their group, so every pre cell keeps how many edges of each count it sends to
each group: only which cell of the group receives them is random.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def degree_preserving_shuffle(
    counts: sp.spmatrix, seed: int, drop_self_loops: bool = False
) -> sp.csr_matrix:
    coo = sp.coo_matrix(counts)
    coo.sum_duplicates()
    post = np.random.default_rng(seed).permutation(coo.col)
    keep = post != coo.row if drop_self_loops else np.ones(post.size, bool)
    out = sp.csr_matrix((coo.data[keep], (coo.row[keep], post[keep])), shape=coo.shape)
    out.sum_duplicates()
    return out


def strength_preserving_shuffle(
    counts: sp.spmatrix, seed: int, post_groups: np.ndarray | None = None
) -> sp.csr_matrix:
    """Like :func:`degree_preserving_shuffle`, but the postsynaptic ends are permuted only
    among edges with the same signed count: every pre cell keeps its edges' counts, every
    post cell the multiset of its incoming edges' counts (so its total input).
    ``post_groups`` (one label per column): permute only among edges whose post cells
    share a label as well, so each pre cell's edges stay in their groups."""
    coo = sp.coo_matrix(counts)
    coo.sum_duplicates()
    rng = np.random.default_rng(seed)
    post = coo.col.copy()
    if post_groups is None:
        edge_group = np.zeros(coo.nnz, dtype=np.int64)
    else:
        labels = np.asarray(post_groups)
        if labels.shape != (coo.shape[1],):
            raise ValueError(
                f"post_groups needs one label per postsynaptic cell ({coo.shape[1]}), "
                f"got shape {labels.shape}"
            )
        edge_group = np.unique(labels, return_inverse=True)[1][coo.col]
    for value in np.unique(coo.data):  # one stratum per count value, in sorted order
        in_value = coo.data == value
        for group in np.unique(edge_group[in_value]):  # a single group without post_groups
            idx = np.flatnonzero(in_value & (edge_group == group))
            post[idx] = post[idx][rng.permutation(idx.size)]
    out = sp.csr_matrix((coo.data, (coo.row, post)), shape=coo.shape)
    out.sum_duplicates()
    return out
