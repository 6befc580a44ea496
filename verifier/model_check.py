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


def weight_felts(path: Path, m: dict, check: str) -> list[str]:
    """The trained parameters of a safetensors file in the layout's order, as the circuit's field
    elements; its frozen parameters must be the claims'."""
    layout, scale = m["run"]["layout"], m["run"]["scale"]
    weights = _load(path, check)
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


def check_release(m: dict, model: Path, opening: Path | None) -> str:
    """Raises Rejected("model") unless `model` is the run's final state (given its opening) or, without
    an opening, the run's base model; returns what was shown."""
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
    felts = weight_felts(model, m, "model")
    wrong = [i for i, (a, b) in enumerate(zip(felts, state[:n])) if a != b]
    if wrong:
        raise Rejected("model", f"{Path(model).name} differs from the proved final state in {len(wrong)} of {n} "
                                f"weights (first: #{wrong[0]})")
    return f"{Path(model).name} is the run's final state: its {n} weights and the opening hash to the final commitment"
