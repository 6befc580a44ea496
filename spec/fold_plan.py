"""The public shape of a fold: which proofs each aggregation folds, and at what logrows.

Prover and verifier both use these rules: the prover to build the tree, the verifier to
refuse any recorded tree that is not exactly this one.
"""
from __future__ import annotations

import math

GB = 1 << 30
# measured with ezkl 22.3.0 on 2 cores: peak memory at logrows 21 (it doubles per logrow)
SETUP_GB_AT_21 = 10.6      # setup_aggregate
AGGREGATE_GB_AT_21 = 18.7  # aggregate


def logrows_for(fan_in: int) -> int:
    """The logrows of every node of a fan-in-`fan_in` tree, a node with fewer children too.

    An aggregation verifies each inner proof in just over 2^20 rows (measured with ezkl 22.3.0).
    One size for the whole tree because the SRS is made at it: ezkl cuts a larger SRS down on every
    load, a serial FFT over 2^k G1 points (45+ minutes from 22 to 21, measured)."""
    return 21 + math.ceil(math.log2(fan_in))


def setup_gb(logrows: int) -> float:
    return SETUP_GB_AT_21 * 2 ** (logrows - 21)


def aggregate_gb(logrows: int) -> float:
    return AGGREGATE_GB_AT_21 * 2 ** (logrows - 21)


def meminfo() -> dict[str, int]:
    """Linux /proc/meminfo, in bytes."""
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, value = line.split(":", 1)
            info[key] = int(value.split()[0]) * 1024
    return info


def available_gb() -> float:
    """Memory an aggregation can use: available RAM plus free swap."""
    info = meminfo()
    return (info.get("MemAvailable", 0) + info.get("SwapFree", 0)) / GB


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
