"""The public shape of a fold: which proofs each aggregation folds, and at what logrows.

Prover and verifier both use these rules: the prover to build the tree, the verifier to
refuse any recorded tree that is not exactly this one.
"""
from __future__ import annotations

import math


def logrows_for(fan_in: int) -> int:
    """An aggregation verifies each inner proof in just over 2^20 rows (measured with ezkl 22.3.0)."""
    return 21 + math.ceil(math.log2(fan_in))


def plan(n_chunks: int, fan_in: int) -> list[list[list[int]]]:
    """For each level, the groups of child indices each node folds, until one node is left."""
    if n_chunks < 1 or fan_in < 1:
        raise ValueError("nothing to fold")
    if fan_in == 1 and n_chunks > 1:
        raise ValueError(f"fan-in 1 folds a single proof, this run has {n_chunks}: use --fan-in 2 or more, "
                         "or make one proof cover the run (--steps-per-proof)")
    levels, width = [], n_chunks
    while True:
        groups = [list(range(i, min(i + fan_in, width))) for i in range(0, width, fan_in)]
        levels.append(groups)
        width = len(groups)
        if width == 1:
            return levels
