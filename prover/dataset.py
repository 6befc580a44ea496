"""The private rows as training reads them: validated, standardised and clipped into the declared bound,
labels encoded for the loss (a run's own data, or an owner's before it commits)."""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from zkpot.models import backbone
from zkpot.models import data as datasets
from zkpot.models.losses import encode_labels
from zkpot.prover.config import RunConfig


def _out_features(cfg: RunConfig, y: np.ndarray) -> int:
    """The model's output width: the declared classes for ce (labels present can miss one), else the labels'."""
    if cfg.loss != "ce":
        return 1 if y.ndim == 1 else y.shape[1]
    seen = int(np.nanmax(y)) + 1 if y.size else 1
    if cfg.classes is None:
        return seen
    if seen > cfg.classes:
        raise datasets.DataError(f"a label is {seen - 1}, outside the {cfg.classes} classes --classes declares (0..{cfg.classes - 1})")
    return cfg.classes


class Dataset(NamedTuple):
    X: np.ndarray        # standardised, clipped into the declared bound
    Y: np.ndarray        # encoded for the loss
    out: int             # the model's output width
    scaling: dict        # the standardisation (models/data.py: scaling_of): private, like the rows


def load_dataset(cfg: RunConfig, rows_seed: int, out: int | None = None, progress=lambda message: None) -> Dataset:
    """Validated features, standardised and clipped into the declared bound (how many per column is
    said); labels encoded for the loss; the model's output width (`out`, or the data's). `rows_seed` is
    private: which rows a --rows run uses is hidden."""
    X, y = datasets.load(cfg.data, cfg.label)
    datasets.validate(X, y)
    if cfg.features is not None:
        X = X[:, : cfg.features]
    if cfg.rows is not None:
        if cfg.rows > len(X):
            raise datasets.DataError(f"asked for {cfg.rows} rows, the dataset has {len(X)}")
        keep = np.sort(np.random.default_rng(rows_seed).permutation(len(X))[: cfg.rows])
        X, y = X[keep], y[keep]
    out = _out_features(cfg, y) if out is None else out
    if cfg.backbone:  # a frozen backbone outside the circuit: its features are the committed data
        X = backbone.features(Path(cfg.backbone), X)
    scaling = datasets.scaling_of(X)
    X, clipped = datasets.standardise_and_clip(X, scaling, cfg.feature_bound, cfg.scale)
    if clipped:
        progress(f"{sum(clipped.values())} standardised feature value(s) clipped into +-{cfg.feature_bound:g}: "
                 + ", ".join(f"column {j} ({n})" for j, n in clipped.items()))
    return Dataset(X.astype(np.float32), encode_labels(cfg.loss, y, out), out, scaling)
