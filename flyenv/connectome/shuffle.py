"""Degree-preserving shuffle of a connectome block (the shuffled-wiring control).

The postsynaptic ends of all edges are permuted among the edges: every presynaptic cell
keeps its edges' signed counts (so Dale's law), every postsynaptic cell its number of
incoming edges. Edges that land on the same pair are merged (their counts add). Within
one population (``drop_self_loops``) the edges that land on their own source are dropped.
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
