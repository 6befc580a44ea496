"""Is this model file the state the run proved? Weights quantized as the circuit reads them, hashed
with the state's salt, against the bundle's commitment: the base model with its published salt, or a
released model with the final opening its owner hands over (the bundle itself stays hiding)."""
from __future__ import annotations

from pathlib import Path

import ezkl
import numpy as np
from safetensors.numpy import load_file

from circuits.artifacts import ArtifactError, read_json

from . import protocol as P
from .claims import is_felt
from .errors import Rejected


def weight_felts(path: Path, m: dict, check: str) -> list[str]:
    """The parameters of a safetensors file in the layout's order, as the circuit's field elements."""
    layout, scale = m["run"]["layout"], m["run"]["scale"]
    if not Path(path).is_file() or Path(path).stat().st_size > P.MAX_BASE:
        raise Rejected(check, f"{Path(path).name}: missing, or larger than {P.MAX_BASE} bytes")
    try:
        weights = load_file(str(path))
        flat = np.concatenate([weights[n].reshape(-1).astype(np.float64) for n in layout["names"]])
        shapes_ok = [tuple(weights[n].shape) for n in layout["names"]] == [tuple(s) for s in layout["shapes"]]
    except Exception as e:
        raise Rejected(check, f"{Path(path).name} unreadable or not matching the layout ({e.__class__.__name__})") from None
    if not shapes_ok or len(weights) != len(layout["names"]):
        raise Rejected(check, f"{Path(path).name}: parameters do not match the circuit's layout")
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
