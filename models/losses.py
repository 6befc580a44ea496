"""Losses as plain functions of (model output, encoded labels), and how labels are encoded.

Labels enter the circuit as floats of width `label_width`: one column for binary
cross-entropy, one-hot for softmax cross-entropy (so no gather op is needed), the
target columns for MSE.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def bce(logits, y):
    return F.binary_cross_entropy_with_logits(logits, y)


def mse(pred, y):
    return F.mse_loss(pred, y)


class _SoftmaxCE(torch.autograd.Function):
    """Mean softmax cross-entropy whose backward is written as (softmax(z) - y) / B.

    Autograd's own backward goes through LogSoftmax and Exp, which ezkl cannot calibrate
    (its lookup range overflows); this one traces to a single Softmax op, which it can. vmap (a DP step's
    per-example gradients, models/dp.py) runs forward and backward per example."""

    generate_vmap_rule = True

    @staticmethod
    def forward(logits, y_onehot):
        return -(y_onehot * logits.log_softmax(-1)).sum(-1).mean()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, g):
        logits, y_onehot = ctx.saved_tensors
        return g * (logits.softmax(-1) - y_onehot) / logits.shape[0], None


def softmax_ce(logits, y_onehot):
    return _SoftmaxCE.apply(logits, y_onehot)


LOSSES = {"bce": bce, "mse": mse, "ce": softmax_ce}


class LabelError(ValueError):
    """Labels that the chosen loss cannot take."""


def encode_labels(loss: str, y: np.ndarray, out_features: int) -> np.ndarray:
    """Validate labels for the loss and return them as float32 rows of the model's output width."""
    if loss not in LOSSES:
        raise LabelError(f"unknown loss {loss!r}: choose one of {sorted(LOSSES)}")
    y = np.asarray(y, dtype=np.float64)
    if not np.isfinite(y).all():
        raise LabelError("labels contain NaN or infinite values")
    if y.ndim == 1:
        y = y[:, None]
    if loss == "bce":
        if out_features != y.shape[1] or not np.isin(y, (0.0, 1.0)).all():
            raise LabelError(f"bce needs labels in {{0, 1}} with {out_features} column(s)")
        return y.astype(np.float32)
    if loss == "ce":
        if y.shape[1] != 1 or (y != np.round(y)).any() or y.min() < 0 or y.max() >= out_features:
            raise LabelError(f"ce needs one integer class label per row in [0, {out_features})")
        return np.eye(out_features, dtype=np.float32)[y[:, 0].astype(int)]
    if y.shape[1] != out_features:
        raise LabelError(f"mse needs {out_features} target column(s), got {y.shape[1]}")
    return y.astype(np.float32)
