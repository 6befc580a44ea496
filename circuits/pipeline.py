"""ezkl's pipeline as flat file-to-file functions, with every visibility set explicitly.

    gen_settings(onnx) -> settings.json
    calibrate(samples, onnx, settings)                  logrows from sample inputs
    set_lookup_table(settings, range, logrows)          the lookup table the claims bound
    compile_circuit(onnx, settings) -> step.ezkl
    setup(step.ezkl, srs) -> vk.key, pk.key              deterministic: the vk is rebuildable
    gen_witness(input.json, step.ezkl) -> witness.json
    prove(witness, step.ezkl, pk, srs) -> proof.json
    verify(proof, settings, vk, srs) -> bool

Visibility: inputs and outputs are "hashed" (the proof exposes only their Poseidon hashes; a
prediction's outputs are "public"), parameters are "fixed" (the step graph's only constants are
hyperparameters and frozen weights, baked into the vk).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import ezkl

from zkpot.spec import protocol as P
from zkpot.spec.artifacts import ArtifactError, atomic_path, read_json, write_json

logging.getLogger("ezkl").setLevel(logging.ERROR)  # ezkl logs through Python logging; keep stdout ours


class CircuitError(RuntimeError):
    """ezkl refused or failed; the message says at which stage."""


def call(stage: str, fn, *args, **kwargs):
    """fn(*args), with ezkl's failures (exceptions, Rust panics, a False result) as one CircuitError line."""
    try:
        ok = fn(*args, **kwargs)
    except BaseException as e:  # ezkl raises bare RuntimeErrors, and PanicExceptions (BaseException) from Rust
        if not (isinstance(e, Exception) or is_panic(e)):
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise CircuitError(f"ezkl {stage} failed: {msg}") from None
    if ok is False:
        raise CircuitError(f"ezkl {stage} failed")
    return ok


def run_args(scale: int, decomposition: tuple[int, int] = P.DECOMPOSITIONS[0], outputs: str = "hashed") -> ezkl.PyRunArgs:
    ra = ezkl.PyRunArgs()
    ra.input_visibility = "hashed"
    ra.output_visibility = outputs  # "hashed" (a step's next state), or "public" (a prediction)
    ra.param_visibility = "fixed"
    ra.input_scale = scale
    ra.param_scale = scale
    # One column per region: more rows but fewer commitments, which is what an aggregation
    # circuit pays for (83 -> 60 opened evaluations for a 4-step chunk; the chunk then folds at
    # logrows 21 instead of 22) and proving is no slower.
    ra.num_inner_cols = 1
    ra.decomp_base, ra.decomp_legs = decomposition  # range checks: `legs` lookups into a table of `base` rows
    return ra


def gen_settings(onnx: Path, settings: Path, scale: int, decomposition: tuple[int, int] = P.DECOMPOSITIONS[0],
                 outputs: str = "hashed") -> None:
    with atomic_path(settings) as tmp:
        call("gen_settings", ezkl.gen_settings, str(onnx), str(tmp), py_run_args=run_args(scale, decomposition, outputs))


def calibrate(samples: Path, onnx: Path, settings: Path, scale: int, max_logrows: int = 20, margin: int = 2) -> dict:
    """Pick lookup ranges and logrows from representative inputs; keep the scale we chose.

    The state must leave the circuit at the scale it entered with, so that step t's output
    field elements are step t+1's inputs unchanged; anything else is an error here.
    """
    with atomic_path(settings) as tmp:
        tmp.write_bytes(Path(settings).read_bytes())
        call(
            "calibrate_settings",
            ezkl.calibrate_settings,
            str(samples), str(onnx), str(tmp), "resources", margin,
            scales=[scale], scale_rebase_multiplier=[1], max_logrows=max_logrows,
        )
        _canonical_settings(tmp)
    s = read_json(settings)
    if s["model_output_scales"][0] != s["model_input_scales"][0] or len(set(s["model_input_scales"])) != 1:
        raise CircuitError(
            f"state leaves the circuit at scale {s['model_output_scales'][0]} but enters at "
            f"{s['model_input_scales'][0]}: commitments would not chain"
        )
    return s


def _canonical_settings(path: Path) -> None:
    """Same circuit, same settings bytes: ezkl stamps the time and writes hash maps and sets in
    random order, so two calibrations of one circuit differed (and missed every cached key)."""
    s = json.loads(Path(path).read_text())
    s["timestamp"] = 0
    for field in ("required_range_checks", "required_lookups"):
        s[field] = sorted(s.get(field) or [], key=json.dumps)
    Path(path).write_text(json.dumps(s, sort_keys=True))


