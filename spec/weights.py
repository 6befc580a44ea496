"""Model weights against the claims: the frozen parameters' digest, a weights file read with a bound,
and the released model of an adapter run (adapters merged), all without ezkl or torch."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from zkpot.spec import protocol as P
from zkpot.spec.errors import Rejected


def frozen_digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 of frozen parameters, in order: each one's [name, shape] as JSON, then its float32
    values little-endian (the shape fixes their length, so the encoding is unambiguous)."""
    h = hashlib.sha256()
    for name, a in arrays.items():
        a = np.ascontiguousarray(a, dtype="<f4")
        h.update(json.dumps([name, list(a.shape)]).encode() + a.tobytes())
    return h.hexdigest()



def load_weights(path: Path, check: str) -> dict[str, np.ndarray]:
    if not Path(path).is_file() or Path(path).stat().st_size > P.MAX_BASE:
        raise Rejected(check, f"{Path(path).name}: missing, or larger than {P.MAX_BASE} bytes")
    try:
        return load_file(str(path))
    except Exception as e:
        raise Rejected(check, f"{Path(path).name} unreadable ({e.__class__.__name__})") from None


def frozen_weights(path: Path, m: dict, check: str, weights: dict | None = None) -> dict[str, np.ndarray]:
    """The parameters a model file holds that do not train, which must be exactly the claims' (names,
    shapes and values, by sha256): they are constants of the step graph."""
    weights = load_weights(path, check) if weights is None else weights
    names = m["run"]["frozen"]["names"]
    missing = [n for n in names if n not in weights]
    if missing:
        raise Rejected(check, f"{Path(path).name} has no parameter {missing[0]!r}, which the run claims frozen")
    arrays = {n: weights[n] for n in names}
    if frozen_digest(arrays) != m["run"]["frozen"]["sha256"]:
        raise Rejected(check, f"{Path(path).name}: its frozen parameters are not the ones the claims name "
                              "(run.frozen.sha256): a frozen weight was changed")
    return arrays


LORA = (".lora_a", ".lora_b")
TRANSPOSED = "_T"   # an ONNX graph's (in x out) weight W (a MatMul's) takes its adapter as layer W_T


def merge_adapters(state: dict[str, np.ndarray], layers: list[str]) -> dict[str, np.ndarray]:
    """A state dict with low-rank adapters as the plain model's: W + B A for each adapted layer LAYER whose
    weight LAYER.weight is (out x in) (a Linear's); W + (B A)^T for a layer W_T beside an (in x out) weight W
    (an ONNX graph's MatMul by W: models/onnx_graph.py). Fixed-point values (multiples of 2^-scale, small)
    multiply and add exactly in float64, so the only rounding is the final one to float32: anyone merging the
    same state gets the same bytes."""
    out = {k: v for k, v in state.items() if not k.endswith(LORA)}
    for layer in layers:
        a, b = state[f"{layer}.lora_a"].astype(np.float64), state[f"{layer}.lora_b"].astype(np.float64)
        if f"{layer}.weight" in state or not layer.endswith(TRANSPOSED):
            name, delta = f"{layer}.weight", b @ a
        else:
            name, delta = layer.removesuffix(TRANSPOSED), (b @ a).T
        out[name] = (np.asarray(state[name], np.float64) + delta).astype(np.float32)
    return out
