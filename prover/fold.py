"""Fold a run's chunk proofs into one run proof with ezkl's aggregation (recursion).

    chunk proofs --aggregate(fan_in)--> level-1 proofs --aggregate--> ... --> one run proof

Each aggregation circuit verifies its inner proofs except for the final KZG pairing, which it
defers into an accumulator exposed as its first 16 public instances; an inner aggregate's
accumulator is passed through as plain instances. `verifier/decider.py` checks every one.

Costs, measured on a 2-core, 24 GiB machine with ezkl 22.3.0: an aggregation spends over 2^20
rows per inner proof whatever its size, so fan-in 1 needs logrows 21 (setup 199 s, 10.6 GB;
aggregate 223 s, 18.7 GB) and fan-in 2 needs 22 (setup 372 s, 22 GB; aggregate 545 s, 24 GB RAM
plus 16 GB swap). Hence fold few proofs, each covering many SGD steps (`--steps-per-proof`).
All levels and the chunk circuits must share one SRS (one tau): make it once, at the largest k.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from zkpot.circuits import pipeline
from zkpot.circuits import srs as srs_mod
from zkpot.spec import cache
from zkpot.spec.artifacts import ArtifactError, atomic_path, read_json, write_json
from zkpot.spec.fold_plan import GB, aggregate_gb, available_gb, logrows_for, pk_gb, plan


class DiskSpaceError(ArtifactError):
    """The aggregation proving key would not fit on the cache's disk."""


def needed_gb(fan_in: int) -> float:
    return aggregate_gb(logrows_for(fan_in))


def node_path(level: int, i: int) -> str:
    return f"fold/level{level}_{i:05d}.json"


def check_memory(fan_in: int) -> None:
    need, have = needed_gb(fan_in), available_gb()
    if need > have:
        raise ArtifactError(
            f"folding {fan_in} proof(s) at logrows {logrows_for(fan_in)} needs about {need:.0f} GB, "
            f"this machine has {have:.0f} GB (RAM + swap): add swap, use a smaller --fan-in, or copy "
            f"RUN/public to a larger machine and run `zkpot fold` there"
        )


def check_disk(logrows: int, where: Path) -> None:
    """Refuse before a minutes-long setup_aggregate that would die writing its key."""
    need = pk_gb(logrows) + 0.5
    probe = Path(where)
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free / GB
    if need > free:
        raise DiskSpaceError(
            f"the aggregation proving key at logrows {logrows} needs about {need:.1f} GB of disk, "
            f"{probe} has {free:.1f} GB free: free space, fold with --no-keep-keys (one level's key on disk "
            f"at a time), or point ZKPOT_CACHE at a larger disk"
        )


def key_entry(children: list[Path], logrows: int, srs: Path) -> Path:
    """The cache entry of the aggregation keys of these children: keyed by what determines them (the inner
    protocols, their count, logrows, SRS) and the code's versions."""
    protocols = [read_json(c, max_bytes=1 << 30)["protocol"] for c in children]
    return cache.entry("aggregation", logrows=logrows, srs=srs_mod.sha256_file(srs), protocols=protocols)


def _keys(children: list[Path], logrows: int, srs: Path, say=lambda msg: None) -> tuple[Path, Path]:
    """Aggregation keys, from the cache or set up once."""
    d = key_entry(children, logrows, srs)
    vk, pk = d / "vk.key", d / "pk.key"
    if not pk.exists():
        check_disk(logrows, d)
        say(f"aggregation setup at logrows {logrows} (minutes; cached for the next fold)")
        pipeline.setup_aggregate(children, vk, pk, logrows, srs)
    return vk, pk


def fold_node(children: list[Path], out: Path, srs: Path, top: bool, fan_in: int,
              say=lambda msg: None) -> tuple[Path, Path]:
    """Aggregate `children` into `out` (kept if it exists) with their cached key; (vk, pk) of it.
    The run proof (`top`) uses the EVM transcript; inner levels Poseidon, which the next level verifies.
    Every node is at the tree's logrows (`fan_in`'s), a node with fewer children too."""
    k = logrows_for(fan_in)
    vk, pk = _keys(children, k, srs, say)
    if not out.exists():
        say(f"aggregating {len(children)} proof(s) at logrows {k} (minutes)")
        pipeline.aggregate(children, out, pk, k, srs, "evm" if top else "poseidon")
    return vk, pk


def vk_name(depth: int, fan_in: int) -> str:
    return f"fold/level{depth}_fanin{fan_in}.vk"


