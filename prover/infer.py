"""Prove the run's final model on new inputs, its weights still hidden.

    prediction = model(final state, inputs)

The inference circuit is derived from the run's claims exactly like the step circuit (the verifier
derives it too); it takes the final state as a hashed input, so the proof's H(state) is the run's
final commitment, and the inputs with a fresh salt, so H(inputs) hides them when they are hidden.
The prediction is public. Inputs are given in the model's feature space (the run's standardised
features, within the declared bound): the circuit's tables were sized for that bound.

    OUT/public/inference.json    what is claimed: rows, the final commitment, the prediction, and the
                                 inputs with their salt unless hidden
    OUT/public/proof.json        the ezkl proof
    OUT/private/input_opening.json   (hidden inputs) their values and salt, for the inputs' owner only
"""
from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import warnings
from pathlib import Path

import ezkl
import numpy as np

from zkpot.circuits import derive, pipeline
from zkpot.circuits import srs as srs_mod
from zkpot.prover.commit import commitment, salt_values, to_felts
from zkpot.prover.keys import cached_keys
from zkpot.prover.run import RunDir
from zkpot.models import data as datasets
from zkpot.models import onnx_graph
from zkpot.spec import protocol as P
from zkpot.spec.artifacts import ArtifactError, atomic_path, read_json, write_json
from zkpot.spec.bundle import load_manifest
from zkpot.spec.weights import frozen_weights


def read_inputs(path: Path) -> np.ndarray:
    """Rows of features from .npy, .npz (its array X, or its only array) or .csv (numbers; a header
    line of names is skipped): one row per prediction."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"input file not found: {path}")
    try:
        if path.suffix == ".npy":
            x = np.load(path, allow_pickle=False)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                x = z["X"] if "X" in z else z[z.files[0]] if len(z.files) == 1 else None
            if x is None:
                raise ArtifactError(f"{path}: an .npz of inputs holds one array, or an array named X")
        elif path.suffix == ".csv":
            with path.open() as f:
                first = f.readline().split(",")
            try:
                skip = 0 if [float(c) for c in first] else 1
            except ValueError:
                skip = 1  # a header of names
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # an empty file is an error here, not a warning
                x = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2)
        else:
            raise ArtifactError(f"{path}: inputs must be .csv, .npy or .npz")
    except (ValueError, OSError, UserWarning) as e:
        raise ArtifactError(f"{path}: unreadable inputs ({' '.join(str(e).split())[:120]})") from None
    return np.atleast_2d(np.asarray(x, dtype=np.float64))


def from_raw(run: RunDir, x: np.ndarray) -> np.ndarray:
    """Raw rows of the training data's source, standardised as the training rows were and clipped into the
    feature bound (the run's private scaling.json): what a data owner has, in the model's feature space."""
    if not run.scaling.is_file():
        raise ArtifactError(f"{run.root} kept no scaling of raw rows (a run on data owners' committed batches or "
                            "on a backbone's features): give inputs in the model's feature space")
    scaling = read_json(run.scaling)
    if x.ndim != 2 or x.shape[1] != len(scaling["mean"]):
        raise ArtifactError(f"raw inputs have shape {x.shape}: the training rows had {len(scaling['mean'])} columns")
    m = load_manifest(run.public)
    return datasets.apply_scaling(x, scaling, m["run"]["bounds"]["features"])


def check_inputs(x: np.ndarray, m: dict) -> None:
    features, bound = m["run"]["layout"]["features"], m["run"]["bounds"]["features"]
    if x.ndim != 2 or x.shape[1] != features:
        raise ArtifactError(f"inputs have shape {x.shape}: the model takes rows of {features} features")
    if not 1 <= len(x) <= P.MAX_INFERENCE_ROWS:
        raise ArtifactError(f"{len(x)} input rows: one proof covers 1 to {P.MAX_INFERENCE_ROWS}")
    if not np.isfinite(x).all():
        raise ArtifactError("inputs have NaN or infinite values")
    if np.abs(x).max() > bound:
        raise ArtifactError(f"an input value has magnitude {np.abs(x).max():.4g}, outside the run's declared feature "
                            f"bound {bound} (inputs are given as the model's standardised features)")


def prove_inference(run: RunDir, inputs: np.ndarray, out: Path, hidden: bool = False, progress=print) -> dict:
    """OUT/public/{inference.json, proof.json} (and OUT/private/input_opening.json when hidden) for the
    run's final model on `inputs`; returns inference.json. OUT is written complete or not at all."""
    out = Path(out)
    if out.exists():
        raise ArtifactError(f"{out} exists: infer writes a new directory")
    if not run.manifest.is_file() or not run.final_opening.is_file():
        raise ArtifactError(f"{run.root} has no proved run (no public/manifest.json or final opening): "
                            "run `zkpot prove` first")
    m = load_manifest(run.public)
    check_inputs(inputs, m)
    state = read_json(run.final_opening)["state"]
    if commitment(state) != m["final"]["commitment"]:
        raise ArtifactError(f"{run.final_opening} does not open the run's final commitment")
    scale, rows = m["run"]["scale"], len(inputs)
    if m["run"]["model"]["name"] == P.ONNX_MODEL:  # the graph, in this machine's cache (derive finds it there)
        onnx_graph.register(run.public / P.BASE_GRAPH)
    claims = derive.inference_claims(m["run"], rows)
    frozen = frozen_weights(run.base_model, m, "base") if m["run"]["frozen"]["names"] else None

    progress(f"deriving the inference circuit for {rows} row(s) from the run's claims")
    onnx = derive.derived_onnx(claims, frozen)
    settings = derive.derived_settings(claims, onnx)
    compiled = derive.derived_circuit(claims, onnx)
    keys = cached_keys(onnx, settings, compiled, run.srs, srs_mod.identify(run.srs)["sha256"], progress)

    values = [ezkl.felt_to_float(f, scale) for f in to_felts(inputs.reshape(-1).tolist(), scale)]  # as proved
    salt = to_felts(salt_values([secrets.randbits(P.SALT_BITS) for _ in range(P.SALT_WORDS)], scale), scale)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "public").mkdir()
        pipeline.write_input(tmp / "input.json", state, to_felts(values, scale) + salt)
        progress(f"ezkl: witness and proof (logrows {read_json(settings)['run_args']['logrows']})")
        w = pipeline.gen_witness(tmp / "input.json", compiled, tmp / "witness.json")
        if why := pipeline.lookup_overflow(w, read_json(settings)):
            raise ArtifactError(why)
        pipeline.prove(tmp / "witness.json", compiled, keys / "pk.key", tmp / "public" / P.INFERENCE_PROOF, run.srs)
        out_scale = read_json(settings)["model_output_scales"][0]
        prediction = np.array([ezkl.felt_to_float(f, out_scale) for f in w["outputs"][0]]).reshape(rows, -1)
        x = np.array(values).reshape(rows, -1).tolist()
        doc = {"format": P.INFERENCE_FORMAT, "rows": rows, "final_commitment": m["final"]["commitment"],
               "input": {"visibility": "hidden"} if hidden else {"visibility": "public", "values": x, "salt": salt},
               "prediction": prediction.tolist(), "proof": P.INFERENCE_PROOF}
        write_json(tmp / "public" / P.INFERENCE, doc)
        if hidden:
            (tmp / "private").mkdir(mode=0o700)
            with atomic_path(tmp / "private" / P.INPUT_OPENING, mode=0o600) as f:
                f.write_text(json.dumps({"values": x, "salt": salt}, indent=1) + "\n")
        for scratch in ("input.json", "witness.json"):  # the private state is in them
            (tmp / scratch).unlink()
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return doc
