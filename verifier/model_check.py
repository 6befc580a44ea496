"""Is this model file the state the run proved? Weights quantized as the circuit reads them, hashed
with the state's salt, against the bundle's commitment: the base model with its published salt, or a
released model with the final opening its owner hands over (the bundle itself stays hiding)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import ezkl
import numpy as np
from safetensors.numpy import load_file

from circuits.artifacts import ArtifactError, read_json

from . import protocol as P
from .claims import is_felt
from .errors import Rejected


def frozen_digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 of frozen parameters, in order: each one's [name, shape] as JSON, then its float32
    values little-endian (the shape fixes their length, so the encoding is unambiguous)."""
    h = hashlib.sha256()
    for name, a in arrays.items():
        a = np.ascontiguousarray(a, dtype="<f4")
        h.update(json.dumps([name, list(a.shape)]).encode() + a.tobytes())
    return h.hexdigest()


def _load(path: Path, check: str) -> dict[str, np.ndarray]:
    if not Path(path).is_file() or Path(path).stat().st_size > P.MAX_BASE:
        raise Rejected(check, f"{Path(path).name}: missing, or larger than {P.MAX_BASE} bytes")
    try:
        return load_file(str(path))
    except Exception as e:
        raise Rejected(check, f"{Path(path).name} unreadable ({e.__class__.__name__})") from None


def frozen_weights(path: Path, m: dict, check: str, weights: dict | None = None) -> dict[str, np.ndarray]:
    """The parameters a model file holds that do not train, which must be exactly the claims' (names,
    shapes and values, by sha256): they are constants of the step graph."""
    weights = _load(path, check) if weights is None else weights
    names = m["run"]["frozen"]["names"]
    missing = [n for n in names if n not in weights]
    if missing:
        raise Rejected(check, f"{Path(path).name} has no parameter {missing[0]!r}, which the run claims frozen")
    arrays = {n: weights[n] for n in names}
    if frozen_digest(arrays) != m["run"]["frozen"]["sha256"]:
        raise Rejected(check, f"{Path(path).name}: its frozen parameters are not the ones the claims name "
                              "(run.frozen.sha256): a frozen weight was changed")
    return arrays


def weight_felts(path: Path, m: dict, check: str, weights: dict | None = None) -> list[str]:
    """The trained parameters of a safetensors file (`weights`, if already loaded) in the layout's
    order, as the circuit's field elements; its frozen parameters must be the claims'."""
    layout, scale = m["run"]["layout"], m["run"]["scale"]
    weights = _load(path, check) if weights is None else weights
    try:
        flat = np.concatenate([weights[n].reshape(-1).astype(np.float64) for n in layout["names"]])
        shapes_ok = [tuple(weights[n].shape) for n in layout["names"]] == [tuple(s) for s in layout["shapes"]]
    except Exception as e:
        raise Rejected(check, f"{Path(path).name} not matching the layout ({e.__class__.__name__})") from None
    if not shapes_ok or set(weights) != set(layout["names"]) | set(m["run"]["frozen"]["names"]):
        raise Rejected(check, f"{Path(path).name}: parameters do not match the circuit's layout and frozen parameters")
    frozen_weights(path, m, check, weights)
    if not np.isfinite(flat).all():  # ezkl quantizes NaN to 0: another file would hash the same
        raise Rejected(check, f"{Path(path).name} has NaN or infinite weights")
    return [ezkl.float_to_felt(v, scale) for v in flat.tolist()]


def base_commitment(path: Path, m: dict) -> str:
    """H(state_0): the base weights (zero velocity with momentum) and the published salt."""
    felts = weight_felts(path, m, "base")
    zero = ezkl.float_to_felt(0.0, m["run"]["scale"])
    velocity = [zero] * len(felts) if m["run"]["layout"]["momentum"] else []
    try:
        return ezkl.poseidon_hash(felts + velocity + m["base"]["salt"])[0]
    except Exception as e:
        raise Rejected("base", f"cannot hash the base state ({e})") from None


