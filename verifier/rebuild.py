"""The run proof's vk of a folded run, derived from the claims like the step vk, never read from the bundle.

A folded bundle is verified against the vk of its tree's top node, which fixes every circuit below
it: an aggregation circuit has its children's vks (their "protocols") built in as constants. So that
vk is derived too, or a fold of another circuit's proofs under this bundle's claims would verify.

setup_aggregate reads its children's protocols from sample proofs, and a proof's protocol is the
prover's word (ezkl computes it from the vk only while proving), so every sample is made here,
bottom up: the derived chunk circuit proves all-zero inputs; each node shape below the top
(spec/fold_plan.shapes) is set up and aggregates the samples of its children; the top is set up
from the samples of its own. Keygen reads no witness, so the vk is the same whatever valid samples
it is given (tests/test_fold.py shows it on the bundle's own chunk proof). Samples and vks are
cached, sealed, beside the derived step vk: once per circuit, SRS and shape. A machine without the
memory (or the disk) a level needs says so, with the figure (CannotCheck).
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import ezkl
import onnx as onnx_lib

from zkpot.circuits import derive, pipeline
from zkpot.spec import cache
from zkpot.spec.artifacts import atomic_path
from zkpot.spec.errors import CannotCheck
from zkpot.spec.fold_plan import aggregate_gb, available_gb, pk_gb, setup_gb, shapes
from zkpot.verifier.derive import derived


def derived_run_vk(claims: dict, onnx: Path, full_srs, srs_sha256: str, levels: list, logrows: int,
                   say=lambda message: None) -> Path:
    """The vk of the top node of the fold tree `levels` (spec/fold_plan.plan's shape) over proofs of the
    claims' circuit, every node at `logrows`, with the SRS of this sha256 (`full_srs()` gives its file,
    asked for only when something is not cached)."""
    tree = shapes(levels)
    where = derive.derived_dir(claims, onnx)
    name = lambda kind, shape: where / f"aggregation-{kind}-{_id(shape)}-{logrows}-{srs_sha256[:32]}.{kind}"
    target = name("vk", tree[-1][0])
    if cache.sealed(target) is not None:
        return target
    need_samples = [s for level in tree[:-1] for s in dict.fromkeys(level) if cache.sealed(name("json", s)) is None]
    _check_resources(logrows, len(levels), bool(need_samples))
    srs = full_srs()
    with tempfile.TemporaryDirectory(prefix="zkpot-rebuild-") as tmp:
        tmp = Path(tmp)
        samples = {"c": _chunk_sample(claims, onnx, srs, srs_sha256, tmp, say)}
        for depth, (groups, level) in enumerate(zip(levels, tree), start=1):
            for group, shape in dict(zip(map(tuple, groups), level)).items():
                children = [samples[tree[depth - 2][j]] if depth > 1 else samples["c"] for j in group]
                if depth == len(levels):
                    say(f"deriving the run proof's vk (level {depth}, {len(group)} children): setup_aggregate "
                        f"(minutes, ~{setup_gb(logrows):.0f} GB; once per circuit)")
                    with atomic_path(target) as out:
                        out.write_bytes(_aggregation_vk(children, logrows, srs, tmp / "top.vk"))
                    return cache.seal(target)
                if shape not in samples:
                    samples[shape] = _node_sample(children, name("json", shape), depth, logrows, srs, tmp, say)
    raise AssertionError("a fold tree has a top node")


def _id(shape: str) -> str:
    return hashlib.sha256(shape.encode()).hexdigest()[:16]


def _check_resources(logrows: int, depth: int, samples: bool) -> None:
    """Said before the minutes of any sample proof: the memory (and disk) the deepest need takes."""
    need, have = (aggregate_gb(logrows) if samples else setup_gb(logrows)), available_gb()
    what = f"a sample aggregate at every level below the top ({depth} levels)" if samples else "setup_aggregate"
    if need > have:
        raise CannotCheck(f"deriving the logrows-{logrows} run proof's vk ({what}) needs about {need:.0f} GB, "
                          f"this machine has {have:.0f} GB (RAM + swap)")
    if samples:
        free = shutil.disk_usage(tempfile.gettempdir()).free / 2**30
        if pk_gb(logrows) + 0.5 > free:
            raise CannotCheck(f"deriving the run proof's vk needs a logrows-{logrows} aggregation proving key "
                              f"on disk (~{pk_gb(logrows):.1f} GB), {tempfile.gettempdir()} has {free:.1f} GB free "
                              "(set TMPDIR to a larger disk)")


def _chunk_sample(claims: dict, onnx: Path, srs: Path, srs_sha256: str, tmp: Path, say) -> Path:
    """A proof of the derived chunk circuit on all-zero inputs (one per ONNX input, of its shape): its
    protocol is the derived circuit's, not the bundle's."""
    out = derive.derived_dir(claims, onnx) / f"aggregation-sample-c-{srs_sha256[:32]}.json"
    if cache.sealed(out) is not None:
        return out
    say("a sample proof of the derived chunk circuit (its protocol, for setup_aggregate)")
    circuit = derive.derived_circuit(claims, onnx)
    derived("vk", "cannot set up the derived circuit", pipeline.setup, circuit, srs, tmp / "vk.key", tmp / "pk.key",
            traced=False)
    sizes = []
    for inp in onnx_lib.load(str(onnx)).graph.input:
        n = 1
        for d in inp.type.tensor_type.shape.dim:
            n *= d.dim_value
        sizes.append(n)
    pipeline.write_input(tmp / "zeros.json", *[[0.0] * n for n in sizes])
    what = f"cannot make a sample proof of {onnx.name}'s circuit"
    derived("vk", what, pipeline.gen_witness, tmp / "zeros.json", circuit, tmp / "witness.json", traced=False)
    with atomic_path(out) as proof:
        derived("vk", what, pipeline.prove, tmp / "witness.json", circuit, tmp / "pk.key", proof, srs, traced=False)
    (tmp / "pk.key").unlink()
    return cache.seal(out)


def _node_sample(children: list[Path], out: Path, depth: int, logrows: int, srs: Path, tmp: Path, say) -> Path:
    """A level-`depth` aggregate of the children's samples with keys set up here (Poseidon transcript, as
    the prover's inner levels): its protocol is the node's, for the level above."""
    if cache.sealed(out) is not None:
        return out
    say(f"a sample aggregate at level {depth} ({len(children)} children): setup_aggregate, then aggregate "
        f"(minutes, ~{aggregate_gb(logrows):.0f} GB; once per circuit and shape)")
    vk, pk = tmp / f"level{depth}.vk", tmp / f"level{depth}.pk"
    derived("vk", f"cannot set up a level-{depth} aggregation", pipeline.setup_aggregate, children, vk, pk,
            logrows, srs, traced=False)
    with atomic_path(out) as proof:
        derived("vk", f"cannot make a level-{depth} sample aggregate", pipeline.aggregate, children, proof, pk,
                logrows, srs, "poseidon", traced=False)
    pk.unlink()
    return cache.seal(out)


def _aggregation_vk(samples: list[Path], logrows: int, srs: Path, out: Path) -> bytes:
    """setup_aggregate's vk over these samples (the proving key discarded). Never the one `zkpot fold` cached
    on this machine: a prover's key directory is the prover's word, whoever wrote it."""
    derived("vk", "cannot set up the aggregation circuit", pipeline.call, "setup_aggregate", ezkl.setup_aggregate,
            [str(p) for p in samples], str(out), derive.DISCARD, logrows, False, str(srs), traced=False)
    return out.read_bytes()
