"""Rebuild the verification keys from the published ONNX, settings and SRS, and compare them byte for byte.

ezkl's setup is deterministic in (compiled circuit, SRS), so an equal vk means the proofs were made
for the circuit of the published step.onnx (the architecture, loss, optimizer and hyperparameters)
and not for another one behind a vk that merely sits beside it. It costs one ezkl setup (seconds to
minutes, and the proving key's size in memory); the proving key itself is discarded.

A folded bundle is verified against its *aggregation* vk, which fixes the inner circuit: the
aggregation circuit has the chunk circuit's vk (its "protocol") built in as constants. That vk
must be rebuilt too, or a fold of another circuit's proofs under this bundle's claims verifies.
setup_aggregate reads the protocol from a sample proof, so the sample is made here: the rebuilt
chunk circuit (the one whose vk was just compared) proves all-zero inputs with its proving key;
then setup_aggregate (deterministic like setup: keygen runs without witnesses) with its proving
key sent to /dev/null.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import ezkl
import onnx

from circuits import pipeline
from circuits.artifacts import read_json, sha256_file
from circuits.srs import cache_dir

from .bundle import Rejected, path_in
from .fold_tree import available_gb, key_id, logrows_for, setup_gb

DISCARD = os.devnull if os.name == "posix" else None  # where a proving key nobody needs is written


def rebuild_keys(public: Path, m: dict, say=lambda message: None):
    """`zkpot verify --rebuild-vk`: the step vk, then a folded bundle's aggregation vk(s), from one
    compile and one setup of step.onnx. Yields a summary per key; raises Rejected at the first that differs."""
    c = m["circuit"]
    with tempfile.TemporaryDirectory(prefix="zkpot-rebuild-") as tmp:
        circuit = Path(tmp) if "fold" in m else None
        yield rebuild_vk(path_in(public, c["onnx"]), path_in(public, c["settings"]),
                         path_in(public, m["srs"]["file"]), path_in(public, c["vk"]), circuit)
        if circuit is not None:
            say("rebuilding the aggregation vk(s): a sample chunk proof, then setup_aggregate "
                "(minutes, ~11 GB at logrows 21; cached by key id in ~/.cache/zkpot)")
            yield rebuild_fold_vks(public, m, circuit)


def rebuild_vk(onnx_file: Path, settings: Path, srs: Path, vk: Path, keep: Path | None = None) -> str:
    """Raises Rejected unless compile(onnx, settings) + setup(srs) gives exactly `vk`; returns a summary.
    With `keep`, the compiled circuit and its proving key are left there (circuit.ezkl, pk.key)."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="zkpot-rebuild-") as tmp:
        work = Path(keep or tmp)
        _ezkl(f"cannot compile {onnx_file.name} with {settings.name}", pipeline.compile_circuit, onnx_file, settings,
              work / "circuit.ezkl")
        pk = str(work / "pk.key") if keep or not DISCARD else DISCARD
        _ezkl("cannot set up the rebuilt circuit", pipeline.call, "setup", ezkl.setup, str(work / "circuit.ezkl"), str(work / "vk.key"), pk, str(srs))
        rebuilt = (work / "vk.key").read_bytes()
    if rebuilt != Path(vk).read_bytes():
        raise Rejected("rebuild-vk", f"{Path(vk).name} is not the key of {onnx_file.name} with {settings.name} and "
                                     f"{Path(srs).name}: the rebuilt vk differs (the proofs are for another circuit)")
    return (f"{Path(vk).name} rebuilt from {onnx_file.name} + {settings.name} + {Path(srs).name} byte for byte "
            f"(sha256 {sha256_file(vk)[:16]}…, {time.perf_counter() - start:.1f} s)")


