"""The circuit as a pure function of the public claims: the prover makes it so, the verifier remakes it.

    claims  = manifest.run restricted to CIRCUIT_CLAIMS (model, loss, optimizer, layout,
              steps per proof, scale, declared bounds, frozen parameters by sha256): no data, and
              no weights but the frozen ones, which come from the public base model
    step.onnx      = trace(claims, frozen)               make_fx over torch.func.grad, as train does
    settings.json  = calibrate(step.onnx, public_samples(claims)), then the lookup table the clamps give
    circuit.ezkl   = compile(step.onnx, settings.json)
    vk             = setup(circuit.ezkl, SRS)            deterministic

Every lookup's input is clamped in the traced step where its function saturates (models/bounded.py),
so the lookup table is exact and a function of the scale and the lookups the graph uses alone
(spec/lookups.py), whatever the private values. The calibration samples, drawn uniformly within the
declared bounds by a generator seeded with the claims' hash, only size the rows: anyone gets the same
samples, logrows and vk. Private data never reaches settings.json.

Everything derived is cached under the hash of its inputs and the tool versions
(spec/cache.py, namespace circuits), so the second derivation of a circuit reads files.
"""
from __future__ import annotations

import hashlib
import math
import os
import tempfile
from pathlib import Path

import ezkl
import numpy as np

from zkpot.circuits import pipeline
from zkpot.spec import cache, lookups
from zkpot.spec import protocol as P
from zkpot.spec.artifacts import atomic_path, sha256_file
from zkpot.spec.canonical import canonical_json
from zkpot.spec import dp as dp_spec
from zkpot.spec.layout import batch_at, challenge_at, inputs_per_step, noise_at, param_count, state_values
from zkpot.spec.weights import frozen_digest

DISCARD = os.devnull  # where a proving key nobody needs is written
TABLE_SLACK = 64      # rows a lookup table needs beside its entries (blinding and the unusable last rows), at most


def circuit_claims(run: dict) -> dict:
    """The claims the circuit is a function of (a manifest's run section, or a config's); a DP-SGD run's clip
    and noise among them (its delta is the accountant's alone)."""
    claims = {k: run[k] for k in P.CIRCUIT_CLAIMS}
    if "dp" in run:
        claims["dp"] = {k: run["dp"][k] for k in P.DP_CIRCUIT_CLAIMS}
    return claims


def is_dp(claims: dict) -> bool:
    return "dp" in claims


# --- the step graph ------------------------------------------------------------------------------

def module_of(claims: dict, frozen: dict[str, np.ndarray] | None = None):
    """The module the claims name (built-in, or an ONNX graph registered by its sha256): shapes only (the
    traced step takes the trained weights as inputs), holding the frozen parameters' values when some are
    frozen (graph constants)."""
    import torch

    from zkpot.models import zoo

    if claims["model"]["name"] not in P.DERIVABLE_MODELS:  # a user's module is never imported here
        raise ValueError(f"model {claims['model']['name']!r} is neither a built-in model nor an ONNX graph")
    names = claims["frozen"]["names"]
    if not names:
        with torch.device("meta"):
            return zoo.build(claims["model"])
    if frozen is None or list(frozen) != names:
        raise ValueError(f"the claims freeze {names}: their values (the base model's) are needed to trace the step")
    module = zoo.build(claims["model"])
    params = dict(module.named_parameters())
    with torch.no_grad():
        for n, a in frozen.items():
            if n not in params or tuple(params[n].shape) != a.shape:
                raise ValueError(f"frozen parameter {n!r} {a.shape} is not one of the model's")
            params[n].copy_(torch.from_numpy(np.array(a, dtype=np.float32)))
    return module