def node_made(public: Path, depth: int, i: int, fan_in: int) -> bool:
    """A node counts as made once its proof and its level's vk are both in the bundle: what a
    resumed fold skips, and what the Ray executor waits for before folding the level above."""
    return (public / node_path(depth, i)).exists() and (public / vk_name(depth, fan_in)).exists()


def check_srs(srs: Path, fan_in: int) -> None:
    """Every level is proved on the chunk proofs' SRS (one tau), at exactly the tree's logrows."""
    need, have = logrows_for(fan_in), srs_mod.logrows_of(srs)
    if have != need:
        raise ArtifactError(
            f"the bundle's SRS has logrows {have}; folding at fan-in {fan_in} needs exactly {need} "
            f"({'a smaller SRS cannot hold the aggregation' if have < need else 'ezkl would cut a larger one down on every load, for hours'}), "
            f"with the same tau as the chunk proofs: set the run up with `zkpot setup --fold-fan-in {fan_in}`"
        )


def check_foldable(n_chunks: int, srs: Path, fan_in: int, memory: bool = True) -> list:
    """The fold tree of n chunk proofs at this fan-in, refused if it cannot be folded (the tree, the SRS,
    with `memory` this machine's memory): checked before the first chunk proof is made, not after the last."""
    levels = plan(n_chunks, fan_in)
    check_srs(srs, fan_in)
    if memory:
        check_memory(fan_in)
    return levels


def ready(levels: list, have) -> list[tuple[int, int]]:
    """The nodes (depth, i) whose inputs all exist and that are not made yet, in tree order.
    `have(depth, i)` tells whether a proof exists: depth 0 is chunk i's proof, depth d >= 1 node i
    of level d. This is what lets a fold start while chunks are still being proved."""
    return [(d, i) for d, groups in enumerate(levels, start=1) for i, g in enumerate(groups)
            if not have(d, i) and all(have(d - 1, j) for j in g)]


def fold(public: Path, fan_in: int, keep_keys: bool = True, on_node=lambda level, i, n, seconds: None,
         srs: Path | None = None, say=lambda msg: None) -> dict:
    """Fold the chunk proofs of a public bundle into fold/…, record the tree in its manifest.

    Needs only public files (chunk proofs and the full SRS they were made with: `srs`, or the file
    this machine hashed under the manifest's sha256), so a run can be folded later, on another
    machine. Resumable: finished nodes are kept. Without `keep_keys`
    each level's proving keys are deleted once the level is folded: every level has its own key
    (17.7 GB at logrows 22), so a 3-level tree then needs disk for one, not three.
    """
    public = Path(public)
    m = read_json(public / "manifest.json")
    chunks = [public / c["proof"] for c in m["chunks"]]
    srs = srs_mod.full_srs(m["srs"]["sha256"], srs, "folding (the SRS the chunk proofs were made with)")
    levels = check_foldable(len(chunks), srs, fan_in, memory=False)
    if not all(node_made(public, d, i, len(g)) for d, groups in enumerate(levels, start=1) for i, g in enumerate(groups)):
        check_memory(fan_in)  # (nodes made on a Ray cluster are only recorded here)
    tree, below = [], chunks
    for depth, groups in enumerate(levels, start=1):
        top = depth == len(levels)
        nodes, used = [], set()
        for i, group in enumerate(groups):
            children = [below[j] for j in group]
            start = time.perf_counter()
            out, vk_file = public / node_path(depth, i), public / vk_name(depth, len(children))
            if not node_made(public, depth, i, len(children)):  # (a resumed fold needs no key for done nodes)
                vk, pk = fold_node(children, out, srs, top, fan_in,
                                   lambda msg: say(f"level {depth} node {i + 1}/{len(groups)}: {msg}"))
                used.add(pk)
                with atomic_path(vk_file) as tmp:
                    tmp.write_bytes(vk.read_bytes())
            nodes.append({"proof": node_path(depth, i), "children": group, "logrows": logrows_for(fan_in),
                          "vk": vk_name(depth, len(children))})
            on_node(depth, i + 1, len(groups), time.perf_counter() - start)
        if not keep_keys:
            for pk in used:
                pk.unlink(missing_ok=True)  # (the vk stays: small, and what --rebuild-vk looks up)
        tree.append(nodes)
        below = [public / n["proof"] for n in nodes]
    m["fold"] = {"fan_in": fan_in, "levels": tree}
    for level in tree:
        for node in level:
            for name in (node["proof"], node["vk"]):
                m["files"][name] = srs_mod.sha256_file(public / name)
    write_json(public / "manifest.json", m)
    return m["fold"]
