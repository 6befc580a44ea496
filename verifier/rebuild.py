"""The aggregation vk of a folded run, derived from the claims like the step vk, never read from the bundle.

A folded bundle is verified against its aggregation vk, which fixes the inner circuit: the
aggregation circuit has the chunk circuit's vk (its "protocol") built in as constants. So that vk
is derived too, or a fold of another circuit's proofs under this bundle's claims would verify.
setup_aggregate reads the protocol from a sample proof, so one is made here: the derived chunk
circuit proves all-zero inputs; then setup_aggregate (deterministic like setup: keygen runs
without witnesses). The result is cached beside the derived step vk, so this runs once per
circuit, SRS and fan-in; a machine without the memory for setup_aggregate says so (CannotCheck).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import ezkl
import onnx as onnx_lib

from zkpot.circuits import derive, pipeline
from zkpot.spec import cache
from zkpot.spec.artifacts import atomic_path, read_json
from zkpot.spec.errors import CannotCheck
from zkpot.spec.fold_plan import available_gb, setup_gb
from zkpot.verifier.derive import derived


def derived_aggregation_vk(claims: dict, onnx: Path, full_srs, srs_sha256: str, fan_in: int, logrows: int,
                           say=lambda message: None) -> Path:
    """The vk of a level-1 aggregation of `fan_in` proofs of the claims' circuit at `logrows`, with the
    SRS of this sha256 (`full_srs()` gives its file, asked for only when the vk is not cached)."""
    target = derive.derived_dir(claims, onnx) / f"aggregation-{fan_in}-{logrows}-{srs_sha256[:32]}.vk"
    if cache.sealed(target) is not None:
        return target
    need, have = setup_gb(logrows), available_gb()
    if need > have:  # (said before the minutes of a sample proof)
        raise CannotCheck(f"deriving the logrows-{logrows} aggregation vk needs about {need:.0f} GB, "
                          f"this machine has {have:.0f} GB (RAM + swap)")
    srs = full_srs()
    say(f"deriving the fan-in-{fan_in} aggregation vk: a sample proof, then setup_aggregate "
        f"(minutes, ~{setup_gb(logrows):.0f} GB; once per circuit)")
    circuit = derive.derived_circuit(claims, onnx)
    with tempfile.TemporaryDirectory(prefix="zkpot-rebuild-") as tmp:
        tmp = Path(tmp)
        derived("vk", "cannot set up the derived circuit", pipeline.setup, circuit, srs, tmp / "vk.key", tmp / "pk.key",
                traced=False)
        sample = _sample_proof(onnx, circuit, tmp / "pk.key", srs, tmp / "sample.json")
        protocol = read_json(sample, max_bytes=1 << 30)["protocol"]
        with atomic_path(target) as out:
            out.write_bytes(_aggregation_vk([sample] * fan_in, [protocol] * fan_in, logrows, srs,
                                            srs_sha256, tmp / "aggregation.vk"))
    return cache.seal(target)


def _sample_proof(onnx_file: Path, circuit: Path, pk: Path, srs: Path, out: Path) -> Path:
    """A proof of the derived circuit on all-zero inputs (one per ONNX input, of its shape):
    its protocol is the circuit's, not the bundle's."""
    sizes = []
    for inp in onnx_lib.load(str(onnx_file)).graph.input:
        n = 1
        for d in inp.type.tensor_type.shape.dim:
            n *= d.dim_value
        sizes.append(n)
    pipeline.write_input(out.with_name("zeros.json"), *[[0.0] * n for n in sizes])
    what = f"cannot make a sample proof of {onnx_file.name}'s circuit"
    derived("vk", what, pipeline.gen_witness, out.with_name("zeros.json"), circuit, out.with_name("witness.json"), traced=False)
    derived("vk", what, pipeline.prove, out.with_name("witness.json"), circuit, pk, out, srs, traced=False)
    return out


def _aggregation_vk(samples: list[Path], protocols: list, logrows: int, srs: Path, srs_sha256: str, out: Path) -> bytes:
    """setup_aggregate's vk, or the one `zkpot fold` made and sealed on this machine, for this user, under
    the same key id (setup_aggregate of the same protocol, logrows and SRS: keygen reads no witness)."""
    cached = cache.sealed(cache.entry("aggregation", logrows=logrows, srs=srs_sha256, protocols=protocols) / "vk.key")
    if cached is not None:
        return cached
    derived("vk", "cannot set up the aggregation circuit", pipeline.call, "setup_aggregate", ezkl.setup_aggregate,
            [str(p) for p in samples], str(out), derive.DISCARD, logrows, False, str(srs), traced=False)
    return out.read_bytes()