def trace(claims: dict, module, out: Path) -> None:
    """step.onnx for the claims: S SGD steps of `module` with the claimed loss and optimizer; the
    parameters outside the layout are frozen, with the module's values, which must be the claims'.
    Inference claims (`inference` = {rows}) give the model's prediction on that many inputs instead."""
    from zkpot.models.step import Layout, Optimizer, export_chunk, export_forward, make_step

    layout = Layout.from_dict(claims["layout"])
    _check_module(claims, module, layout)
    if is_inference(claims):
        with atomic_path(out) as tmp:
            export_forward(module, layout, claims["inference"]["rows"], tmp, claims["scale"])
        return
    o = claims["optimizer"]
    opt = Optimizer(lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"])
    if is_dp(claims):
        from zkpot.models.dp import DP, export_dp_chunk, make_dp_step

        dp = DP(clip=claims["dp"]["clip"], noise=claims["dp"]["noise"])
        step = make_dp_step(module, claims["loss"], layout, opt, dp, claims["scale"], claims["bounds"])
        with atomic_path(out) as tmp:
            export_dp_chunk(step, layout, claims["steps_per_proof"], tmp, claims["scale"])
        return
    step = make_step(module, claims["loss"], layout, opt, claims["bounds"])
    with atomic_path(out) as tmp:
        export_chunk(step, layout, claims["steps_per_proof"], tmp, claims["scale"])


def _check_module(claims: dict, module, layout) -> None:
    """The module's trained parameters are the layout's, and its others the frozen ones the claims name."""
    from zkpot.models.step import frozen_of
    params = [(n, tuple(p.shape)) for n, p in module.named_parameters() if n in layout.names]
    if params != list(zip(layout.names, layout.shapes)):
        raise ValueError(f"the model's parameters {params} are not the layout's {list(zip(layout.names, layout.shapes))}")
    frozen = frozen_of(module, layout)
    if list(frozen) != claims["frozen"]["names"]:
        raise ValueError(f"the model's parameters outside the layout {list(frozen)} are not the frozen ones the "
                         f"claims name {claims['frozen']['names']}")
    if frozen_digest({n: t.numpy() for n, t in frozen.items()}) != claims["frozen"]["sha256"]:
        raise ValueError("the frozen parameters' values are not the ones the claims name (run.frozen.sha256)")


def inference_claims(run: dict, rows: int) -> dict:
    """The claims of the circuit that proves the run's model on `rows` inputs: the run's circuit claims
    (architecture, layout, frozen values, scale, bounds) and the number of rows."""
    return {**circuit_claims(run), "inference": {"rows": rows}}


def is_inference(claims: dict) -> bool:
    return "inference" in claims


# --- settings from public samples ----------------------------------------------------------------

def public_samples(claims: dict) -> list[list[float]]:
    """CALIBRATION_SAMPLES inputs drawn within the declared bounds, as one ezkl input list per graph
    input (state_in, batch_1..S, salt_out; or state, inputs for inference), the samples concatenated."""
    lay, bounds, S = claims["layout"], claims["bounds"], claims["steps_per_proof"]
    n_params = param_count(lay["shapes"])
    B, F, L = lay["batch_size"], lay["features"], lay["label_width"]
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(canonical_json(claims)).digest()[:8], "little"))
    W, X = float(bounds["weights"]), float(bounds["features"])

    def salt():
        return (rng.integers(0, 1 << P.SALT_BITS, P.SALT_WORDS) / (1 << claims["scale"])).tolist()

    def labels():
        if claims["loss"] == "bce":
            return rng.integers(0, 2, (B, L)).astype(float)
        if claims["loss"] == "ce":
            return np.eye(L)[rng.integers(0, L, B)]
        return rng.uniform(-X, X, (B, L))

    if is_inference(claims):  # the state (a trained model within the bounds) and `rows` inputs
        inputs = [[], []]
        for _ in range(P.CALIBRATION_SAMPLES):
            inputs[0] += rng.uniform(-W, W, state_values(n_params, lay["momentum"])).tolist() + salt()
            inputs[1] += rng.uniform(-X, X, claims["inference"]["rows"] * F).tolist() + salt()
        return inputs
    dp = is_dp(claims)

    def grid():  # (DP) uniforms on the grid of the scale, as the secret and the public ones are
        return (rng.integers(0, 1 << claims["scale"], dp_spec.uniforms(n_params)) / (1 << claims["scale"])).tolist()

    inputs = [[] for _ in range(S * inputs_per_step(dp) + 2)]
    for _ in range(P.CALIBRATION_SAMPLES):
        inputs[0] += rng.uniform(-W, W, state_values(n_params, lay["momentum"])).tolist() + salt()
        for i in range(S):
            inputs[batch_at(i, dp)] += rng.uniform(-X, X, B * F).tolist() + labels().reshape(-1).tolist() + salt()
            if dp:
                inputs[noise_at(i)] += grid() + salt()
                inputs[challenge_at(i)] += grid()
        inputs[-1] += salt()
    return inputs