def set_lookup_table(settings: Path, lookup_range: tuple[int, int], logrows: int) -> dict:
    """Settings with this lookup range and logrows (ezkl configures its tables from run_args alone)."""
    s = read_json(settings)
    s["run_args"]["lookup_range"], s["run_args"]["logrows"] = list(lookup_range), logrows
    with atomic_path(settings) as tmp:
        tmp.write_text(json.dumps(s, sort_keys=True))
    return s


def compile_circuit(onnx: Path, settings: Path, compiled: Path) -> None:
    with atomic_path(compiled) as tmp:
        call("compile_circuit", ezkl.compile_circuit, str(onnx), str(tmp), str(settings))


def setup(compiled: Path, srs: Path, vk: Path, pk: Path) -> None:
    with atomic_path(vk) as tvk, atomic_path(pk) as tpk:
        call("setup", ezkl.setup, str(compiled), str(tvk), str(tpk), str(srs))


def gen_witness(data: Path, compiled: Path, witness: Path) -> dict:
    with atomic_path(witness) as tmp:
        call("gen_witness", ezkl.gen_witness, str(data), str(compiled), str(tmp))
        w = read_json(tmp, max_bytes=1 << 30)
    return w


def lookup_overflow(witness: dict, settings: dict) -> str | None:
    """Why the witness is unprovable, if a lookup input left the settings' table (ezkl's witness
    generation does not check; its proof would fail much later), else None."""
    lo, hi = settings["run_args"]["lookup_range"]
    seen_lo, seen_hi = witness["min_lookup_inputs"], witness["max_lookup_inputs"]
    if seen_lo < lo or seen_hi > hi:
        return f"a lookup input reached [{seen_lo}, {seen_hi}], outside the range [{lo}, {hi}] the declared bounds give"
    return None


def prove(witness: Path, compiled: Path, pk: Path, proof: Path, srs: Path) -> None:
    """A proof with the Poseidon transcript, so that ezkl's aggregation can fold it later."""
    with atomic_path(proof) as tmp:
        call("prove", ezkl.prove, str(witness), str(compiled), str(pk), str(tmp), "for-aggr", str(srs))


def verify(proof: Path, settings: Path, vk: Path, srs: Path) -> bool:
    """True iff the proof verifies; ezkl's errors on malformed proofs count as rejection.

    A KZG verifier needs only g[0], [1]_2 and [s]_2: reduced_srs loads just those, so a
    verifier never pays for downsizing a large SRS (0.4 s instead of tens of seconds at k=21).
    """
    try:
        return bool(ezkl.verify(str(proof), str(settings), str(vk), str(srs), True))
    except Exception:
        return False
    except BaseException as e:  # a Rust panic on malformed input (pyo3's PanicException is a BaseException)
        if is_panic(e):
            return False
        raise


def is_panic(e: BaseException) -> bool:
    return type(e).__name__ == "PanicException" and type(e).__module__ == "pyo3_runtime"


def aggregate(proofs: list[Path], out: Path, pk: Path, logrows: int, srs: Path, transcript: str) -> None:
    """Fold proofs into one; ezkl's binding takes the aggregation *proving* key as `vk_path`."""
    with atomic_path(out) as tmp:
        call("aggregate", ezkl.aggregate, [str(p) for p in proofs], str(tmp), str(pk), transcript, logrows,
             "unsafe", False, str(srs))


def setup_aggregate(sample_proofs: list[Path], vk: Path, pk: Path, logrows: int, srs: Path) -> None:
    with atomic_path(vk) as tvk, atomic_path(pk) as tpk:
        call("setup_aggregate", ezkl.setup_aggregate, [str(p) for p in sample_proofs], str(tvk), str(tpk),
             logrows, False, str(srs))


def verify_aggr(proof: Path, vk: Path, logrows: int, srs: Path) -> bool:
    """The aggregation proof itself. NOT the inner proofs: their KZG pairing is deferred into the
    accumulator, which verifier/decider.py must check (ezkl never does)."""
    try:
        return bool(ezkl.verify_aggr(str(proof), str(vk), logrows, ezkl.PyCommitments.KZG, True, str(srs)))
    except Exception:
        return False


def write_input(path: Path, *inputs: list) -> None:
    """An ezkl input file: one flat list per graph input (floats, or field elements as hex)."""
    write_json(path, {"input_data": [list(x) for x in inputs]})


__all__ = [
    "ArtifactError", "CircuitError", "calibrate", "compile_circuit", "gen_settings",
    "gen_witness", "prove", "run_args", "setup", "verify", "write_input",
]
