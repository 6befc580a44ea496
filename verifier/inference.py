"""Check an inference proof (`zkpot infer`) against a run: the prediction is the run's final model's.

    derive   the inference circuit from the run's claims and the number of rows, and its vk from the
             run's SRS, never the prover's (infer-circuit)
    prove    the proof verifies against that vk (infer-proof)
    commit   H(state) is the run's final commitment (weights); H(inputs) is the hash of the public
             inputs and salt, or of the opening the inputs' owner holds (input); the prediction
             inference.json claims is the proof's public outputs (prediction)

Called by verify_bundle after the run itself is checked: a prediction of a model is worth what the
model's proof is worth, so the run's verdict carries over.
"""
from __future__ import annotations

from pathlib import Path

import ezkl

from zkpot.circuits import derive, pipeline
from zkpot.spec import protocol as P
from zkpot.spec.artifacts import ArtifactError, read_json
from zkpot.spec.bundle import read_once, refuse_links
from zkpot.spec.errors import BadInput, Rejected, need
from zkpot.spec.felts import is_felt
from zkpot.spec.proofs import read_instances
from zkpot.spec.weights import frozen_weights
from zkpot.verifier.derive import derived
from zkpot.verifier.read import full_srs_of


def inference_dir(path: Path) -> Path:
    """OUT (as `zkpot infer` wrote it) or OUT/public."""
    path = Path(path)
    return path / "public" if (path / "public" / P.INFERENCE).is_file() else path


def read_claim(directory: Path) -> dict:
    """inference.json, its every field checked for type and range before anything is derived."""
    try:
        doc = read_json(directory / P.INFERENCE, max_bytes=P.MAX_JSON)
    except ArtifactError as e:
        raise Rejected("inference", str(e)) from None

    def field(ok: bool, what: str) -> None:
        need("inference", ok, f"{P.INFERENCE}: {what}")

    field(isinstance(doc, dict) and doc.get("format") == P.INFERENCE_FORMAT, f"not a {P.INFERENCE_FORMAT} document")
    rows = doc.get("rows")
    field(isinstance(rows, int) and not isinstance(rows, bool) and 1 <= rows <= P.MAX_INFERENCE_ROWS,
         f"rows must be an integer in 1..{P.MAX_INFERENCE_ROWS}")
    field(is_felt(doc.get("final_commitment")), "final_commitment must be a field element")
    field(doc.get("proof") == P.INFERENCE_PROOF, f"proof must be {P.INFERENCE_PROOF}")
    x = doc.get("input")
    field(isinstance(x, dict) and x.get("visibility") in P.INPUT_VISIBILITIES,
         f"input.visibility must be one of {', '.join(P.INPUT_VISIBILITIES)}")
    if x["visibility"] == "public":
        field(set(x) == {"visibility", "values", "salt"} and _matrix(x["values"], rows)
             and isinstance(x["salt"], list) and len(x["salt"]) == P.SALT_WORDS and all(is_felt(s) for s in x["salt"]),
             f"public input must be {{values: {rows} rows of numbers, salt: {P.SALT_WORDS} field elements}}")
    else:
        field(set(x) == {"visibility"}, "a hidden input lists no values")
    field(_matrix(doc.get("prediction"), rows), f"prediction must be {rows} rows of numbers")
    return doc


def _matrix(v, rows: int) -> bool:
    return (isinstance(v, list) and len(v) == rows and all(isinstance(r, list) and r for r in v)
            and len({len(r) for r in v}) == 1
            and all(isinstance(a, (int, float)) and not isinstance(a, bool) for r in v for a in r))


def read_opening(path: Path) -> dict:
    """The inputs' owner's opening of a hidden input (OUT/private/input_opening.json)."""
    try:
        o = read_json(path, max_bytes=P.MAX_JSON)
        assert isinstance(o, dict) and isinstance(o.get("values"), list) and isinstance(o.get("salt"), list)
        assert len(o["salt"]) == P.SALT_WORDS and all(is_felt(s) for s in o["salt"])
        assert all(isinstance(r, list) and all(isinstance(a, (int, float)) for a in r) for r in o["values"])
    except (ArtifactError, AssertionError):
        raise BadInput(f"{path}: not an input opening ({{values, salt}}, as `zkpot infer --hide-input` writes)") from None
    return o


def input_hash(values: list[list[float]], salt: list[str], scale: int) -> str:
    """H(inputs) as the circuit computes it: the values quantized at the run's scale, then the salt."""
    return ezkl.poseidon_hash([ezkl.float_to_felt(float(a), scale) for r in values for a in r] + salt)[0]