def settings_for(claims: dict, onnx: Path, out: Path) -> None:
    """gen_settings at the claimed scale, calibrated on the public samples, in canonical form.

    The range-check decomposition is the first of P.DECOMPOSITIONS after which a smaller base no
    longer lowers logrows: a small circuit's height is often set by the range-check table alone
    (16,384 rows force logrows 15 on a 3,300-row circuit; 4,096 x 3 legs proves it at 13)."""
    with tempfile.TemporaryDirectory(prefix="zkpot-derive-") as tmp:
        samples = Path(tmp) / "samples.json"
        pipeline.write_input(samples, *public_samples(claims))
        best = None
        for base, legs in P.DECOMPOSITIONS:
            candidate = Path(tmp) / f"settings-{base}x{legs}.json"
            try:
                pipeline.gen_settings(onnx, candidate, claims["scale"], (base, legs),
                                      outputs="public" if is_inference(claims) else "hashed")
                k = _bounded_table(candidate, claims["scale"], pipeline.calibrate(
                    samples, onnx, candidate, claims["scale"], P.MAX_LOGROWS, P.CALIBRATION_MARGIN), is_dp(claims))
            except pipeline.CircuitError:
                if best is None:
                    raise
                break  # (more legs can push a circuit past MAX_LOGROWS: then the previous one stands)
            if best is not None and k >= best[0]:
                break
            best = (k, candidate)
            if base + TABLE_SLACK <= 2 ** (k - 1):
                break  # the table fits a logrow less: it is not what sets the height
        with atomic_path(out) as tmp_out:
            tmp_out.write_bytes(best[1].read_bytes())


def _bounded_table(path: Path, scale: int, calibrated: dict, domains: bool = False) -> int:
    """The settings at `path` with the lookup range the clamps give (spec/lookups.py), not the samples' range,
    and logrows raised if that table needs more rows than the samples' did; its logrows. `domains`: a DP step,
    whose Ln and Cos inputs are clamped to their domains."""
    try:
        lo, hi = lookups.table_range(calibrated["required_lookups"], scale, domains=domains)
    except lookups.UnboundedLookup as e:
        raise pipeline.CircuitError(str(e)) from None
    k = max(calibrated["run_args"]["logrows"], math.ceil(math.log2(hi - lo + 1 + TABLE_SLACK)))
    if k > P.MAX_LOGROWS:
        raise pipeline.CircuitError(f"the circuit needs logrows {k}, more than the {P.MAX_LOGROWS} zkpot proves")
    pipeline.set_lookup_table(path, (lo, hi), k)
    return k


# --- cached derivation ---------------------------------------------------------------------------

def _cached(path: Path, make) -> Path:
    """path, made by make(path) unless it exists with this user's seal (spec/cache.py: a file planted in
    the cache is derived again); every write is atomic, so a sealed file is complete."""
    if cache.sealed(path) is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        make(path)
        cache.seal(path)
    return path


def derived_onnx(claims: dict, frozen: dict[str, np.ndarray] | None = None) -> Path:
    """The step graph of built-in model claims, traced once per claims and tools; `frozen`: the
    frozen parameters' values, from the public base model (the claims name them by sha256)."""
    return _cached(cache.entry("circuits", claims=claims) / P.STEP_ONNX,
                   lambda p: trace(claims, module_of(claims, frozen), p))


def derived_dir(claims: dict, onnx: Path) -> Path:
    return cache.entry("circuits", claims=claims) / sha256_file(onnx)[:32]


def derived_settings(claims: dict, onnx: Path) -> Path:
    """settings.json of the claims' circuit (step graph `onnx`), derived once."""
    return _cached(derived_dir(claims, onnx) / P.SETTINGS, lambda p: settings_for(claims, onnx, p))


def derived_circuit(claims: dict, onnx: Path) -> Path:
    return _cached(derived_dir(claims, onnx) / "circuit.ezkl",
                   lambda p: pipeline.compile_circuit(onnx, derived_settings(claims, onnx), p))


def derived_vk(claims: dict, onnx: Path, srs, srs_sha256: str) -> Path:
    """The vk ezkl's setup gives for the claims' circuit and the SRS with this sha256 (the proving key
    is discarded). `srs()` gives the full SRS file; it is asked for only when the vk is not cached."""
    def make(vk: Path) -> None:  # the circuit is needed (and derived) only when the vk is not cached
        circuit, full = derived_circuit(claims, onnx), srs()
        with atomic_path(vk) as tmp:
            pipeline.call("setup", ezkl.setup, str(circuit), str(tmp), DISCARD, str(full))

    return _cached(derived_dir(claims, onnx) / f"vk-{srs_sha256[:32]}.key", make)