def check_release(m: dict, model: Path, opening: Path | None, base: Path) -> str:
    """Raises Rejected("model") unless `model` is the run's final state (given its opening; with
    adapters, also merged) or, without an opening, the run's base model (file `base` in the bundle);
    returns what was shown."""
    if opening is None:
        if base_commitment(model, m) != m["base"]["commitment"]:
            raise Rejected("model", f"{Path(model).name} with the published salt does not hash to the base commitment")
        return f"{Path(model).name} is the run's base model (H(base weights, published salt) = base commitment)"
    try:
        state = read_json(opening, max_bytes=P.MAX_JSON).get("state")
    except (ArtifactError, AttributeError) as e:
        raise Rejected("model", f"opening unreadable ({e})") from None
    n = sum(int(np.prod(s)) for s in m["run"]["layout"]["shapes"])
    length = n * (2 if m["run"]["layout"]["momentum"] else 1) + P.SALT_WORDS
    if not (isinstance(state, list) and len(state) == length and all(is_felt(x) for x in state)):
        raise Rejected("model", f"the opening must list the final state's {length} field elements")
    if ezkl.poseidon_hash(state)[0] != m["final"]["commitment"]:
        raise Rejected("model", "the opening does not open the run's final commitment (another state or another salt)")
    adapters, weights = m["run"]["model"].get("adapters"), _load(model, "model")
    if adapters and not any(k.endswith(LORA) for k in weights):
        return _check_merged(m, model, weights, state[:n], base, adapters["layers"])
    felts = weight_felts(model, m, "model", weights)
    wrong = [i for i, (a, b) in enumerate(zip(felts, state[:n])) if a != b]
    if wrong:
        raise Rejected("model", f"{Path(model).name} differs from the proved final state in {len(wrong)} of {n} "
                                f"weights (first: #{wrong[0]})")
    return f"{Path(model).name} is the run's final state: its {n} weights and the opening hash to the final commitment"


LORA = (".lora_a", ".lora_b")


def merge_adapters(state: dict[str, np.ndarray], layers: list[str]) -> dict[str, np.ndarray]:
    """A state dict with low-rank adapters as the plain model's: W + B A for each adapted layer.
    Fixed-point values (multiples of 2^-scale, small) multiply and add exactly in float64, so the only
    rounding is the final one to float32: anyone merging the same state gets the same bytes."""
    out = {k: v for k, v in state.items() if not k.endswith(LORA)}
    for layer in layers:
        a, b = state[f"{layer}.lora_a"].astype(np.float64), state[f"{layer}.lora_b"].astype(np.float64)
        out[f"{layer}.weight"] = (np.asarray(state[f"{layer}.weight"], np.float64) + b @ a).astype(np.float32)
    return out


def _check_merged(m: dict, model: Path, got: dict, trained: list[str], base: Path, layers: list[str]) -> str:
    """The released model is the merged final state: its opened trained values and the base's frozen
    ones, adapters merged into their layers, equal to the file byte for byte."""
    lay, scale = m["run"]["layout"], m["run"]["scale"]
    values, at = {}, 0
    for name, shape in zip(lay["names"], lay["shapes"]):
        size = int(np.prod(shape))
        values[name] = np.array([ezkl.felt_to_float(f, scale) for f in trained[at:at + size]], np.float32).reshape(shape)
        at += size
    expected = merge_adapters({**frozen_weights(base, m, "model"), **values}, layers)
    if set(got) != set(expected) or any(got[k].shape != expected[k].shape for k in expected):
        raise Rejected("model", f"{Path(model).name}: parameters {sorted(got)} are not the merged model's {sorted(expected)}")
    wrong = [k for k in expected if not np.array_equal(np.asarray(got[k], np.float32), expected[k])]
    if wrong:
        raise Rejected("model", f"{Path(model).name} is not the final state with its adapters merged (W + B A): "
                                f"{', '.join(wrong)} differ")
    return (f"{Path(model).name} is the run's final state with its adapters merged into {', '.join(layers)} "
            "(W + B A, from the opened final state and the base's frozen weights)")
