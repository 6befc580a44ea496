"""Rebuild the verification keys from the published ONNX, settings and SRS, and compare them byte for byte.

ezkl's setup is deterministic in (compiled circuit, SRS), so an equal vk means the proofs were made
for the circuit of the published step.onnx (the architecture, loss, optimizer and hyperparameters)
and not for another one behind a vk that merely sits beside it. It costs one ezkl setup (seconds to
minutes, and the proving key's size in memory); the proving key itself is discarded.

A folded bundle is verified against its *aggregation* vk, which fixes the inner circuit: the
aggregation circuit has the chunk circuit's vk (its "protocol") built in as constants. That vk
must be rebuilt too, or a fold of another circuit's proofs under this bundle's claims verifies.
setup_aggregate reads the protocol from a sample proof, so the sample is made here: the rebuilt
chunk circuit proves all-zero inputs with a freshly made proving key; then setup_aggregate
(deterministic like setup: keygen runs without witnesses) with its proving key sent to /dev/null.
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
from .fold_tree import available_gb, key_id, setup_gb


def rebuild_vk(onnx: Path, settings: Path, srs: Path, vk: Path) -> str:
    """Raises Rejected unless compile(onnx, settings) + setup(srs) gives exactly `vk`; returns a summary."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="zkpot-rebuild-") as tmp:
        tmp = Path(tmp)
        try:
            pipeline.compile_circuit(onnx, settings, tmp / "step.ezkl")
        except pipeline.CircuitError as e:
            raise Rejected("rebuild-vk", f"cannot compile {onnx.name} with {settings.name}: {e}") from None
        rebuilt = _setup_vk_only(tmp / "step.ezkl", srs, tmp / "vk.key")
    if rebuilt != Path(vk).read_bytes():
        raise Rejected("rebuild-vk", f"{Path(vk).name} is not the key of {onnx.name} with {settings.name} and "
                                     f"{Path(srs).name}: the rebuilt vk differs (the proofs are for another circuit)")
    return (f"{Path(vk).name} rebuilt from {onnx.name} + {settings.name} + {Path(srs).name} byte for byte "
            f"(sha256 {sha256_file(vk)[:16]}…, {time.perf_counter() - start:.1f} s)")


def _setup_vk_only(compiled: Path, srs: Path, vk: Path) -> bytes:
    """ezkl.setup into a temporary directory; the proving key (large, unused) goes to /dev/null on POSIX."""
    pk = os.devnull if os.name == "posix" else str(vk.with_name("pk.key"))
    try:
        ok = ezkl.setup(str(compiled), str(vk), pk, str(srs))
    except Exception as e:  # ezkl raises bare RuntimeErrors from Rust
        raise Rejected("rebuild-vk", f"ezkl setup failed: {(str(e).strip().splitlines() or [type(e).__name__])[0]}") from None
    if not ok or not vk.is_file():
        raise Rejected("rebuild-vk", "ezkl setup failed")
    return vk.read_bytes()


def rebuild_fold_vks(public: Path, m: dict) -> str:
    """Raises Rejected unless every level-1 aggregation vk of the fold is setup_aggregate's for the
    circuit of step.onnx + settings + SRS; returns a summary. Deeper levels are refused, not skipped."""
    start = time.perf_counter()
    levels = m["fold"]["levels"]
    if len(levels) > 1:
        raise Rejected("rebuild-vk", f"the fold has {len(levels)} levels; rebuilding aggregation vks above level 1 "
                                     "(a level-1 aggregate as the sample, ~19 GB) is not implemented")
    c, srs = m["circuit"], path_in(public, m["srs"]["file"])
    wanted = {len(node["children"]): path_in(public, node["vk"]) for node in levels[0]}
    with tempfile.TemporaryDirectory(prefix="zkpot-rebuild-") as tmp:
        tmp = Path(tmp)
        sample = _sample_proof(path_in(public, c["onnx"]), path_in(public, c["settings"]), srs, tmp)
        protocol = read_json(sample, max_bytes=1 << 30)["protocol"]
        done = []
        for fan_in, vk in sorted(wanted.items()):
            logrows = next(int(n["logrows"]) for n in levels[0] if len(n["children"]) == fan_in)
            rebuilt, how = _aggregation_vk([sample] * fan_in, [protocol] * fan_in, logrows, srs, tmp / f"agg{fan_in}.vk")
            if rebuilt != vk.read_bytes():
                raise Rejected("rebuild-vk", f"{vk.name} is not the aggregation key of {c['onnx']}'s circuit "
                                             f"(fan-in {fan_in}, logrows {logrows}): the run proof folds proofs of another circuit")
            done.append(f"{vk.name} ({how})")
    return (f"aggregation vk(s) {', '.join(done)} rebuilt for the circuit of {c['onnx']} byte for byte "
            f"({time.perf_counter() - start:.0f} s)")


def _sample_proof(onnx_file: Path, settings: Path, srs: Path, tmp: Path) -> Path:
    """A proof of the rebuilt chunk circuit on all-zero inputs: its protocol is the circuit's, not the bundle's."""
    try:
        pipeline.compile_circuit(onnx_file, settings, tmp / "chunk.ezkl")
        pipeline.setup(tmp / "chunk.ezkl", srs, tmp / "vk.key", tmp / "pk.key")
        graph = onnx.load(str(onnx_file)).graph
        sizes = []
        for inp in graph.input:
            n = 1
            for d in inp.type.tensor_type.shape.dim:
                n *= d.dim_value
            sizes.append(n)
        pipeline.write_input(tmp / "zeros.json", *[[0.0] * n for n in sizes])
        pipeline.gen_witness(tmp / "zeros.json", tmp / "chunk.ezkl", tmp / "witness.json")
        pipeline.prove(tmp / "witness.json", tmp / "chunk.ezkl", tmp / "pk.key", tmp / "sample.json", srs)
    except pipeline.CircuitError as e:
        raise Rejected("rebuild-vk", f"cannot make a sample proof of {onnx_file.name}'s circuit: {e}") from None
    (tmp / "pk.key").unlink()
    return tmp / "sample.json"


def _aggregation_vk(samples: list[Path], protocols: list, logrows: int, srs: Path, out: Path) -> tuple[bytes, str]:
    """setup_aggregate's vk, or the one cached under the same key id (made by setup_aggregate from the same inputs)."""
    cached = cache_dir() / "aggregation" / key_id(logrows, sha256_file(srs), protocols) / "vk.key"
    if cached.is_file():
        return cached.read_bytes(), f"cached {cached.parent.name[:12]}"
    need, have = setup_gb(logrows), available_gb()
    if need > have:
        raise Rejected("rebuild-vk", f"rebuilding a logrows-{logrows} aggregation vk needs about {need:.0f} GB, "
                                     f"this machine has {have:.0f} GB (RAM + swap)")
    pk = os.devnull if os.name == "posix" else str(out.with_suffix(".pk"))
    try:
        ok = ezkl.setup_aggregate([str(p) for p in samples], str(out), pk, logrows, False, str(srs))
    except Exception as e:  # ezkl raises bare RuntimeErrors from Rust
        raise Rejected("rebuild-vk", f"ezkl setup_aggregate failed: {(str(e).strip().splitlines() or [type(e).__name__])[0]}") from None
    if not ok or not out.is_file():
        raise Rejected("rebuild-vk", "ezkl setup_aggregate failed")
    return out.read_bytes(), "setup_aggregate"
