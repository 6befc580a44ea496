"""A frozen backbone outside the circuit: a public ONNX graph that turns each private row into
features before training. The features (standardised and clipped like any data) are the committed
dataset, and the proofs cover the head's training on them; that they came from this backbone is
the owner's claim, named in the manifest by the graph's sha256 and reported as not proved.

Run with onnx's reference evaluator (numpy): no other runtime, and a graph is data, never code.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from zkpot.spec.artifacts import sha256_file


class BackboneError(ValueError):
    """A backbone graph that cannot be used on this data."""


def describe(path: Path) -> dict:
    """The manifest's run.backbone: {sha256, inputs, outputs}."""
    graph = _graph(path)
    return {"sha256": sha256_file(path), "inputs": _width(graph.input[0]), "outputs": _width(graph.output[0])}


def features(path: Path, X: np.ndarray) -> np.ndarray:
    """The backbone's output for every row of X (float32), validated finite."""
    from onnx.reference import ReferenceEvaluator

    graph = _graph(path)
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise BackboneError(f"backbone {path}: needs one input and one output, has {len(graph.input)} and {len(graph.output)}")
    if _width(graph.input[0]) != X.shape[1]:
        raise BackboneError(f"backbone {path} takes {_width(graph.input[0])} features, the data has {X.shape[1]}")
    try:
        out = ReferenceEvaluator(str(path)).run(None, {graph.input[0].name: X.astype(np.float32)})[0]
    except Exception as e:  # a graph the reference evaluator cannot run: report, do not crash
        raise BackboneError(f"backbone {path} cannot run on the data ({e.__class__.__name__}: {str(e)[:200]})") from None
    out = np.asarray(out, dtype=np.float64).reshape(len(X), -1)
    if not np.isfinite(out).all():
        raise BackboneError(f"backbone {path} gives NaN or infinite features")
    return out


def _graph(path: Path):
    import onnx

    if not Path(path).is_file():
        raise BackboneError(f"backbone not found: {path}")
    try:
        return onnx.load(str(path)).graph
    except Exception as e:
        raise BackboneError(f"backbone {path}: not an ONNX graph ({e.__class__.__name__})") from None


def _width(value_info) -> int:
    dims = value_info.type.tensor_type.shape.dim
    if len(dims) != 2 or not dims[1].dim_value:
        raise BackboneError(f"backbone {value_info.name}: needs shape (rows, width) with a fixed width")
    return dims[1].dim_value
