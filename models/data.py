"""Datasets: the built-in breast-cancer data, or a user's CSV / NPZ, validated and standardised."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """A dataset that cannot be trained on."""


def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's Wisconsin breast-cancer data: 569 rows, 30 features, binary label (ships with sklearn)."""
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return d.data.astype(np.float64), d.target.astype(np.float64)


def _load_csv(path: Path, label: str | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text (expected a CSV file)") from None
    except (OSError, csv.Error) as e:
        raise DataError(f"{path}: unreadable CSV ({e})") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise DataError(f"{path}: needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    col = header.index(label) if label in header else (len(header) - 1 if label is None else None)
    if col is None:
        raise DataError(f"{path}: no label column {label!r} in header {header}")
    values = []
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise DataError(f"{path}:{i}: {len(r)} fields, header has {len(header)}")
        try:
            values.append([float(c) for c in r])
        except ValueError:
            j = next(j for j, c in enumerate(r) if not _is_number(c))
            raise DataError(f"{path}:{i}: non-numeric field {r[j][:40]!r} in column {header[j]!r}") from None
    a = np.array(values, dtype=np.float64)
    return np.delete(a, col, axis=1), a[:, col]


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "X" not in z or "y" not in z:
                raise DataError(f"{path}: needs arrays 'X' (rows x features) and 'y' (labels)")
            return z["X"].astype(np.float64), z["y"].astype(np.float64)
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{path}: not a readable .npz ({e.__class__.__name__})") from None


def load(path: str | Path | None, label: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load (features, labels) from CSV or NPZ; None gives the built-in breast-cancer data."""
    if path is None:
        return breast_cancer()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"dataset not found: {path}")
    if path.suffix == ".csv":
        X, y = _load_csv(path, label)
    elif path.suffix == ".npz":
        X, y = _load_npz(path)
    else:
        raise DataError(f"{path}: expected a .csv or .npz file")
    validate(X, y)
    return X, y


def validate(X: np.ndarray, y: np.ndarray) -> None:
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"features must be a non-empty 2-D array, got shape {X.shape}")
    if y.shape[0] != X.shape[0]:
        raise DataError(f"{X.shape[0]} feature rows but {y.shape[0]} labels")
    if not np.isfinite(X).all():
        bad = np.argwhere(~np.isfinite(X))[0]
        raise DataError(f"features contain NaN or infinite values (first at row {bad[0]}, column {bad[1]})")


def scaling_of(X: np.ndarray) -> dict:
    """The per-column mean and std that standardise (zero mean, unit variance: small fixed-point values; a
    constant column's std is 1, so it stays zero): kept, raw rows of the same source map as the training
    rows did (`zkpot infer --raw`)."""
    std = X.std(axis=0)
    return {"mean": X.mean(axis=0).tolist(), "std": np.where(std > 0, std, 1.0).tolist()}


def _scaled(X: np.ndarray, scaling: dict) -> np.ndarray:
    return (X - np.asarray(scaling["mean"])) / np.asarray(scaling["std"])


def apply_scaling(X: np.ndarray, scaling: dict, bound: float) -> np.ndarray:
    return np.clip(_scaled(X, scaling), -bound, bound)


def standardise_and_clip(X: np.ndarray, scaling: dict, bound: float, scale: int) -> tuple[np.ndarray, dict[int, int]]:
    """Standardised features clipped into +-bound, and {column: values clipped}. A column whose few
    outliers leave its other values within a few fixed-point steps of each other (a 1e6 among values
    near 1: standardising divides them all by ~1e6 / sqrt(n)) would train on one constant: refused."""
    Z = _scaled(X, scaling)
    out = np.abs(Z) > bound
    for j in np.flatnonzero(out.any(axis=0)):
        rest = Z[~out[:, j], j]
        if len(np.unique(X[~out[:, j], j])) > 1 and rest.std() * 2**scale < 4:
            raise DataError(f"feature column {j}: {int(out[:, j].sum())} value(s) (largest {X[out[:, j], j].max():.4g}) "
                            f"dominate its spread: standardised, its other {len(rest)} values lie within "
                            f"{rest.std() * 2**scale:.2f} fixed-point steps of each other; remove those rows or "
                            "transform the column (log, rank) first")
    return np.clip(Z, -bound, bound), {int(j): int(out[:, j].sum()) for j in np.flatnonzero(out.any(axis=0))}
