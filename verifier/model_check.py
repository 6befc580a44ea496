"""Is this model file the state the run proved? Weights quantized as the circuit reads them, hashed
with the state's salt, against the bundle's commitment: the base model with its published salt, or a
released model with the final opening its owner hands over (the bundle itself stays hiding)."""
from __future__ import annotations

from pathlib import Path

import ezkl
import numpy as np

from zkpot.spec import protocol as P
from zkpot.spec.artifacts import ArtifactError, read_json
from zkpot.spec.errors import Rejected
from zkpot.spec.felts import is_felt
from zkpot.spec.layout import param_count, state_length
from zkpot.spec.weights import LORA, frozen_weights, load_weights, merge_adapters


def weight_felts(path: Path, m: dict, check: str, weights: dict | None = None) -> list[str]:
    """The trained parameters of a safetensors file (`weights`, if already loaded) in the layout's
    order, as the circuit's field elements; its frozen parameters must be the claims'."""
    layout, scale = m["run"]["layout"], m["run"]["scale"]
    weights = load_weights(path, check) if weights is None else weights
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
    n = param_count(m["run"]["layout"]["shapes"])
    length = state_length(n, m["run"]["layout"]["momentum"])
    if not (isinstance(state, list) and len(state) == length and all(is_felt(x) for x in state)):
        raise Rejected("model", f"the opening must list the final state's {length} field elements")
    if ezkl.poseidon_hash(state)[0] != m["final"]["commitment"]:
        raise Rejected("model", "the opening does not open the run's final commitment (another state or another salt)")
    adapters, weights = m["run"]["model"].get("adapters"), load_weights(model, "model")
    if adapters and not any(k.endswith(LORA) for k in weights):
        return _check_merged(m, model, weights, state[:n], base, adapters["layers"])
    felts = weight_felts(model, m, "model", weights)
    wrong = [i for i, (a, b) in enumerate(zip(felts, state[:n])) if a != b]
    if wrong:
        raise Rejected("model", f"{Path(model).name} differs from the proved final state in {len(wrong)} of {n} "
                                f"weights (first: #{wrong[0]})")
    return f"{Path(model).name} is the run's final state: its {n} weights and the opening hash to the final commitment"


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
