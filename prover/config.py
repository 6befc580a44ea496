"""A run's configuration: plain values, saved as RUN/config.json, all of it public."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from circuits.artifacts import ArtifactError, read_json, write_json


@dataclass
class RunConfig:
    model: str = "logreg"             # logreg | mlp | path/to/file.py:ClassName
    hidden: list[int] = field(default_factory=lambda: [8])  # mlp only
    loss: str = "bce"                 # bce | mse | ce
    lr: float = 0.5
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 16
    epochs: int = 2
    steps_per_proof: int = 1          # SGD steps unrolled in one circuit; must divide epochs x batches
    data: str | None = None           # .csv / .npz; None: built-in breast-cancer data
    label: str | None = None          # CSV label column; None: the last column
    features: int | None = None       # keep the first N feature columns (None: all)
    rows: int | None = None           # train on N rows drawn with `seed` (None: all)
    base: str | None = None           # base model (.safetensors or torch state dict); None: seeded init
    seed: int = 0                     # initial weights (when no base) and the private batch partition
    schedule_seed: int = 0            # public: the per-epoch batch order
    scale: int = 8                    # fixed point: values are integers times 2^-scale
    max_logrows: int = 20

    def model_spec(self, in_features: int, out_features: int) -> dict:
        kwargs = {"in_features": in_features, "out_features": out_features}
        if self.model == "mlp":
            kwargs["hidden"] = list(self.hidden)
        return {"name": self.model, "kwargs": kwargs}

    def save(self, path: Path) -> None:
        write_json(path, asdict(self))

    @classmethod
    def load(cls, path: Path) -> "RunConfig":
        raw = read_json(path)
        known = {f.name for f in fields(cls)}
        if not isinstance(raw, dict) or set(raw) - known:
            raise ArtifactError(f"{path}: unknown config keys {sorted(set(raw) - known) if isinstance(raw, dict) else raw!r}")
        return cls(**raw)

    def validate(self) -> None:
        if self.batch_size < 1 or self.epochs < 1 or self.steps_per_proof < 1:
            raise ValueError("batch size, epochs and steps per proof must be at least 1")
        if not (self.lr > 0 and self.lr < 1e3):
            raise ValueError(f"learning rate must be positive, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if not 1 <= self.scale <= 16:
            raise ValueError(f"scale must be in 1..16, got {self.scale}")


def dumps(cfg: RunConfig) -> str:
    return json.dumps(asdict(cfg), sort_keys=True)