def rebuild_fold_vks(public: Path, m: dict, circuit: Path | None = None) -> str:
    """Raises Rejected unless every level-1 aggregation vk of the fold is setup_aggregate's for the
    circuit of step.onnx + settings + SRS; returns a summary. Deeper levels are refused, not skipped.
    `circuit`: a directory where rebuild_vk kept that circuit and its proving key (else it is rebuilt)."""
    start = time.perf_counter()
    levels = m["fold"]["levels"]
    if len(levels) > 1:
        raise Rejected("rebuild-vk", f"the fold has {len(levels)} levels; rebuilding aggregation vks above level 1 "
                                     "(a level-1 aggregate as the sample, ~19 GB) is not implemented")
    c, srs = m["circuit"], path_in(public, m["srs"]["file"])
    wanted = {len(node["children"]): path_in(public, node["vk"]) for node in levels[0]}
    with tempfile.TemporaryDirectory(prefix="zkpot-rebuild-") as tmp:
        tmp = Path(tmp)
        if circuit is None:
            circuit = tmp
            rebuild_vk(path_in(public, c["onnx"]), path_in(public, c["settings"]), srs, path_in(public, c["vk"]), circuit)
        sample = _sample_proof(path_in(public, c["onnx"]), circuit, srs, tmp / "sample.json")
        protocol = read_json(sample, max_bytes=1 << 30)["protocol"]
        done = []
        for fan_in, vk in sorted(wanted.items()):
            logrows = logrows_for(fan_in)
            rebuilt, how = _aggregation_vk([sample] * fan_in, [protocol] * fan_in, logrows, srs, tmp / f"agg{fan_in}.vk")
            if rebuilt != vk.read_bytes():
                raise Rejected("rebuild-vk", f"{vk.name} is not the aggregation key of {c['onnx']}'s circuit "
                                             f"(fan-in {fan_in}, logrows {logrows}): the run proof folds proofs of another circuit")
            done.append(f"{vk.name} ({how})")
    return (f"aggregation vk(s) {', '.join(done)} rebuilt for the circuit of {c['onnx']} byte for byte "
            f"({time.perf_counter() - start:.0f} s)")


def _sample_proof(onnx_file: Path, circuit: Path, srs: Path, out: Path) -> Path:
    """A proof of the rebuilt circuit on all-zero inputs (one per ONNX input, of its shape):
    its protocol is the circuit's, not the bundle's."""
    sizes = []
    for inp in onnx.load(str(onnx_file)).graph.input:
        n = 1
        for d in inp.type.tensor_type.shape.dim:
            n *= d.dim_value
        sizes.append(n)
    pipeline.write_input(out.with_name("zeros.json"), *[[0.0] * n for n in sizes])
    what = f"cannot make a sample proof of {onnx_file.name}'s circuit"
    _ezkl(what, pipeline.gen_witness, out.with_name("zeros.json"), circuit / "circuit.ezkl", out.with_name("witness.json"))
    _ezkl(what, pipeline.prove, out.with_name("witness.json"), circuit / "circuit.ezkl", circuit / "pk.key", out, srs)
    return out


def _aggregation_vk(samples: list[Path], protocols: list, logrows: int, srs: Path, out: Path) -> tuple[bytes, str]:
    """setup_aggregate's vk, or the one cached under the same key id (made by setup_aggregate from the same inputs)."""
    cached = cache_dir() / "aggregation" / key_id(logrows, sha256_file(srs), protocols) / "vk.key"
    if cached.is_file():
        return cached.read_bytes(), f"cached {cached.parent.name[:12]}"
    need, have = setup_gb(logrows), available_gb()
    if need > have:
        raise Rejected("rebuild-vk", f"rebuilding a logrows-{logrows} aggregation vk needs about {need:.0f} GB, "
                                     f"this machine has {have:.0f} GB (RAM + swap)")
    pk = DISCARD or str(out.with_suffix(".pk"))
    _ezkl("cannot set up the aggregation circuit", pipeline.call, "setup_aggregate", ezkl.setup_aggregate, [str(p) for p in samples],
          str(out), pk, logrows, False, str(srs))
    return out.read_bytes(), "setup_aggregate"


def _ezkl(what: str, fn, *args) -> None:
    """A pipeline step whose failure is this check's rejection (in one line), not a crash."""
    try:
        fn(*args)
    except pipeline.CircuitError as e:
        raise Rejected("rebuild-vk", f"{what}: {e}") from None
