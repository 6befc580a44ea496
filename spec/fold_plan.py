"""The public shape of a fold: which proofs each aggregation folds, and at what logrows.

Prover and verifier both use these rules: the prover to build the tree, the verifier to
refuse any recorded tree that is not exactly this one.
"""
from __future__ import annotations

import math

GB = 1 << 30
# an aggregate's first public instances: its KZG accumulator (lhs.x, lhs.y, rhs.x, rhs.y), 4 limbs of 68 bits each
ACC_LIMBS, ACC_LIMB_BITS = 4, 68
ACC_INSTANCES = 4 * ACC_LIMBS
# measured with ezkl 22.3.0 on 2 cores: peak memory at logrows 21 (it doubles per logrow)
SETUP_GB_AT_21 = 10.6      # setup_aggregate
AGGREGATE_GB_AT_21 = 18.7  # aggregate
PK_GB_AT_21 = 8.86         # the aggregation proving key on disk (17.7 GB at 22)


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


def pk_gb(logrows: int) -> float:
    return PK_GB_AT_21 * 2 ** (logrows - 21)


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


def shapes(levels: list[list[list[int]]]) -> list[list[str]]:
    """Each node's shape: the shapes of its children, a chunk proof being "c" ("((c,c),(c))": a node folding
    a node of two chunk proofs and a node of one). A node's aggregation vk is a function of its shape, the
    chunk circuit, the logrows and the SRS alone (its circuit verifies its children's circuits, whose vks
    are built in), so a verifier derives one vk per distinct shape, bottom up, whatever the tree's depth."""
    out: list[list[str]] = []
    for depth, groups in enumerate(levels):
        out.append(["(" + ",".join(out[depth - 1][j] if depth else "c" for j in g) + ")" for g in groups])
    return out


def run_instances(n_chunks: int, fan_in: int, chunk_instances: int) -> int:
    """The run proof's public instances: every node's accumulator, then its children's instances, down to
    each chunk proof's own (verifier/prove.py unfolds them; ZkpotRun.sol walks the same tree)."""
    return ACC_INSTANCES * sum(len(level) for level in plan(n_chunks, fan_in)) + n_chunks * chunk_instances


def check_recorded(fold: dict, n_chunks: int) -> list[list[list[int]]]:
    """The tree a manifest records (fold.levels) must be exactly the one its fan-in gives over its chunks, every
    node at that fan-in's logrows; returns it. ValueError naming what differs (the verifier rejects at `fold`,
    `publish` refuses)."""
    try:
        expected = plan(n_chunks, int(fold["fan_in"]))
        recorded = [[node["children"] for node in level] for level in fold["levels"]]
        logrows = [node["logrows"] for level in fold["levels"] for node in level]
    except (KeyError, TypeError, ValueError):
        raise ValueError("fold tree malformed") from None
    if recorded != expected:
        raise ValueError(f"tree {recorded} is not the fan-in-{fold['fan_in']} tree over {n_chunks} chunks")
    if set(logrows) != {logrows_for(int(fold["fan_in"]))}:
        raise ValueError(f"a fold node claims logrows other than the fan-in-{fold['fan_in']} tree's "
                         f"({logrows_for(int(fold['fan_in']))})")
    return expected