def _private_copy(directory: Path, copy: Path) -> Path:
    """inference.json and proof.json read once each, into `copy` (what is parsed is what ezkl verifies)."""
    for name, limit, check in ((P.INFERENCE, P.MAX_JSON, "inference"), (P.INFERENCE_PROOF, P.MAX_PROOF, "infer-proof")):
        try:
            refuse_links(directory, name, check)
            if read_once(directory / name, limit, copy / name) is None:
                raise Rejected(check, f"{name} is larger than the {limit} bytes allowed")
        except OSError as e:
            raise Rejected(check, f"{name}: unreadable ({e.__class__.__name__})") from None
    return copy


def check_inference(b, directory: Path, opening: Path | None, report, say) -> list[list[float]]:
    """Every check of the module docstring, on bundle `b` (already verified); returns the prediction."""
    directory = _private_copy(inference_dir(directory), b.public / "inference")
    doc = read_claim(directory)
    run, rows = b.m["run"], doc["rows"]
    if run["model"]["name"] not in P.DERIVABLE_MODELS:
        raise Rejected("infer-circuit", f"model {run['model']['name']!r} is the prover's own module: an inference "
                                        "circuit is derived from built-in models only")
    claims = derive.inference_claims(run, rows)
    frozen = frozen_weights(b.path(b.m["base"]["file"]), b.m, "frozen") if run["frozen"]["names"] else None
    say(f"deriving the inference circuit for {rows} row(s) from the run's claims (cached once derived)")
    onnx = derived("infer-circuit", "cannot trace the run's model", derive.derived_onnx, claims, frozen)
    settings = derived("infer-circuit", "the claims give no inference circuit", derive.derived_settings, claims, onnx)
    s = read_json(settings)
    k, out_scale = s["run_args"]["logrows"], s["model_output_scales"][0]
    if k > b.srs["logrows"]:
        raise Rejected("infer-circuit", f"the inference circuit needs logrows {k}, the run's SRS has {b.srs['logrows']}")
    vk = derived("infer-circuit", "cannot set up the inference circuit", derive.derived_vk, claims, onnx,
                 lambda: full_srs_of(b), b.srs["sha256"])
    report.passed.append(("infer-circuit", f"the model's prediction on {rows} row(s), derived from the run's claims "
                                           f"(logrows {k}; vk from the run's SRS)"))

    proof = directory / P.INFERENCE_PROOF
    width = run["layout"]["label_width"]  # the model's outputs per row
    inst = read_instances(proof, "infer-proof")
    if not pipeline.verify(proof, settings, vk, b.path(b.m["srs"]["file"])):
        raise Rejected("infer-proof", f"{P.INFERENCE_PROOF} does not verify against the derived inference vk")
    if len(inst) != 2 + rows * width:  # (a proof of the derived circuit cannot have another count)
        raise Rejected("infer-proof", f"the proof has {len(inst)} instances, the circuit {2 + rows * width}")
    report.passed.append(("infer-proof", f"{P.INFERENCE_PROOF} verifies against the derived vk"))

    final = b.m["final"]["commitment"]
    if inst[0] != final or doc["final_commitment"] != final:
        raise Rejected("weights", "the proof's H(state) is not the run's final commitment: another model's weights "
                                  "(or an earlier state) made this prediction")
    report.passed.append(("weights", f"the prediction's weights hash to the run's final commitment {final[:16]}…"))

    x = doc["input"]
    if x["visibility"] == "public" and opening is not None:  # an opening nobody would check: refused, not ignored
        raise BadInput(f"--input-opening opens hidden inputs; {P.INFERENCE} lists its inputs publicly (nothing to open)")
    if x["visibility"] == "public":
        if input_hash(x["values"], x["salt"], run["scale"]) != inst[1]:
            raise Rejected("input", "the public inputs and salt do not hash to the proof's H(inputs)")
        report.passed.append(("input", f"the {rows} public input row(s) and salt hash to the proof's H(inputs)"))
    elif opening is not None:
        o = read_opening(opening)
        if len(o["values"]) != rows or input_hash(o["values"], o["salt"], run["scale"]) != inst[1]:
            raise Rejected("input", f"{Path(opening).name} does not open the proof's H(inputs): another input")
        report.passed.append(("input", f"{Path(opening).name} opens the proof's H(inputs): the prediction is of those inputs"))
    else:
        report.passed.append(("input", f"hidden: the proof commits to the inputs as {inst[1][:16]}… (their owner "
                                       "checks it with --input-opening)"))

    proved = [[ezkl.felt_to_float(f, out_scale) for f in inst[2 + r * width: 2 + (r + 1) * width]] for r in range(rows)]
    if proved != [[float(a) for a in r] for r in doc["prediction"]]:
        raise Rejected("prediction", "inference.json's prediction is not the proof's public outputs")
    report.passed.append(("prediction", f"{rows} x {width} output value(s), the proof's public outputs"))
    return proved

